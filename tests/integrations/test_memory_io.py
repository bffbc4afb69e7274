"""In-memory data in and out: curate(data, config) per table type, output.format hf, compress_batch on a table."""

from __future__ import annotations

import csv

import datasets
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet  # noqa: F401  (pa.parquet)
import pytest

from datapruner.config import config_from_dict
from datapruner.errors import ConfigError, InputDataError
from datapruner.pipelines.compress import Compressor
from datapruner.pipelines.curate import curate

N_SEEDED = 6


@pytest.fixture(scope="module")
def table(test_data) -> pa.Table:
    """120 real SST-2 rows with ids, then exact copies of the first 6 (so exact_dedup drops 6)."""
    with open(test_data / "classification" / "sst2_train.csv", encoding="utf-8") as f:
        rows = [{"uid": f"sst-{i}", "sentence": r["sentence"], "label": int(r["label"])}
                for i, r in enumerate(list(csv.DictReader(f))[:120])]
    rows += [{"uid": f"copy-{i}", "sentence": rows[i]["sentence"].upper(), "label": rows[i]["label"]} for i in range(N_SEEDED)]
    return pa.Table.from_pylist(rows)


def _config(**output):
    return {
        "input": {"columns": {"text": "sentence", "label": "label", "id": "uid"}, "batch_size": 50},
        "output": {"plots": False, **output},
        "scorers": [{"name": "exact_dedup"}, {"name": "text_stats"}],
        "selection": [{"policy": "drop_flagged", "score": "exact_duplicate"}],
    }


CONVERT = {
    "pyarrow": lambda t: t,
    "pandas": lambda t: t.to_pandas().set_axis(np.arange(len(t)) * 10),  # a non-default index survives
    "polars": pl.from_arrow,
    "datasets": datasets.Dataset.from_dict,
}


@pytest.mark.parametrize("kind", sorted(CONVERT))
def test_curate_accepts_a_table_and_returns_kept_rows_in_its_type(kind, table, tmp_path):
    data = CONVERT[kind](table if kind != "datasets" else table.to_pydict())
    result = curate(data, _config(), out=str(tmp_path))
    assert (result.n_rows, result.n_kept) == (table.num_rows, table.num_rows - N_SEEDED)
    kept = result.kept()
    assert type(kept) is type(data)
    expected = [f"sst-{i}" for i in range(120)]
    if kind == "pyarrow":
        ids = kept.column("uid").to_pylist()
    elif kind == "polars":
        ids = kept["uid"].to_list()
    else:
        ids = list(kept["uid"])
    assert ids == expected
    if kind == "pandas":
        assert list(kept.index) == [10 * i for i in range(120)]
    audit = pa.parquet.read_table(result.scores_path)
    assert audit.column("id").to_pylist() == table.column("uid").to_pylist()
    assert result.kept().__len__() == pa.parquet.read_table(result.pruned_dir).num_rows


def test_without_an_id_column_rows_are_numbered_by_position(table, tmp_path):
    cfg = _config()
    cfg["input"]["columns"] = {"text": "sentence"}
    result = curate(table.to_pandas(), cfg, out=str(tmp_path))
    ids = pa.parquet.read_table(result.scores_path).column("id").to_pylist()
    assert ids == [f"rows.parquet:{i}" for i in range(table.num_rows)]


def test_a_path_run_returns_kept_rows_as_an_arrow_table(table, tmp_path):
    pa.parquet.write_table(table, tmp_path / "in.parquet")
    cfg = _config()
    cfg["input"]["path"] = str(tmp_path / "in.parquet")
    result = curate(cfg, out=str(tmp_path / "out"))
    assert isinstance(result.kept(), pa.Table) and result.kept().num_rows == result.n_kept


def test_output_format_hf_writes_a_datasets_folder(table, tmp_path):
    result = curate(table, _config(format="hf"), out=str(tmp_path))
    ds = datasets.load_from_disk(str(result.pruned_dir))
    assert ds.num_rows == result.n_kept and ds.column_names == table.column_names
    assert ds["uid"] == [f"sst-{i}" for i in range(120)]
    assert not list(result.pruned_dir.glob("part-*.parquet"))
    assert result.kept().num_rows == result.n_kept  # a pyarrow.Table of the in-memory input
    with pytest.raises(ConfigError, match=r"output\.format"):
        config_from_dict({**_config(format="csv"), "input": {"path": "x.parquet"}, "output": {"dir": "o", "format": "csv"}})


def test_a_table_of_another_type_is_a_clear_error(tmp_path):
    with pytest.raises(InputDataError, match=r"builtins\.dict.*datasets\.Dataset, a polars or pandas DataFrame"):
        curate({"sentence": ["a"]}, _config(), out=str(tmp_path))


def test_compress_batch_accepts_the_same_table_types(test_data):
    rows = pa.parquet.read_table(test_data / "qa" / "nq_rag_rows.parquet").slice(0, 4)
    compressor = Compressor("lead")
    expected = [r.text for r in compressor.compress_batch(zip(rows.column("query").to_pylist(),
                                                              rows.column("passages").to_pylist()), rate=0.3)]
    for data in (rows, rows.to_pandas(), pl.from_arrow(rows), datasets.Dataset(rows)):
        results = compressor.compress_batch(data, rate=0.3)
        assert [r.text for r in results] == expected
    with pytest.raises(InputDataError, match="no column 'passages'"):
        compressor.compress_batch(rows.drop_columns(["passages"]), rate=0.3)
