"""The Parquet batch job (resumable shards), the compression config file, and the CLI commands."""

from __future__ import annotations

import inspect
import json

import pyarrow.parquet as pq
import pytest

from datapruner.cli import main
from datapruner.config import CompressConfig, CompressSection, load_compress_config, override_budget
from datapruner.errors import ConfigError, InputDataError
from datapruner.pipelines.compress import Compressor
from datapruner.pipelines.compress_batch_job import run_compress_batch

OPTS = {"method": "random", "rate": 0.25, "random_state": 3}  # seeded: reruns must give identical rows


def _job(rows, out, compress=OPTS, **batch):
    return {"compress": dict(compress), "batch": {"input": str(rows), "out": str(out), **batch}}


def test_batch_job_writes_and_resumes(rag_rows, tmp_path):
    out = tmp_path / "out"
    first = run_compress_batch(_job(rag_rows, out, rows_per_shard=8, batch_pairs=4))
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
    second = run_compress_batch(_job(rag_rows, out, rows_per_shard=8, batch_pairs=4))
    assert second.shards_skipped == 1
    assert (out / "shards" / "part-00000.parquet").stat().st_mtime_ns == before
    assert pq.read_table(out / "shards").to_pylist() == rows  # deterministic, identical output
    manifest = json.loads(first.manifest_path.read_text())
    assert manifest["rows"] == 24 and manifest["threads"] == 1
    assert manifest["compressor"]["method"] == "random" and manifest["compressor"]["random_state"] == 3
    assert manifest["budget"] == {"target_tokens": None, "rate": 0.25, "threshold": None}


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
    lead = {"method": "lead", "rate": 0.5}
    run_compress_batch(_job(rag_rows, tmp_path, lead, rows_per_shard=24))
    with pytest.raises(ConfigError, match="overwrite"):
        run_compress_batch(_job(rag_rows, tmp_path, {**lead, "rate": 0.3}, rows_per_shard=24))
    # the thread count does not change the output, so it does not block a resume
    assert run_compress_batch({**_job(rag_rows, tmp_path, lead, rows_per_shard=24), "models": {"threads": 2}}).shards_skipped == 1
    result = run_compress_batch(_job(rag_rows, tmp_path, {**lead, "rate": 0.3}, rows_per_shard=24, overwrite=True))
    assert result.shards_skipped == 0


def test_batch_job_bad_input(rag_rows, tmp_path):
    lead = {"method": "lead", "rate": 0.5}
    with pytest.raises(InputDataError, match="no column 'question'"):
        run_compress_batch(_job(rag_rows, tmp_path / "a", lead, query_column="question"))
    with pytest.raises(InputDataError, match="not a file"):
        run_compress_batch(_job(tmp_path / "missing.parquet", tmp_path / "b", lead))
    with pytest.raises(ConfigError, match=r"'batch.rows_per_shard' has value 0; expected an integer >= 1"):
        run_compress_batch(_job(rag_rows, tmp_path / "c", lead, rows_per_shard=0))
    with pytest.raises(ConfigError, match=r"'batch.out' has value None"):
        run_compress_batch({"compress": lead, "batch": {"input": str(rag_rows)}})
    with pytest.raises(ConfigError, match=r"'threshold' has value 0.3; expected no threshold when a budget"):
        run_compress_batch(_job(rag_rows, tmp_path / "d", {"method": "mig", "rate": 0.5, "threshold": 0.3}))
    assert not (tmp_path / "c").exists() and not (tmp_path / "d").exists()  # failed before writing


def test_shipped_config_loads_and_resolves_paths(test_data):
    config = test_data.parents[1] / "configs" / "rag-compress.yaml"
    cfg = load_compress_config(config)
    assert cfg.compress.method == "mig" and cfg.compress.rate == 0.25 and cfg.models.threads == 1
    assert cfg.batch.input == str((test_data / "qa" / "nq_rag_rows.parquet").resolve())
    Compressor(**cfg.compressor_options())  # the options the commands build their compressor from


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("compress:\n  rate: 3\n", r"'compress.rate' has value 3; expected a number in \(0, 1\]"),
        ("compress:\n  rate: 0.5\n  target_tokens: 10\n", r"'compress.target_tokens/rate' has value \(10, 0.5\)"),
        ("compress:\n  method: nope\n", r"'compress.method' has value 'nope'; expected one of mig, .*lead"),
        ("compress:\n  method: mig\n  params: {temprature: 0.2}\n",
         r"'compress.params.temprature' has value 0.2; expected a parameter of method 'mig' \(accepted: .*temperature"),
        ("compress:\n  params: {temperature: -1}\n", r"'compress.params.temperature' has value -1"),
        ("compress:\n  method: random\n  threshold: 0.2\n", r"'compress.threshold' has value 0.2; expected no threshold"),
        ("compress:\n  mig_temperature: 0.2\n", r"'compress.mig_temperature' has value 0.2; expected one of \["),
        ("batch:\n  inptu: x\n", r"'batch.inptu' has value 'x'"),
        ("batch:\n  batch_size: 8\n", r"'batch.batch_size' has value 8; expected one of \[.*'batch_pairs'.*'rows_per_shard'"),
        ("service:\n  threads: 2\n", r"'service.threads' has value 2; expected one of"),
        ("service:\n  port: 0\n", r"'service.port' has value 0"),
        ("models:\n  threads: 0\n", r"'models.threads' has value 0; expected an integer >= 1"),
        ("servce: {}\n", r"config key 'servce'.*a known section"),
    ],
)
def test_config_errors_name_key_and_value(tmp_path, text, pattern):
    bad = tmp_path / "c.yaml"
    bad.write_text(text)
    with pytest.raises(ConfigError, match=pattern):
        load_compress_config(bad)


