"""The output contract: pruned/ keeps the input schema, scores.parquet has one row per input row,
rows in == kept + dropped, the manifest records what happened, and output is deterministic."""

from __future__ import annotations

import hashlib
import json

import pyarrow.parquet as pq
import pytest

from datapruner.errors import ConfigError, InputDataError
from datapruner.pipelines.curate import curate, score


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_row_accounting_schema_and_manifest(tmp_path, sst2_parquet, curation_config):
    result = curate(curation_config(sst2_parquet, tmp_path / "out"))
    scores = pq.read_table(result.scores_path)
    pruned = pq.read_table(result.pruned_dir)
    source = pq.read_table(sst2_parquet)
    assert scores.num_rows == source.num_rows == result.n_rows
    assert pruned.num_rows == result.n_kept == scores.column("keep").to_pylist().count(True)
    assert pruned.schema.equals(source.schema)
    assert set(scores.column_names) == {"id", "n_chars", "n_words", "alpha_ratio", "keep", "reason"}
    kept_ids = [i for i, k in zip(scores.column("id").to_pylist(), scores.column("keep").to_pylist()) if k]
    kept_rows = [int(i.split(":")[1]) for i in kept_ids]
    assert pruned.column("sentence").to_pylist() == source.take(kept_rows).column("sentence").to_pylist()
    manifest = json.loads(result.manifest_path.read_text())
    counts = manifest["counts"]
    assert counts["rows_in"] == counts["kept"] + counts["dropped"] == source.num_rows
    assert manifest["threads"] == 1 and manifest["input"]["fingerprint"]
    assert manifest["config"]["selection"][0]["policy"] == "top_fraction"
    # the kept half has the most words
    words = scores.column("n_words").to_numpy()
    keep = scores.column("keep").to_numpy(zero_copy_only=False)
    assert words[keep].min() >= words[~keep].max()


def test_output_is_byte_identical_across_runs(tmp_path, sst2_parquet, curation_config):
    a = curate(curation_config(sst2_parquet, tmp_path / "a"))
    b = curate(curation_config(sst2_parquet, tmp_path / "b"))
    assert _digest(a.scores_path) == _digest(b.scores_path)
    shards_a, shards_b = sorted(a.pruned_dir.iterdir()), sorted(b.pruned_dir.iterdir())
    assert [p.name for p in shards_a] == [p.name for p in shards_b]
    assert [_digest(p) for p in shards_a] == [_digest(p) for p in shards_b]


def test_invalid_rows_are_dropped_with_a_reason_never_lost(tmp_path, curation_config):
    path = tmp_path / "in" / "d.jsonl"
    path.parent.mkdir()
    path.write_text('{"sentence": "a fine film"}\n{"sentence": null}\n{"sentence": ""}\n{"sentence": "dull"}\n')
    cfg = curation_config(path, tmp_path / "out")
    cfg["input"]["columns"] = {"text": "sentence"}
    result = curate(cfg)
    reasons = pq.read_table(result.scores_path).column("reason").to_pylist()
    assert reasons[1] == "invalid:null_text" and reasons[2] == "invalid:empty_text"
    assert result.n_rows == 4 and result.n_kept + sum(result.dropped_by_reason.values()) == 4
    scored = pq.read_table(score(dict(cfg, output={**cfg["output"], "dir": str(tmp_path / "scored")}))).column("reason")
    assert scored.to_pylist() == ["scored", "invalid:null_text", "invalid:empty_text", "scored"]


def test_with_scores_appends_score_columns(tmp_path, sst2_parquet, curation_config):
    cfg = curation_config(sst2_parquet, tmp_path / "out")
    cfg["output"]["with_scores"] = True
    pruned = pq.read_table(curate(cfg).pruned_dir)
    assert pruned.column_names == ["sentence", "label", "alpha_ratio", "n_chars", "n_words"]


def test_output_folder_equal_to_input_folder_is_refused(tmp_path, sst2_parquet, curation_config):
    with pytest.raises(InputDataError, match="input's location"):
        curate(curation_config(sst2_parquet, sst2_parquet.parent))
    assert sorted(p.name for p in sst2_parquet.parent.iterdir()) == ["sst2.parquet"]


def test_unknown_scorer_name_lists_known_ones(tmp_path, sst2_parquet, curation_config):
    cfg = curation_config(sst2_parquet, tmp_path / "out", scorers=[{"name": "el2m"}])
    with pytest.raises(ConfigError, match=r"scorers\[\]\.name.*'el2m'.*one of \[.*'perplexity'"):
        curate(cfg)


def test_scores_only_writes_audit_without_selection(tmp_path, sst2_parquet, curation_config):
    path = score(curation_config(sst2_parquet, tmp_path / "out", selection=[]))
    table = pq.read_table(path)
    assert table.num_rows == 120 and "keep" not in table.column_names
    assert set(table.column("reason").to_pylist()) == {"scored"}


def test_policy_chain_reasons_name_the_rule(tmp_path, sst2_parquet, curation_config):
    cfg = curation_config(sst2_parquet, tmp_path / "out", selection=[
        {"policy": "threshold", "score": "n_words", "min": 5},
        {"policy": "band", "score": "n_chars", "keep": 0.5, "band": "bottom"},
    ])
    result = curate(cfg)
    table = pq.read_table(result.scores_path).to_pydict()
    for words, reason in zip(table["n_words"], table["reason"]):
        if words < 5:
            assert reason.startswith("threshold(")
    assert any(r.startswith("band(") for r in table["reason"])
    assert result.n_kept == sum(1 for r in table["reason"] if r == "kept")


def test_multiple_shards(tmp_path, sst2_parquet, curation_config):
    cfg = curation_config(sst2_parquet, tmp_path / "out")
    cfg["output"]["shard_rows"] = 25
    result = curate(cfg)
    shards = sorted(result.pruned_dir.glob("*.parquet"))
    assert len(shards) == 3 and pq.read_table(result.pruned_dir).num_rows == 60
    assert not list(result.pruned_dir.glob(".*"))  # no temporary files left behind
