"""Density-based pruning (A5): exact water-filling quotas, bounds, and the complexity -> share relation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from datapruner.curation.kmeans import SphericalKMeans
from datapruner.errors import ConfigError
from datapruner.scorers.density import cluster_complexity, density_weights
from datapruner.selection.quotas import ClusterQuota, cluster_quotas, quota_lower_bounds, water_fill


def _objective(x, a):
    return 0.5 * float(np.dot(x, x)) - float(np.dot(a, x))


def _integer_allocations(lower, upper, total):
    ranges = [range(int(lo), int(hi) + 1) for lo, hi in zip(lower, upper)]
    for x in itertools.product(*ranges):
        if sum(x) == total:
            yield np.array(x, dtype=np.float64)


@pytest.mark.parametrize("seed", range(40))
def test_quotas_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 5))
    sizes = rng.integers(0 if seed % 5 == 0 else 1, 7, k)
    if sizes.sum() == 0:
        sizes[0] = 3
    n_keep = int(rng.integers(0, sizes.sum() + 1))
    p = density_weights(rng.normal(0, 0.3, k), tau=0.5)
    a = p * n_keep
    lower = quota_lower_bounds(sizes, n_keep)
    quotas = cluster_quotas(p, sizes, n_keep)
    best = min(_objective(x, a) for x in _integer_allocations(lower, sizes, n_keep))
    assert quotas.sum() == n_keep
    assert np.all(quotas >= lower) and np.all(quotas <= sizes)
    assert _objective(quotas, a) <= best + 1e-9  # integer optimum
    x = water_fill(a, lower=lower, upper=sizes, total=n_keep)
    assert abs(x.sum() - n_keep) < 1e-9
    assert _objective(x, a) <= best + 1e-9  # the real solution is a lower bound of every integer one
    # and it is the real optimum: no feasible random direction improves it
    for _ in range(50):
        d = rng.normal(size=k)
        d -= d.mean()
        for step in (1e-3, 0.1, 1.0):
            y = x + step * d
            if np.all(y >= lower - 1e-12) and np.all(y <= sizes + 1e-12):
                assert _objective(y, a) >= _objective(x, a) - 1e-9


def test_water_fill_known_solution():
    # unconstrained optimum a = (6, 3, 1) within bounds and summing to 10 -> x = a
    np.testing.assert_allclose(water_fill(np.array([6.0, 3, 1]), lower=np.zeros(3), upper=np.full(3, 10.0), total=10), [6, 3, 1])
    # cluster 0 capped at 4: the 2 extra rows are shared equally by the others
    np.testing.assert_allclose(water_fill(np.array([6.0, 3, 1]), lower=np.zeros(3), upper=np.array([4.0, 10, 10]), total=10), [4, 4, 2])
    # a lower bound lifts cluster 2
    np.testing.assert_allclose(water_fill(np.array([6.0, 3, 1]), lower=np.array([0.0, 0, 3]), upper=np.full(3, 10.0), total=10), [5, 2, 3])


@pytest.fixture(scope="module")
def real_clusters(seeded_duplicates):
    x = seeded_duplicates.embeddings
    model = SphericalKMeans(20, random_state=0).fit(x)
    labels, dist = model.assign(x)
    stats = cluster_complexity(labels, dist, model.centroids_)
    stats["weight"] = density_weights(stats["complexity"], tau=0.5)
    return labels, dist, stats


@pytest.mark.parametrize("fraction", [0.05, 0.3, 0.5, 0.8, 1.0])
def test_quotas_on_real_embeddings_sum_and_bounds(real_clusters, fraction):
    labels, dist, stats = real_clusters
    n_keep = int(round(fraction * len(labels)))
    quotas = cluster_quotas(stats["weight"], stats["size"], n_keep)
    assert quotas.sum() == n_keep
    lo = np.minimum(np.floor(0.5 * n_keep / 20), stats["size"] - 1)
    assert np.all(quotas >= lo) and np.all(quotas <= stats["size"])


def test_complexity_statistics_on_real_embeddings(real_clusters):
    labels, dist, stats = real_clusters
    j = int(np.argmax(stats["size"]))
    assert stats["d_intra"][j] == pytest.approx(dist[labels == j].mean())
    assert np.all((stats["d_inter"] > 0) & (stats["d_inter"] < 2))
    np.testing.assert_allclose(stats["complexity"], stats["d_intra"] * stats["d_inter"])
    assert stats["weight"].sum() == pytest.approx(1.0)


def test_higher_complexity_gets_larger_kept_share(real_clusters):
    labels, dist, stats = real_clusters
    scores = {"dbp_cluster": labels.astype(float), "dbp_distance": dist.astype(float), "dbp_weight": stats["weight"][labels]}
    policy = ClusterQuota(keep=0.3)
    kept = policy.select(scores, np.ones(len(labels), dtype=bool))
    assert kept.sum() == round(0.3 * len(labels))
    share = np.bincount(labels[kept], minlength=20) / stats["size"]
    order = np.argsort(stats["complexity"])
    low, high = order[:7], order[-7:]
    assert share[high].mean() > share[low].mean() + 0.1
    rho = np.corrcoef(np.argsort(np.argsort(stats["complexity"])), np.argsort(np.argsort(share)))[0, 1]
    assert rho > 0.3  # Spearman correlation of complexity and kept share (measured 0.42; size matters too)
    # where no bound binds, the quota grows with complexity (x_j = p_j N_keep + t, rounded)
    quota = np.bincount(labels[kept], minlength=20)
    lo = np.minimum(np.floor(0.5 * kept.sum() / 20), stats["size"] - 1)
    free = np.flatnonzero((quota > lo) & (quota < stats["size"]))
    assert len(free) >= 5
    by_complexity = quota[free][np.argsort(stats["complexity"][free])]
    assert np.all(np.diff(by_complexity) >= -1)  # non-decreasing up to integer rounding
    assert by_complexity[-1] > by_complexity[0]
    # inside a cluster the kept rows are the farthest from the centroid (hard first)
    for j in range(20):
        members = labels == j
        if 0 < (kept & members).sum() < members.sum():
            assert dist[kept & members].min() >= dist[~kept & members].max()


def test_cluster_quota_bad_keep_fraction(real_clusters):
    labels, dist, stats = real_clusters
    scores = {"dbp_cluster": labels.astype(float), "dbp_distance": dist.astype(float), "dbp_weight": stats["weight"][labels]}
    for bad in (0, -0.1, 1.5, "half"):
        with pytest.raises(ConfigError, match=r"selection\[cluster_quota\]\.keep.*\(0, 1\]"):
            ClusterQuota(keep=bad)  # fails when built, before select
    # a missing column is named by the parameter that points at it
    del scores["dbp_cluster"]
    with pytest.raises(ConfigError, match=r"selection\[cluster_quota\]\.cluster.*'dbp_cluster'"):
        ClusterQuota(keep=0.5).select(scores, np.ones(len(labels), dtype=bool))
    scores["clusters_elsewhere"] = labels.astype(float)
    assert ClusterQuota(keep=0.5, cluster="clusters_elsewhere").select(scores, np.ones(len(labels), dtype=bool)).sum() == round(0.5 * len(labels))
    with pytest.raises(ConfigError, match="tau"):
        density_weights(stats["complexity"], tau=0)
