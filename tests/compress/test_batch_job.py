"""The Parquet batch job (resumable shards), the config file, and the CLI commands."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from datapruner.cli import main
from datapruner.errors import ConfigError, InputDataError
from datapruner.pipelines.compress_batch_job import load_compress_config, run_compress_batch

OPTS = {"method": "random", "rate": 0.25, "random_state": 3}  # seeded: reruns must give identical rows


def test_batch_job_writes_and_resumes(rag_rows, tmp_path):
    out = tmp_path / "out"
    first = run_compress_batch(rag_rows, out, rows_per_shard=8, batch_pairs=4, **OPTS)
    assert (first.n_rows, first.n_shards, first.shards_skipped) == (24, 3, 0)
    table = pq.read_table(out / "shards")
    assert table.num_rows == 24 and table.column("id").to_pylist() == list(range(24))
    rows = table.to_pylist()
    for row in rows:
        assert row["tokens_after"] <= row["budget"] == int(0.25 * row["tokens_before"])
        for span in row["kept_spans"]:
            assert row["passages"][span["passage"]][span["start"] : span["end"]] in row["compressed"]
    # a job killed after shard 0: shards 1 and 2 lose their output; the rerun redoes only those
    before = (out / "shards" / "part-00000.parquet").stat().st_mtime_ns
    (out / "markers" / "part-00001.done").unlink()
    (out / "markers" / "part-00002.done").unlink()
    (out / "shards" / "part-00002.parquet").unlink()
    second = run_compress_batch(rag_rows, out, rows_per_shard=8, batch_pairs=4, **OPTS)
    assert second.shards_skipped == 1
    assert (out / "shards" / "part-00000.parquet").stat().st_mtime_ns == before
    assert pq.read_table(out / "shards").to_pylist() == rows  # deterministic, identical output
    manifest = json.loads(first.manifest_path.read_text())
    assert manifest["rows"] == 24 and manifest["options"] == OPTS


@pytest.mark.slow
def test_shipped_config_runs_and_keeps_answers(test_data, tmp_path, capsys):
    """configs/rag-compress.yaml end to end (its output folder redirected): mig at 4x on NQ-open rows."""
    config = test_data.parents[1] / "configs" / "rag-compress.yaml"
    assert main(["compress-batch", "--config", str(config), "--out", str(tmp_path)]) == 0
    assert "rows: 24  shards: 3" in capsys.readouterr().out
    rows = pq.read_table(tmp_path / "shards").to_pylist()
    assert all(r["tokens_after"] <= r["budget"] for r in rows)
    recall = sum(any(a in r["compressed"] for a in r["answers"]) for r in rows) / len(rows)
    assert recall >= 0.7, recall  # NQ-open questions, gold passage among 3 others, 4x reduction


def test_batch_job_refuses_to_mix_jobs(rag_rows, tmp_path):
    run_compress_batch(rag_rows, tmp_path, rows_per_shard=24, method="lead", rate=0.5)
    with pytest.raises(ConfigError, match="overwrite"):
        run_compress_batch(rag_rows, tmp_path, rows_per_shard=24, method="lead", rate=0.3)
    result = run_compress_batch(rag_rows, tmp_path, rows_per_shard=24, method="lead", rate=0.3, overwrite=True)
    assert result.shards_skipped == 0


def test_batch_job_bad_input(rag_rows, tmp_path):
    with pytest.raises(InputDataError, match="no column 'question'"):
        run_compress_batch(rag_rows, tmp_path / "a", query_column="question", method="lead", rate=0.5)
    with pytest.raises(InputDataError, match="not a file"):
        run_compress_batch(tmp_path / "missing.parquet", tmp_path / "b", method="lead", rate=0.5)
    with pytest.raises(ConfigError, match="rows_per_shard"):
        run_compress_batch(rag_rows, tmp_path / "c", rows_per_shard=0, method="lead", rate=0.5)


def test_shipped_config_loads_and_resolves_paths(test_data):
    config = test_data.parents[1] / "configs" / "rag-compress.yaml"
    conf = load_compress_config(config)
    assert conf["compress"]["method"] == "mig" and conf["compress"]["rate"] == 0.25
    assert conf["batch"]["input"] == str((test_data / "qa" / "nq_rag_rows.parquet").resolve())


def test_config_errors(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("compress:\n  rate: 3\n")
    with pytest.raises(ConfigError, match="rate"):
        load_compress_config(bad)
    bad.write_text("batch:\n  inptu: x\n")
    with pytest.raises(ConfigError, match="batch.inptu"):
        load_compress_config(bad)


def test_cli_compress_and_batch_with_config(test_data, tmp_path, capsys):
    passages = tmp_path / "p.json"
    passages.write_text(json.dumps(["Paris is the capital of France.", "Bananas are yellow. They are sweet."]))
    assert main(["compress", "--query", "What is the capital of France?", "--passages", str(passages),
                 "--target-tokens", "8", "--method", "lead"]) == 0
    assert capsys.readouterr().out.strip() == "Paris is the capital of France."
    assert main(["compress", "--query", "", "--passages", str(passages)]) == 2
    assert "query is empty" in capsys.readouterr().err
    config = tmp_path / "rag.yaml"
    config.write_text(f"compress:\n  method: lead\n  rate: 0.5\nbatch:\n  input: {test_data / 'qa' / 'nq_rag_rows.parquet'}\n"
                      "  out: out-rel\n  rows_per_shard: 12\n")
    assert main(["compress-batch", "--config", str(config)]) == 0
    assert "rows: 24  shards: 2 (0 already done)" in capsys.readouterr().out
    assert pq.read_table(tmp_path / "out-rel" / "shards").num_rows == 24  # relative to the config's folder
