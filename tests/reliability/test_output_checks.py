"""The checks after writing read the files on disk, so they fail when the files disagree with the decisions."""

from __future__ import annotations

import pyarrow as pa
import pytest

from datapruner.errors import OutputCheckError
from datapruner.io.writers import ShardedParquetWriter
from datapruner.pipelines.curate import curate


def _break_writer(monkeypatch, change):
    real = ShardedParquetWriter.write
    calls = {"n": 0}

    def write(self, batch):
        calls["n"] += 1
        table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
        return real(self, change(table, calls["n"]))

    monkeypatch.setattr(ShardedParquetWriter, "write", write)


def test_a_lost_pruned_batch_fails_the_check_and_nothing_is_published(tmp_path, sst2_input, helpers, monkeypatch):
    _break_writer(monkeypatch, lambda t, n: t.slice(0, 0) if n == 2 else t)
    out = tmp_path / "out"
    with pytest.raises(OutputCheckError, match=r"pruned/ holds \d+ rows; scores.parquet keeps 60"):
        curate(helpers.text_stats_config(sst2_input, out))
    assert not out.exists() and helpers.siblings(out) == [".out.work"]


def test_wrong_rows_in_pruned_fail_the_check_even_with_the_right_count(tmp_path, sst2_input, helpers, monkeypatch):
    _break_writer(monkeypatch, lambda t, n: t.take(list(range(t.num_rows))[::-1]))  # same rows count, other order
    with pytest.raises(OutputCheckError, match=r"pruned/ does not hold the kept rows: its 'sentence' column differs"):
        curate(helpers.text_stats_config(sst2_input, tmp_path / "out"))


def test_pruned_check_by_id_column(tmp_path, sst2_input, helpers, monkeypatch):
    import pyarrow.parquet as pq

    table = pq.read_table(sst2_input)
    pq.write_table(table.append_column("uid", pa.array([f"u{i}" for i in range(table.num_rows)])), sst2_input)
    cfg = helpers.text_stats_config(sst2_input, tmp_path / "ok")
    cfg["input"]["columns"]["id"] = "uid"
    assert curate(cfg).n_kept == 60
    _break_writer(monkeypatch, lambda t, n: t.set_column(t.schema.get_field_index("uid"), "uid",
                                                       pa.array(["x"] * t.num_rows)) if n == 1 else t)
    cfg["output"]["dir"] = str(tmp_path / "bad")
    with pytest.raises(OutputCheckError, match=r"its 'uid' column differs"):
        curate(cfg)


def test_an_id_missing_from_scores_fails_the_check(tmp_path, sst2_input, helpers, monkeypatch):
    import datapruner.pipelines.curate as pipeline  # the audit writer the pipeline calls: drop the first audit row

    real = pipeline.write_scores
    monkeypatch.setattr(pipeline, "write_scores", lambda folder, table: real(folder, table.slice(1)))
    with pytest.raises(OutputCheckError, match=r"scores.parquet has 119 rows; 120 rows were read"):
        curate(helpers.text_stats_config(sst2_input, tmp_path / "out"))
