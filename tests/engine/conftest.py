"""Small real inputs in every supported format, written from the committed SST-2 sample."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest


def _sst2_rows(test_data: Path, n: int) -> list[dict]:
    with open(test_data / "classification" / "sst2_train.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))[:n]
    return [{"sentence": r["sentence"], "label": int(r["label"])} for r in rows]


@pytest.fixture(scope="session")
def sst2_rows(test_data) -> list[dict]:
    return _sst2_rows(test_data, 120)


@pytest.fixture()
def sst2_parquet(tmp_path, sst2_rows) -> Path:
    path = tmp_path / "in" / "sst2.parquet"
    path.parent.mkdir()
    pq.write_table(pa.Table.from_pylist(sst2_rows), path)
    return path


@pytest.fixture(scope="session")
def curation_config():
    return _curation_config


def _curation_config(input_path: Path, out: Path, **overrides) -> dict:
    """A small text_stats config (no model) used by contract tests."""
    cfg = {
        "input": {"path": str(input_path), "columns": {"text": "sentence", "label": "label"}, "batch_size": 32},
        "output": {"dir": str(out), "plots": False},
        "scorers": [{"name": "text_stats"}],
        "selection": [{"policy": "top_fraction", "score": "n_words", "keep": 0.5}],
    }
    cfg.update(overrides)
    return cfg
