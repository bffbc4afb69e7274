"""The narrow per-row state of a run: cluster-quota selection against a brute-force reference,
the int8 invalid-row codes, and the density scorer's int32 / float32 state."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datapruner.curation.dataset import INVALID_REASONS, ColumnMap, Dataset
from datapruner.selection.quotas import ClusterQuota, cluster_codes, cluster_quotas


def reference_cluster_quota(clusters, weights, values, candidates, n_keep_budget):
    """The former implementation: float64 columns, np.unique and a three-key lexsort over every candidate."""
    clusters, weights, values = (np.asarray(a, dtype=np.float64) for a in (clusters, weights, values))
    usable = candidates & (clusters >= 0) & np.isfinite(values) & np.isfinite(weights)
    rows = np.flatnonzero(usable)
    n_keep = min(n_keep_budget, len(rows))
    ids, inv = np.unique(clusters[rows].astype(np.int64), return_inverse=True)
    sizes = np.bincount(inv, minlength=len(ids))
    first = np.unique(inv, return_index=True)[1]
    quotas = cluster_quotas(weights[rows][first], sizes, n_keep)
    order = np.lexsort((np.arange(len(rows)), -values[rows], inv))
    sorted_inv = inv[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_inv)) + 1]
    rank = np.empty(len(rows), dtype=np.int64)
    rank[order] = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    n = len(candidates)
    quota_col, rank_col = np.full(n, -1, dtype=np.int64), np.full(n, -1, dtype=np.int64)
    quota_col[rows], rank_col[rows] = quotas[inv], rank
    mask = np.zeros(n, dtype=bool)
    mask[rows[rank < quotas[inv]]] = True
    return mask, quota_col, rank_col, {"cluster": ids, "size": sizes, "weight": weights[rows][first], "quota": quotas}


def random_columns(seed, n):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 12))
    ids = rng.choice(10**9, size=k, replace=False) if seed % 4 == 3 else rng.permutation(50)[:k]  # sparse ids: np.unique path
    clusters = ids[rng.integers(0, k, n)].astype(np.int64)
    clusters[rng.random(n) < 0.1] = -1
    per_cluster = rng.dirichlet(np.ones(k))
    lookup = dict(zip(ids.tolist(), per_cluster.tolist()))
    weights = np.array([lookup.get(c, np.nan) for c in clusters.tolist()])
    values = np.round(rng.random(n), 1)  # few distinct values: many ties, broken by position
    values[rng.random(n) < 0.05] = np.nan
    weights[rng.random(n) < 0.03] = np.nan
    candidates = rng.random(n) < 0.85
    return {"dbp_cluster": clusters, "dbp_weight": weights, "dbp_distance": values}, candidates


@pytest.mark.parametrize("seed", range(24))
def test_cluster_quota_equals_the_brute_force_reference(seed):
    n = 40 + 23 * seed
    scores, candidates = random_columns(seed, n)
    if seed % 6 == 5:  # a float cluster column (NaN = not clustered), as a user's own column may be
        scores["dbp_cluster"] = np.where(scores["dbp_cluster"] < 0, np.nan, scores["dbp_cluster"]).astype(np.float64)
    keep = [0.1, 0.5, 0.9, 1.0][seed % 4]
    policy = ClusterQuota(keep=keep)
    mask = policy.select(scores, candidates.copy())
    ref_mask, ref_quota, ref_rank, ref_table = reference_cluster_quota(
        scores["dbp_cluster"], scores["dbp_weight"], scores["dbp_distance"], candidates, policy.n_keep(candidates))
    np.testing.assert_array_equal(mask, ref_mask)
    audit = policy.audit_columns()
    np.testing.assert_array_equal(audit["cluster_quota"], ref_quota)
    np.testing.assert_array_equal(audit["cluster_rank"], ref_rank)
    assert audit["cluster_quota"].dtype == np.int64 and audit["cluster_rank"].dtype == np.int64
    for key, values in ref_table.items():
        np.testing.assert_array_equal(policy.table_[key], values, err_msg=key)


def test_cluster_quota_keeps_the_highest_first_and_ties_by_position():
    scores = {"dbp_cluster": np.array([0, 0, 0, 0, 1, 1]), "dbp_weight": np.full(6, 0.5),
              "dbp_distance": np.array([0.2, 0.9, 0.9, 0.1, 0.3, 0.7])}
    policy = ClusterQuota(keep_n=2)
    mask = policy.select(scores, np.ones(6, dtype=bool))
    # lower bound floor(0.5 * 2 / 2) = 0, equal weights: one row per cluster; in cluster 0 rows 1 and 2 tie, row 1 first
    assert mask.tolist() == [False, True, False, False, False, True]
    assert policy.audit_columns()["cluster_rank"].tolist() == [2, 0, 1, 3, 1, 0]


def test_cluster_codes_are_dense_in_sorted_id_order():
    clusters = np.array([7, -1, 3, 7, 12, 3])
    rows = clusters >= 0
    codes, ids = cluster_codes(clusters, rows)
    assert ids.tolist() == [3, 7, 12] and codes.dtype == np.int32
    assert codes.tolist() == [1, -1, 0, 1, 2, 0]
    big = clusters * 10**12  # beyond the counting range: the np.unique path gives the same codes
    big_codes, big_ids = cluster_codes(big, rows)
    assert big_codes.tolist() == codes.tolist() and big_ids.tolist() == (ids * 10**12).tolist()


def test_invalid_rows_are_kept_as_int8_codes_and_named_on_request(tmp_path):
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"text": ["ok", None, "  ", "fine", ""]}), path)
    info = Dataset(path, format="parquet", columns=ColumnMap(text="text")).ingest()
    assert info.invalid_code.dtype == np.int8
    assert info.invalid_code.tolist() == [0, 1, 2, 0, 2]
    assert info.invalid_reason.tolist() == ["", *INVALID_REASONS, "", INVALID_REASONS[1]]
    assert info.valid.tolist() == [True, False, False, True, False]
