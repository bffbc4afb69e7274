"""Selection policies of the clustering family: per-cluster quotas (A5) and keep hard/easy (A4).

Density-based pruning (Abbas et al. 2024) gives cluster j a quota `x_j` of a total budget `N_keep`:

    minimise   1/2 ||x||^2 - (p N_keep)^T x
    subject to sum_j x_j = N_keep,   lo_j <= x_j <= |C_j|,   lo_j = min(floor(0.5 N_keep / k), |C_j| - 1)

Completing the square, this is the Euclidean projection of `a = p N_keep` onto the box-bounded
simplex, whose KKT solution is `x_j = clip(a_j + t, lo_j, |C_j|)` for the one `t` at which the sum
equals `N_keep` (bounded water-filling). `water_fill` finds `t` exactly: the sum is piecewise linear
in `t` with breakpoints `lo_j - a_j` and `|C_j| - a_j`; a binary search over the sorted breakpoints
finds the linear piece that crosses `N_keep`, which is then solved in closed form. `round_quotas`
turns the real solution into integers that sum to exactly `N_keep` by largest remainders (not `rint`).
"""

from __future__ import annotations

import math

import numpy as np

from typing import Any

from datapruner.errors import InputDataError
from datapruner.selection.base import Policy, count_for, ranked
from datapruner.validation import check_choice, check_fraction


def water_fill(targets: np.ndarray, *, lower: np.ndarray, upper: np.ndarray, total: float) -> np.ndarray:
    """Exact solution of min 1/2||x||^2 - targets^T x  s.t.  sum x = total, lower <= x <= upper.

    Parameters
    ----------
    targets : (k,) the unconstrained optimum (`p * N_keep` in density-based pruning).
    lower, upper : (k,) bounds with lower <= upper.
    total : required sum, with sum(lower) <= total <= sum(upper).

    Returns
    -------
    x : (k,) float64, `clip(targets + t, lower, upper)` with sum(x) == total (up to float rounding).
    """
    a = np.asarray(targets, dtype=np.float64)
    lo = np.asarray(lower, dtype=np.float64)
    hi = np.asarray(upper, dtype=np.float64)
    if not (a.shape == lo.shape == hi.shape and a.ndim == 1):
        raise InputDataError(f"targets, lower and upper must be 1-D arrays of one length; got {a.shape}, {lo.shape}, {hi.shape}")
    if not (np.isfinite(a).all() and np.isfinite(lo).all() and np.isfinite(hi).all()):
        raise InputDataError("water_fill: targets and bounds must be finite")
    if np.any(lo > hi):
        j = int(np.flatnonzero(lo > hi)[0])
        raise InputDataError(f"water_fill: lower[{j}]={lo[j]} exceeds upper[{j}]={hi[j]}")
    if not lo.sum() - 1e-9 <= total <= hi.sum() + 1e-9:
        raise InputDataError(f"water_fill: total {total} is outside [sum(lower), sum(upper)] = [{lo.sum()}, {hi.sum()}]")
    if a.size == 0:
        return a

    def filled(t: float) -> float:
        return float(np.clip(a + t, lo, hi).sum())

    bps = np.unique(np.concatenate([lo - a, hi - a]))
    if filled(bps[-1]) <= total:  # total == sum(upper)
        return hi.copy()
    i, j = 0, len(bps) - 1  # invariant: filled(bps[i]) <= total < filled(bps[j])
    while j - i > 1:
        mid = (i + j) // 2
        if filled(bps[mid]) <= total:
            i = mid
        else:
            j = mid
    t0, t1 = bps[i], bps[j]
    probe = a + 0.5 * (t0 + t1)
    free = (probe > lo) & (probe < hi)
    fixed = lo[probe <= lo].sum() + hi[probe >= hi].sum()
    t = (total - fixed - a[free].sum()) / free.sum() if free.any() else t0
    return np.clip(a + min(max(t, t0), t1), lo, hi)


