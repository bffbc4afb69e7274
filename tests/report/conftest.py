"""Report-test fixtures. Open a page in the system's headless Chromium: screenshot, rendered DOM and console messages.

Chromium comes from the system packages (`make setup` installs Debian's `chromium` where it is
missing). When no browser is found the report tests FAIL with the fix, never skip: the page is a
user-facing output and CI must look at it. Set `DATAPRUNER_CHROMIUM` to use another binary.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import csv

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0", "--hide-scrollbars"]
CONSOLE = re.compile(r":CONSOLE[:(\]]")


@dataclass
class PageView:
    dom: str
    console: list[str]
    screenshot: Path


def chromium() -> str:
    """The Chromium binary; fails the test (with the fix) when there is none."""
    for name in (os.environ.get("DATAPRUNER_CHROMIUM"), "chromium", "chromium-headless-shell", "chromium-browser"):
        if name and shutil.which(name):
            return shutil.which(name)
    pytest.fail("no headless Chromium found (looked for chromium, chromium-headless-shell, chromium-browser); "
                "run `make setup` (it installs Debian's chromium) or `apt-get install -y chromium`, "
                "or set DATAPRUNER_CHROMIUM to a Chromium binary")


def _run(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    return subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120)


def open_page(page: Path, work: Path, *, width: int = 1280, height: int = 2400) -> PageView:
    """Render `page` twice (DOM dump with console log, then a screenshot) in fresh profiles under `work`."""
    url = Path(page).resolve().as_uri()
    dom = _run(["--dump-dom", url], work / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    shot = work / "screenshot.png"
    pic = _run([f"--screenshot={shot}", f"--window-size={width},{height}", url], work / "profile-shot")
    assert pic.returncode == 0 and shot.exists(), pic.stderr[-2000:]
    console = [line for line in (dom.stderr + pic.stderr).splitlines() if CONSOLE.search(line)]
    return PageView(dom=dom.stdout, console=console, screenshot=shot)


def keep_artifact(path: Path, name: str) -> Path:
    """Copy a file to the artefacts folder (`DATAPRUNER_TEST_ARTIFACTS`, default <repo>/test-artifacts)."""
    folder = Path(os.environ.get("DATAPRUNER_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(path, folder / name))


@pytest.fixture(scope="session")
def page_in_browser():
    """`open_page(page, work, width=, height=)` -> PageView (dom, console lines, screenshot)."""
    chromium()
    return open_page


@pytest.fixture(scope="session")
def artifact():
    """`keep_artifact(path, name)` -> the kept copy's path."""
    return keep_artifact


HOSTILE = '<script>alert("x")</script> & <b>bold</b> <img src=x onerror=alert(1)>'


@pytest.fixture(scope="session")
def hostile() -> str:
    """The markup text seeded into the run (it must come out escaped)."""
    return HOSTILE


@pytest.fixture(scope="session")
def run(tmp_path_factory, test_data):
    """A finished run: 240 SST-2 rows + seeded exact copies (one holding HTML markup) + a null row."""
    from datapruner.pipelines.curate import curate

    with open(test_data / "classification" / "sst2_train.csv", encoding="utf-8") as f:
        rows = [{"text": r["sentence"], "label": int(r["label"])} for r in list(csv.DictReader(f))[:240]]
    rows += [{"text": HOSTILE, "label": 0}, {"text": HOSTILE.upper(), "label": 0}]
    rows += [{"text": r["text"].upper() + " !", "label": r["label"]} for r in rows[:10]]
    rows += [{"text": None, "label": 1}]
    work = tmp_path_factory.mktemp("report")
    pq.write_table(pa.Table.from_pylist(rows), work / "in.parquet")
    return curate({
        "input": {"path": str(work / "in.parquet"), "columns": {"text": "text", "label": "label"}, "batch_size": 64},
        "output": {"dir": str(work / "out")},
        "scorers": [{"name": "exact_dedup"}, {"name": "minhash"}, {"name": "semdedup", "params": {"n_clusters": 6}},
                    {"name": "density", "params": {"n_clusters": 6}}],
        "selection": [{"policy": "drop_flagged", "score": "exact_duplicate"},
                      {"policy": "drop_flagged", "score": "minhash_duplicate"},
                      {"policy": "drop_flagged", "score": "semdedup_duplicate"},
                      {"policy": "cluster_quota", "keep": 0.6}],
        "random_state": 0,
    })
