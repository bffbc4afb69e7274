"""Per-row state kept on disk: the embedding reader, the score columns and the streamed audit table."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datapruner.curation.embedding_cache import EmbeddingRows
from datapruner.curation.output_checks import check_scores_file
from datapruner.curation.outputs import AuditTable, write_scores
from datapruner.curation import step_store
from datapruner.curation.score_columns import ScoreColumns, ScoresFileColumns, column_rows
from datapruner.errors import OutputCheckError


@pytest.fixture
def rows_file(tmp_path):
    data = np.random.default_rng(0).standard_normal((50, 8)).astype(np.float16)
    path = tmp_path / "e.f16"
    data.tofile(path)
    return data, EmbeddingRows(path, n_rows=50, dim=8)


def test_embedding_rows_index_like_the_array_they_read(rows_file):
    data, rows = rows_file
    assert rows.shape == data.shape and len(rows) == 50 and rows.dtype == np.float16
    np.testing.assert_array_equal(rows[3:17], data[3:17])
    np.testing.assert_array_equal(rows[-1], data[-1])
    np.testing.assert_array_equal(rows[::7], data[::7])
    index = np.array([40, 2, 2, 3, 4, 49, 0])  # unsorted, repeated, runs of consecutive rows
    np.testing.assert_array_equal(rows[index], data[index])
    mask = np.arange(50) % 3 == 0
    np.testing.assert_array_equal(rows[mask], data[mask])
    np.testing.assert_array_equal(rows[index, 2:4], data[index, 2:4])
    np.testing.assert_array_equal(np.asarray(rows, dtype=np.float32), data.astype(np.float32))
    assert rows[10:10].shape == (0, 8)
    with pytest.raises(IndexError):
        rows[50]
    with pytest.raises(IndexError):
        rows[np.array([1, 51])]


def test_embedding_rows_name_a_short_file(tmp_path):
    path = tmp_path / "short.f16"
    np.zeros((3, 8), dtype=np.float16).tofile(path)
    with pytest.raises(OSError, match="shorter than 5 rows"):
        EmbeddingRows(path, n_rows=5, dim=8)[2:5]


def test_score_columns_round_trip_on_disk(tmp_path):
    cols = ScoreColumns(tmp_path / "columns")
    values = {"f": np.linspace(0, 1, 11), "i": np.arange(11, dtype=np.int64) - 5, "b": np.arange(11) % 2 == 0,
              "f32": np.arange(11, dtype=np.float32), "o": np.array(["a", None] * 5 + ["c"], dtype=object)}
    for name, v in values.items():
        cols[name] = v
    assert list(cols) == list(values) and len(cols) == 5 and "f" in cols and "x" not in cols
    for name, v in values.items():
        got = cols[name]
        assert got.dtype == v.dtype
        np.testing.assert_array_equal(got, v)
        np.testing.assert_array_equal(column_rows(cols, name, 3, 7), v[3:7])
    assert len(list(cols.directory.iterdir())) == 4  # the object column stays in memory
    cols["f"] = np.zeros(11)  # replacing a column replaces its file
    np.testing.assert_array_equal(cols["f"], np.zeros(11))
    assert len(list(cols.directory.iterdir())) == 4
    del cols["i"]
    assert "i" not in cols and len(list(cols.directory.iterdir())) == 3
    cols.remove()
    assert not cols.directory.exists() and len(cols) == 0


def test_pending_columns_are_written_in_place_part_by_part_and_adopted_without_a_copy(tmp_path):
    cols = ScoreColumns(tmp_path / "columns")
    pending = cols.pending(10)
    parts = [  # out of order; one part's rows are not a contiguous range; row 9 is never written
        (np.arange(5, 9), {"f": np.linspace(0.5, 0.8, 4), "i": np.array([5, 6, 7, 8], dtype=np.int32), "o": np.array(["a", None, "b", None], dtype=object)}),
        (np.array([4, 0, 2]), {"f": np.array([0.4, 0.0, 0.2]), "i": np.array([4.9, 0.0, 2.2]), "o": np.array([None, "x", "y"], dtype=object)}),
        (np.array([1, 3]), {"f": np.array([0.1, 0.3]), "i": np.array([1, 3], dtype=np.int32), "o": np.array(["p", "q"], dtype=object)}),
    ]
    for rows, values in parts:
        for name, v in values.items():
            pending.put(name, rows, v)
    want_f = np.r_[np.arange(9) / 10, 0.0]
    want_i = np.r_[np.arange(9), 0].astype(np.int32)  # the first part fixed int32: 4.9 and 2.2 are cast as an array assignment casts
    want_o = np.array(["x", "p", "y", "q", None, "a", None, "b", None, None], dtype=object)
    assert list(pending) == ["f", "i", "o"] and pending.dtype("i") == np.int32 and pending.dtype("o") == object
    np.testing.assert_allclose(pending["f"], want_f)
    np.testing.assert_array_equal(pending["i"], want_i)
    np.testing.assert_array_equal(column_rows(pending, "o", 3, 6), want_o[3:6])
    files = {name: pending.files[name][0] for name in ("f", "i")}
    cols.adopt(pending)
    assert list(cols) == ["f", "i", "o"] and len(pending) == 3 and not pending.files
    assert sorted(cols.directory.iterdir()) == sorted(files.values())  # taken over, not copied
    np.testing.assert_allclose(cols["f"], want_f)
    np.testing.assert_array_equal(cols["i"], want_i)
    np.testing.assert_array_equal(cols["o"], want_o)
    assert len(list(cols.directory.iterdir())) == 2


def test_step_store_streams_a_steps_columns_in_slices_and_reads_them_back(tmp_path, monkeypatch):
    monkeypatch.setattr(step_store, "SLICE_ROWS", 4)  # 10 rows: slices of 4, 4 and 2
    cols = ScoreColumns(tmp_path / "columns")
    saved = cols.pending(10)
    values = {"f": np.linspace(0, 1, 10), "b": np.arange(10) % 3 == 0,
              "tag": np.array([None] * 5 + ["x", "y", None, "z", "w"], dtype=object),  # the first slice has only None
              "flag": np.array([None, True, False, None, True, None, None, False, True, None], dtype=object)}
    for name, v in values.items():
        saved.put(name, np.arange(10), v)
    store = step_store.StepStore(tmp_path / "work", context={"c": 1}, sources=[])
    store.save("k", "step", saved)
    parquet = pq.ParquetFile(store.directory / "k" / "columns.parquet")
    assert parquet.metadata.num_row_groups == 3
    assert parquet.schema_arrow.field("tag").type == pa.string() and parquet.schema_arrow.field("flag").type == pa.bool_()
    loaded = store.load("k", cols.pending(10))
    assert list(loaded) == list(values)
    for name, v in values.items():
        assert loaded.dtype(name) == v.dtype
        np.testing.assert_array_equal(loaded[name], v)
    assert store.load("other", cols.pending(10)) is None
    (store.directory / "k" / step_store.MARKER).write_text('{"step": "step", "columns": []}')  # a marker of an older version
    assert store.load("k", cols.pending(10)) is None


def test_score_columns_remove_folders_of_dead_runs(tmp_path):
    parent = tmp_path / "columns"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    stale = parent / f"{int(dead.stdout)}-0"
    stale.mkdir(parents=True)
    mine = ScoreColumns(parent)
    other_live = parent / f"{os.getppid()}-0"  # a live process's folder is left alone
    other_live.mkdir()
    ScoreColumns(parent)
    assert not stale.exists() and mine.directory.exists() and other_live.exists()


def test_audit_table_is_written_in_batches_with_the_whole_tables_content(tmp_path):
    n = 10
    ids = pa.array([f"r{i}" for i in range(n)])
    cols = ScoreColumns(tmp_path / "columns")
    cols["z"] = np.arange(n, dtype=np.float64)
    cols["a"] = np.arange(n, dtype=np.int64) * 2
    cols["tag"] = np.array([None] * 4 + ["x"] * 6, dtype=object)  # the first batch has only nulls
    keep = np.arange(n) % 2 == 0
    reason = np.where(keep, "kept", "p(keep=0.5)").astype(object)
    table = AuditTable(ids, cols, keep=keep, reason=reason)
    got = pa.Table.from_batches(list(table.batches(rows=3)))
    want = pa.table({"id": ids, "a": cols["a"], "tag": pa.array(cols["tag"].tolist()), "z": cols["z"],
                     "keep": keep, "reason": pa.array(reason.tolist(), pa.string())})
    assert got.equals(want)
    write_scores(tmp_path, table)
    assert pq.read_table(tmp_path / "scores.parquet").equals(want)
    assert check_scores_file(tmp_path, ids, selected=True) == {
        "rows_in": n, "kept": 5, "dropped": 5, "dropped_by_reason": {"p(keep=0.5)": 5}}
    assert table.slice(2, 5).num_rows == 5 and table.slice(8).num_rows == 2
    from_file = ScoresFileColumns(tmp_path / "scores.parquet", exclude=("id", "keep", "reason"))
    assert list(from_file) == ["a", "tag", "z"]
    np.testing.assert_array_equal(from_file["z"], cols["z"])
    write_scores(tmp_path, table.slice(0, n - 1))
    with pytest.raises(OutputCheckError, match="has 9 rows; 10 rows were read"):
        check_scores_file(tmp_path, ids, selected=True)