def round_quotas(x: np.ndarray, *, total: int, upper: np.ndarray) -> np.ndarray:
    """Integers that sum to exactly `total`: floor(x), then +1 to the largest remainders.

    Ties go to the lower index; a +1 is never given where floor(x) already equals `upper`.
    Because the fractional parts sum to the shortfall, the result stays within the bounds of `x`.
    """
    x = np.asarray(x, dtype=np.float64)
    upper = np.asarray(upper, dtype=np.int64)
    base = np.floor(x + 1e-9).astype(np.int64)
    base = np.minimum(base, upper)
    short = int(total) - int(base.sum())
    if short < 0 or short > int((upper - base).sum()):
        raise InputDataError(f"round_quotas: cannot reach total {total} from quotas summing to {x.sum():.6g} within the bounds")
    if short:
        rem = np.where(base < upper, x - base, -np.inf)
        order = np.lexsort((np.arange(len(x)), -rem))
        base[order[:short]] += 1
    return base


def cluster_quotas(weights: np.ndarray, sizes: np.ndarray, n_keep: int) -> np.ndarray:
    """Integer per-cluster quotas of density-based pruning (METHODS.md A5).

    Parameters
    ----------
    weights : (k,) cluster probabilities `p_j = softmax(C_j / tau)` (higher = more complex, gets more).
    sizes : (k,) cluster sizes `|C_j|` (candidate rows in each cluster).
    n_keep : total budget, 0 <= n_keep <= sum(sizes).

    Returns
    -------
    (k,) int64 quotas with `sum == n_keep` and `lo_j <= x_j <= |C_j|`, where
    `lo_j = min(floor(0.5 n_keep / k), |C_j| - 1)` (0 for empty clusters) and k counts the
    non-empty clusters.
    """
    weights = np.asarray(weights, dtype=np.float64)
    sizes = np.asarray(sizes, dtype=np.int64)
    if weights.shape != sizes.shape:
        raise InputDataError(f"weights {weights.shape} and sizes {sizes.shape} must have one entry per cluster")
    if np.any(sizes < 0):
        raise InputDataError("cluster sizes must be >= 0")
    if not 0 <= n_keep <= sizes.sum():
        raise InputDataError(f"n_keep {n_keep} must lie in [0, {int(sizes.sum())}] (the rows available)")
    lower = quota_lower_bounds(sizes, n_keep)
    x = water_fill(weights * n_keep, lower=lower, upper=sizes, total=float(n_keep))
    return round_quotas(x, total=n_keep, upper=sizes)


def quota_lower_bounds(sizes: np.ndarray, n_keep: int) -> np.ndarray:
    """`lo_j = min(floor(0.5 n_keep / k), |C_j| - 1)`, 0 for empty clusters; k = non-empty clusters."""
    sizes = np.asarray(sizes, dtype=np.int64)
    k = int((sizes > 0).sum())
    floor_share = math.floor(0.5 * n_keep / k) if k else 0
    return np.maximum(np.minimum(floor_share, sizes - 1), 0)


