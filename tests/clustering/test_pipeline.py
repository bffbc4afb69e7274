"""The clustering scorers through the curation pipeline: configs end to end, invalid rows, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from datapruner.errors import ConfigError
from datapruner.pipelines.curate import curate

CONFIGS = Path(__file__).parents[2] / "configs"


def test_dedup_then_dbp_config_end_to_end(tmp_path, test_data):
    """The shipped config on the SST-2 sample with 40 seeded copies (20 exact, 20 case changes): all found."""
    import yaml

    rows = pacsv.read_csv(test_data / "classification" / "sst2_train.csv").to_pylist()
    rng = np.random.default_rng(3)
    picks = rng.choice(len(rows), size=40, replace=False)
    copies = [{"sentence": rows[i]["sentence"] if j < 20 else rows[i]["sentence"].upper(), "label": rows[i]["label"]}
              for j, i in enumerate(picks)]
    path = tmp_path / "sst2_with_copies.csv"
    pacsv.write_csv(pa.Table.from_pylist(rows + copies), path)
    cfg = yaml.safe_load((CONFIGS / "dedup-then-dbp.yaml").read_text())
    cfg["input"]["path"] = str(path)
    result = curate(cfg, out=str(tmp_path / "run"))
    n = len(rows) + len(copies)
    assert result.n_rows == n
    scores = pq.read_table(result.scores_path).to_pydict()
    dup = np.array([bool(v) for v in scores["semdedup_duplicate"]])
    # every seeded pair (original i, copy len(rows) + j) has exactly one member flagged
    for j, i in enumerate(picks):
        assert dup[i] != dup[len(rows) + j], f"seeded copy of row {i} not found"
    assert dup.sum() >= len(copies)
    n_candidates = n - dup.sum()
    assert result.n_kept == int(np.floor(0.5 * n_candidates + 0.5))  # cluster_quota keeps half of the survivors
    reasons = set(scores["reason"])
    assert reasons <= {"kept", "drop_flagged(score=semdedup_duplicate)", "cluster_quota(keep=0.5)"}
    # duplicates were left out of the density clustering and point at an existing row
    clusters = np.array(scores["dbp_cluster"])
    assert np.all(clusters[dup] == -1) and np.all(clusters[~dup] >= 0)
    ids = set(scores["id"])
    assert all(scores["semdedup_duplicate_of"][i] in ids for i in np.flatnonzero(dup))
    report = result.out_dir / "report"
    table = pq.read_table(report / "density_clusters.parquet").to_pydict()
    assert sum(table["quota"]) == result.n_kept == sum(table["kept"])
    assert all(q <= c for q, c in zip(table["quota"], table["candidates"]))
    assert (report / "density_quota_vs_size.png").stat().st_size > 0
    assert (report / "semdedup_eps.csv").exists()
    manifest = json.loads(result.manifest_path.read_text())
    assert manifest["report"]["semdedup"]["clusters"]["computed"] == round(np.sqrt(n))
    assert manifest["report"]["density"]["kept"] == result.n_kept
    assert len(list(result.pruned_dir.glob("*.parquet"))) >= 1


def test_curate_prototypicality_config_end_to_end(tmp_path):
    result = curate(CONFIGS / "curate-prototypicality.yaml", out=str(tmp_path / "run"))
    scores = pq.read_table(result.scores_path).to_pydict()
    dist = np.array(scores["proto_distance"])
    keep = np.array(scores["keep"])
    assert result.n_kept == 840  # 70 % of 1200
    assert dist[keep].min() >= dist[~keep].max()  # hard rows kept
    assert len(set(scores["proto_cluster"])) == 77  # k = number of classes
    assert "proto_class_distance" in scores
    assert (result.out_dir / "report" / "prototypicality_centroids.npz").exists()


@pytest.fixture()
def sst2_with_invalid(tmp_path, test_data):
    table = pacsv.read_csv(test_data / "classification" / "sst2_train.csv").slice(0, 150)
    sentences = table.column("sentence").to_pylist()
    sentences[10] = ""
    sentences[20] = None
    sentences[30] = sentences[31]  # an exact duplicate
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"sentence": sentences, "label": table.column("label")}), path)
    return path


def _assert_same_table(a: pa.Table, b: pa.Table) -> None:
    """Identical columns and values (NaN equals NaN, unlike Table.equals)."""
    assert a.schema.equals(b.schema)
    for name in a.column_names:
        np.testing.assert_array_equal(np.array(a.column(name).to_pylist(), dtype=object if a.schema.field(name).type in (pa.string(), pa.bool_()) else None),
                                      np.array(b.column(name).to_pylist(), dtype=object if b.schema.field(name).type in (pa.string(), pa.bool_()) else None), err_msg=name)


def _config(path, out, **scorer_params):
    return {
        "input": {"path": str(path), "columns": {"text": "sentence", "label": "label"}},
        "output": {"dir": str(out), "plots": False},
        "scorers": [
            {"name": "semdedup", "params": scorer_params.get("semdedup", {})},
            {"name": "density", "params": {"n_clusters": 8}},
            {"name": "prototypicality", "params": {"n_clusters": 6}},
        ],
        "selection": [
            {"policy": "drop_flagged", "score": "semdedup_duplicate"},
            {"policy": "cluster_quota", "keep": 0.6},
        ],
        "random_state": 7,
    }


def test_invalid_rows_and_determinism(tmp_path, sst2_with_invalid):
    a = curate(_config(sst2_with_invalid, tmp_path / "a"))
    b = curate(_config(sst2_with_invalid, tmp_path / "b"))  # fresh .work: every clustering step recomputed (the embeddings are the cached ones)
    ta, tb = pq.read_table(a.scores_path), pq.read_table(b.scores_path)
    _assert_same_table(ta, tb)
    s = ta.to_pydict()
    for i in (10, 20):
        assert s["semdedup_duplicate"][i] is None and s["semdedup_duplicate_of"][i] is None
        assert np.isnan(s["semdedup_max_sim"][i]) and np.isnan(s["dbp_distance"][i]) and np.isnan(s["proto_distance"][i])
        assert s["dbp_cluster"][i] == s["proto_cluster"][i] == s["semdedup_cluster"][i] == -1
        assert s["reason"][i].startswith("invalid:")
    flagged = {30, 31} & {i for i, v in enumerate(s["semdedup_duplicate"]) if v}
    assert len(flagged) == 1  # exactly one copy of the exact duplicate is dropped
    (i,) = flagged
    assert s["semdedup_duplicate_of"][i] == s["id"][61 - i]
    # a rerun in the same folder reuses the centroids, assignment and SemDeDup shards
    c = curate({**_config(sst2_with_invalid, tmp_path / "a"), "output": {"dir": str(tmp_path / "a"), "plots": False, "overwrite": True}})
    assert c.manifest["resume"]["reused_steps"] == ["semdedup", "density", "prototypicality"]
    assert c.manifest["report"]["semdedup"]["clusters"]["skipped"] == c.manifest["report"]["semdedup"]["clusters"]["clusters"]
    _assert_same_table(pq.read_table(c.scores_path), ta)


def test_config_errors_name_the_field(tmp_path, sst2_with_invalid):
    with pytest.raises(ConfigError, match=r"scorers\[semdedup\]\.params\.eps"):
        curate(_config(sst2_with_invalid, tmp_path / "x", semdedup={"eps": 1.2}))
    with pytest.raises(ConfigError, match=r"scorers\[semdedup\]\.params\.n_clusters.*at most the number of rows"):
        curate(_config(sst2_with_invalid, tmp_path / "y", semdedup={"n_clusters": 500}))


def test_killed_semdedup_step_resumes(tmp_path, sst2_with_invalid, monkeypatch):
    import datapruner.scorers.semdedup as semdedup

    real, calls = semdedup.find_semantic_duplicates, {"n": 0}

    def dies_after_five(*args, **kwargs):
        if calls["n"] == 5:
            raise KeyboardInterrupt("killed")
        calls["n"] += 1
        return real(*args, **kwargs)

    cfg = _config(sst2_with_invalid, tmp_path / "run")
    monkeypatch.setattr(semdedup, "find_semantic_duplicates", dies_after_five)
    with pytest.raises(KeyboardInterrupt):
        curate(cfg)
    monkeypatch.setattr(semdedup, "find_semantic_duplicates", real)
    resumed = curate(_config(sst2_with_invalid, tmp_path / "run"))
    clusters = resumed.manifest["report"]["semdedup"]["clusters"]
    assert clusters["skipped"] == 5 and clusters["computed"] == clusters["clusters"] - 5
    fresh = curate(_config(sst2_with_invalid, tmp_path / "fresh"))
    _assert_same_table(pq.read_table(resumed.scores_path), pq.read_table(fresh.scores_path))


def test_saved_centroids_are_reused_by_a_later_run(tmp_path, sst2_with_invalid):
    first = curate(_config(sst2_with_invalid, tmp_path / "first"))
    saved = first.out_dir / "report" / "prototypicality_centroids.npz"
    cfg = _config(sst2_with_invalid, tmp_path / "second")
    cfg["scorers"] = [{"name": "prototypicality", "params": {"centroids": str(saved), "random_state": 99}}]
    cfg["selection"] = [{"policy": "prototypes", "prefer": "easy", "keep": 0.5}]
    second = curate(cfg)
    a, b = pq.read_table(first.scores_path), pq.read_table(second.scores_path)
    np.testing.assert_array_equal(a.column("proto_distance").to_numpy(), b.column("proto_distance").to_numpy())
    np.testing.assert_array_equal(a.column("proto_cluster").to_numpy(), b.column("proto_cluster").to_numpy())


def test_density_report_without_quota_policy(tmp_path, sst2_with_invalid):
    cfg = _config(sst2_with_invalid, tmp_path / "run")
    cfg["scorers"] = [{"name": "density", "params": {"n_clusters": 5, "tau": 0.1}}]
    cfg["selection"] = [{"policy": "top_fraction", "score": "dbp_distance", "keep": 0.5}]
    result = curate(cfg)
    table = pq.read_table(result.out_dir / "report" / "density_clusters.parquet").to_pydict()
    assert "quota" not in table and sum(table["size"]) == 148  # 150 rows, 2 invalid
    assert sum(table["weight"]) == pytest.approx(1.0)
    cfg["scorers"] = [{"name": "density", "params": {"exclude": "no_such_column"}}]
    cfg["output"]["dir"] = str(tmp_path / "other")
    with pytest.raises(ConfigError, match=r"scorers\[density\]\.params\.exclude"):
        curate(cfg)