def test_config_defaults_are_the_compressors():
    """The compress section and the Compressor document the same defaults (one meaning per key)."""
    signature = inspect.signature(Compressor).parameters
    section = CompressSection()
    for name, parameter in signature.items():
        if name in ("params", "threads"):
            continue
        assert getattr(section, name) in (parameter.default, [] if parameter.default is None else parameter.default), name
    assert set(CompressConfig().compressor_options()) == set(signature)


def test_a_given_budget_replaces_the_configured_one(tmp_path):
    configured = {"target_tokens": None, "rate": 0.25, "threshold": None}
    assert override_budget(configured, {}) == configured
    assert override_budget(configured, {"query": "q", "target_tokens": 20}) == {"target_tokens": 20, "rate": None, "threshold": None}
    assert override_budget(configured, {"threshold": 0.2}) == {"target_tokens": None, "rate": None, "threshold": 0.2}
    path = tmp_path / "c.yaml"
    path.write_text("compress:\n  method: mig\n  params: {temperature: 0.2}\n  rate: 0.25\n")
    cfg = load_compress_config(path, overrides={"compress": {"target_tokens": 30, "params": {"alpha": 2.0}}})
    assert cfg.budget() == {"target_tokens": 30, "rate": None, "threshold": None}
    assert cfg.compress.params == {"temperature": 0.2, "alpha": 2.0}  # --param adds to the configured params
    assert load_compress_config(path, overrides={"compress": {"method": "mig"}}).compress.params == {"temperature": 0.2}
    cfg = load_compress_config(path, overrides={"compress": {"method": "bm25"}})
    assert cfg.compress.params == {} and cfg.budget()["rate"] == 0.25  # another method starts from its defaults


def test_cli_compress_and_batch_with_config(test_data, tmp_path, capsys):
    passages = tmp_path / "p.json"
    passages.write_text(json.dumps(["Paris is the capital of France.", "Bananas are yellow. They are sweet."]))
    assert main(["compress", "--query", "What is the capital of France?", "--passages", str(passages),
                 "--target-tokens", "9", "--method", "lead"]) == 0
    assert capsys.readouterr().out.strip() == "Paris is the capital of France."
    assert main(["compress", "--query", "", "--passages", str(passages)]) == 2
    assert "query is empty" in capsys.readouterr().err
    config = tmp_path / "rag.yaml"
    config.write_text(f"compress:\n  method: lead\n  rate: 0.5\nbatch:\n  input: {test_data / 'qa' / 'nq_rag_rows.parquet'}\n"
                      "  out: out-rel\n  rows_per_shard: 12\n")
    assert main(["compress-batch", "--config", str(config)]) == 0
    assert "rows: 24  shards: 2 (0 already done)" in capsys.readouterr().out
    assert pq.read_table(tmp_path / "out-rel" / "shards").num_rows == 24  # relative to the config's folder


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--method", "nope"], "'compress.method' has value 'nope'; expected one of mig"),
        (["--method", "mig", "--param", "temprature=0.2"], "'compress.params.temprature' has value 0.2"),
        (["--param", "temperature"], "'--param' has value 'temperature'; expected KEY=VALUE"),
        (["--threads", "0"], "'models.threads' has value 0; expected an integer >= 1"),
        (["--method", "lead", "--threshold", "0.3"], "'compress.threshold' has value 0.3; expected no threshold"),
        (["--content", "cod"], "'content' has value 'cod'; expected one of 'text', 'code'"),
    ],
)
def test_cli_compress_errors_name_key_and_value(tmp_path, capsys, flags, message):
    passages = tmp_path / "p.json"
    passages.write_text(json.dumps(["Paris is the capital of France."]))
    assert main(["compress", "--query", "q?", "--passages", str(passages), *flags]) == 2
    assert message in capsys.readouterr().err


def test_cli_both_budgets_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):  # argparse: --target-tokens and --rate are mutually exclusive
        main(["compress", "--query", "q?", "--passages", "p.json", "--target-tokens", "8", "--rate", "0.5"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_help_lists_the_registered_methods_and_their_params(capsys):
    from datapruner.registry import compression_method_names, get_compression_method

    with pytest.raises(SystemExit):
        main(["compress-batch", "--help"])
    out = capsys.readouterr().out
    for name in compression_method_names():
        assert f"  {name} " in out
        for param in get_compression_method(name).params_doc:
            assert f"      {param} " in out