def rank_within_clusters(clusters: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(n,) rank of each row inside its cluster by descending `values` (0 = highest), ties by position."""
    clusters = np.asarray(clusters, dtype=np.int64)
    order = np.lexsort((np.arange(len(clusters)), -np.asarray(values, dtype=np.float64), clusters))
    sorted_clusters = clusters[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_clusters)) + 1]
    first = np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    rank = np.empty(len(clusters), dtype=np.int64)
    rank[order] = np.arange(len(order)) - first
    return rank


class ClusterQuota(Policy):
    """Density-based pruning selection: per-cluster quotas by exact water-filling, hardest rows first.

    Keeps `count_for(keep, candidates)` rows in total. Candidates with no cluster, weight or score
    (NaN, or cluster -1) are dropped. Audit columns: `cluster_quota` (quota of the row's cluster,
    -1 for non-candidates) and `cluster_rank` (0 = farthest from its centroid). `table_` holds the
    per-cluster sizes, weights and quotas after `select`.

    Parameters
    ----------
    keep : float in (0, 1]
        Fraction of the candidates to keep.
    cluster : str, default "dbp_cluster"
        Cluster column (-1 = not clustered).
    score : str, default "dbp_distance"
        Column ranked inside each cluster, highest kept first.
    weight : str, default "dbp_weight"
        Per-row probability ``p_j`` of the row's cluster.
    """

    name = "cluster_quota"
    required = ("keep",)
    defaults = {"cluster": "dbp_cluster", "score": "dbp_distance", "weight": "dbp_weight"}
    column_params = ("cluster", "score", "weight")
    params_doc = {
        "keep": "fraction of the candidates to keep, in (0, 1]",
        "cluster": "cluster column (default dbp_cluster)",
        "score": "distance column ranked inside each cluster, highest kept first (default dbp_distance)",
        "weight": "per-row cluster probability p_j = softmax(C_j / tau) (default dbp_weight)",
    }

    def __init__(self, **params: Any):
        super().__init__(**params)
        self.keep = check_fraction(self.key("keep"), self.param("keep"))

    def select(self, scores, candidates):
        """Per-cluster quotas by water-filling, then the highest-`score` rows of each cluster up to its quota."""
        clusters = self.column(scores, "cluster")
        weights = self.column(scores, "weight")
        values = self.column(scores, "score")
        usable = candidates & (clusters >= 0) & np.isfinite(values) & np.isfinite(weights)
        rows = np.flatnonzero(usable)
        n_keep = min(count_for(self.keep, int(candidates.sum())), len(rows))
        ids, inv = np.unique(clusters[rows].astype(np.int64), return_inverse=True)
        sizes = np.bincount(inv, minlength=len(ids))
        first = np.unique(inv, return_index=True)[1]
        quotas = cluster_quotas(weights[rows][first], sizes, n_keep)
        rank = rank_within_clusters(inv, values[rows])
        n = len(candidates)
        self._quota = np.full(n, -1, dtype=np.int64)
        self._rank = np.full(n, -1, dtype=np.int64)
        self._quota[rows], self._rank[rows] = quotas[inv], rank
        self.table_ = {"cluster": ids, "size": sizes, "weight": weights[rows][first], "quota": quotas}
        mask = np.zeros(n, dtype=bool)
        mask[rows[rank < quotas[inv]]] = True
        return mask

    def audit_columns(self):
        """`cluster_quota` and `cluster_rank` per row (-1 for non-candidates), after `select`."""
        if not hasattr(self, "_quota"):
            return {}
        return {"cluster_quota": self._quota, "cluster_rank": self._rank}


PREFER = ("hard", "easy")


class Prototypes(Policy):
    """Prototypicality selection (METHODS.md A4): keep the hard (far) or easy (near) `keep` fraction of rows.

    The same rule as `top_fraction` without an offset: ``prefer: hard`` ranks `score` descending,
    ``prefer: easy`` ascending.

    Parameters
    ----------
    keep : float in (0, 1]
        Fraction of the candidates to keep.
    prefer : {"hard", "easy"}, default "hard"
        "hard" keeps the rows farthest from their centroid (abundant data), "easy" the nearest
        (scarce data).
    score : str, default "proto_distance"
        Distance column.
    """

    name = "prototypes"
    required = ("keep",)
    defaults = {"prefer": "hard", "score": "proto_distance"}
    params_doc = {
        "keep": "fraction of the candidates to keep, in (0, 1]",
        "prefer": "'hard' keeps the rows farthest from their centroid (default; abundant data), 'easy' the nearest (scarce data)",
        "score": "distance column (default proto_distance)",
    }

    def __init__(self, **params: Any):
        super().__init__(**params)
        keep = check_fraction(self.key("keep"), self.param("keep"), hint="; choose hard or easy rows with prefer: hard|easy")
        prefer = check_choice(self.key("prefer"), self.param("prefer"), PREFER)
        self.keep, self.prefer = keep, prefer

    def select(self, scores, candidates):
        """The `keep` fraction of candidates farthest from (hard) or nearest to (easy) their centroid."""
        rows = np.flatnonzero(candidates)
        order = ranked(self.column(scores), rows, descending=self.prefer == "hard")
        mask = np.zeros_like(candidates)
        mask[order[: count_for(self.keep, len(rows))]] = True
        return mask
