"""Helpers of the reliability tests: small real inputs, real subprocess runs killed with SIGKILL."""

from __future__ import annotations

import csv
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

CLI = "import sys; from datapruner.cli import main; sys.exit(main(sys.argv[1:]))"


@pytest.fixture()
def sst2_input(tmp_path, test_data) -> Path:
    """120 SST-2 rows as Parquet (sentence, label)."""
    with open(test_data / "classification" / "sst2_train.csv", encoding="utf-8") as f:
        rows = [{"sentence": r["sentence"], "label": int(r["label"])} for r in list(csv.DictReader(f))[:120]]
    path = tmp_path / "in" / "sst2.parquet"
    path.parent.mkdir()
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def text_stats_config(input_path: Path, out: Path, **output) -> dict:
    """A model-free config: text_stats, keep the half with the most words."""
    return {
        "input": {"path": str(input_path), "columns": {"text": "sentence", "label": "label"}, "batch_size": 32},
        "output": {"dir": str(out), "plots": False, **output},
        "scorers": [{"name": "text_stats"}],
        "selection": [{"policy": "top_fraction", "score": "n_words", "keep": 0.5}],
    }


def run_cli(args: list[str], *, kill_at: str | None = None, env: dict | None = None, timeout: int = 300):
    """`datapruner ARGS` in a fresh process; `kill_at` names a kill point (run_folder.kill_point)."""
    full = {**os.environ, "HF_HUB_OFFLINE": "1", "DATAPRUNER_PROGRESS": "0", **(env or {})}
    if kill_at:
        full["DATAPRUNER_TEST_KILL_AT"] = kill_at
    return subprocess.run([sys.executable, "-c", CLI, *args], capture_output=True, text=True, env=full, timeout=timeout)


def run_config(cfg: dict, folder: Path, *extra: str, kill_at: str | None = None, env: dict | None = None):
    """Write `cfg` as YAML under `folder` and `datapruner run` it in a fresh process (`env` added to its environment)."""
    path = folder / f"config-{abs(hash(str(cfg))) % 10**8}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return run_cli(["run", str(path), *extra], kill_at=kill_at, env=env)


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def data_digests(out: Path) -> dict[str, str]:
    """sha256 of scores.parquet and every pruned shard: the outputs that must be byte-identical."""
    files = [out / "scores.parquet", *sorted((out / "pruned").glob("*"))]
    return {f.relative_to(out).as_posix(): digest(f) for f in files}


def siblings(out: Path) -> list[str]:
    """Names beside `out` that start with `.<out name>.` (temporary folders, the work folder)."""
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


class Helpers:
    """The helpers above, handed to tests by the `helpers` fixture (test modules do not import conftest)."""

    text_stats_config = staticmethod(text_stats_config)
    run_cli = staticmethod(run_cli)
    run_config = staticmethod(run_config)
    digest = staticmethod(digest)
    data_digests = staticmethod(data_digests)
    siblings = staticmethod(siblings)


@pytest.fixture(scope="session")
def helpers() -> type[Helpers]:
    return Helpers
