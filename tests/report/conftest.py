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
