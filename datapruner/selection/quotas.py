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

from datapruner.errors import ConfigError, InputDataError
from datapruner.selection.allocation import round_quotas, water_fill
from datapruner.selection.base import BUDGET_PARAMS_DOC, Policy, ranked
from datapruner.selection.ranking import PER_CLASS_PARAMS_DOC, RankingPolicy
from datapruner.validation import check_choice


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


def cluster_codes(clusters: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense cluster codes: ((n,) int32 code of each row in `rows`, -1 elsewhere; (k,) int64 sorted cluster ids).

    Code j is the j-th smallest cluster id among `rows` (float ids are truncated to integers).
    Small non-negative ids are counted (`np.bincount`), others go through `np.unique`.
    """
    picked = np.asarray(clusters)[rows]
    picked = picked.astype(np.int64) if picked.dtype.kind not in "iu" else picked
    codes = np.full(len(rows), -1, dtype=np.int32)
    if picked.size == 0:
        return codes, np.zeros(0, dtype=np.int64)
    top = int(picked.max())
    if int(picked.min()) >= 0 and top < max(1 << 20, 2 * picked.size):
        present = np.bincount(picked, minlength=top + 1) > 0
        ids = np.flatnonzero(present).astype(np.int64)
        lookup = np.cumsum(present, dtype=np.int64) - 1
        codes[rows] = lookup[picked]
    else:
        ids, inverse = np.unique(picked, return_inverse=True)
        codes[rows] = inverse.reshape(-1)
    return codes, ids.astype(np.int64)


class ClusterQuota(Policy):
    """Density-based pruning selection: per-cluster quotas by exact water-filling, hardest rows first.

    Keeps the budget's rows in total (`keep`, `keep_total` or `keep_n`). Candidates with no cluster, weight or score
    (NaN, or cluster -1) are dropped. Audit columns: `cluster_quota` (quota of the row's cluster,
    -1 for non-candidates) and `cluster_rank` (0 = farthest from its centroid). `table_` holds the
    per-cluster sizes, weights and quotas after `select`.

    Parameters
    ----------
    keep | keep_total | keep_n :
        The budget (exactly one): a fraction of the candidates, of the whole dataset, or a row count.
    cluster : str, default "dbp_cluster"
        Cluster column (-1 = not clustered).
    score : str, default "dbp_distance"
        Column ranked inside each cluster, highest kept first.
    weight : str, default "dbp_weight"
        Per-row probability ``p_j`` of the row's cluster.
    """

    name = "cluster_quota"
    budgeted = True
    defaults = {"cluster": "dbp_cluster", "score": "dbp_distance", "weight": "dbp_weight"}
    column_params = ("cluster", "score", "weight")
    params_doc = {
        **BUDGET_PARAMS_DOC,
        "cluster": "cluster column (default dbp_cluster)",
        "score": "distance column ranked inside each cluster, highest kept first (default dbp_distance)",
        "weight": "per-row cluster probability p_j = softmax(C_j / tau) (default dbp_weight)",
    }

    def select(self, scores, candidates, *, context=None):
        """Per-cluster quotas by water-filling, then the highest-`score` rows of each cluster up to its quota.

        Exact, over whole columns, at about 30 bytes per row: one float64 column (`score`), int32
        cluster codes, the grouping order and the ranks; the `cluster` and `weight` columns are
        read only to find the candidates and each cluster's weight.
        """
        for param in ("cluster", "weight", "score"):
            if self.param(param) not in scores:
                self.column(scores, param)  # raises the ConfigError naming the key
        usable = np.asarray(candidates, dtype=bool) & np.isfinite(self.column(scores, "weight"))
        values = self.column(scores, "score")
        usable &= np.isfinite(values)
        clusters = self.column(scores, "cluster", dtype=None)
        if clusters.dtype.kind not in "biuf":
            clusters = np.asarray(clusters, dtype=np.float64)
        usable &= clusters >= 0
        codes, ids = cluster_codes(clusters, usable)
        del clusters
        n_usable = int(np.count_nonzero(usable))
        n_keep = min(self.n_keep(candidates), n_usable)
        sizes = np.bincount(codes[usable], minlength=len(ids)).astype(np.int64)
        order = np.argsort(codes, kind="stable")[len(codes) - n_usable:]  # candidates grouped by cluster, in row order
        offsets = np.r_[0, np.cumsum(sizes)]
        weights = self.column(scores, "weight")[order[offsets[:-1]]]  # each cluster's weight, from its first row
        quotas = cluster_quotas(weights, sizes, n_keep)
        n = len(codes)
        mask = np.zeros(n, dtype=bool)
        rank = np.full(n, -1, dtype=np.int64)
        for j in range(len(ids)):
            members = order[offsets[j] : offsets[j + 1]]
            ranked_members = members[np.argsort(-values[members], kind="stable")]
            rank[ranked_members] = np.arange(len(members))
            mask[ranked_members[: quotas[j]]] = True
        self._codes, self._rank, self._quotas = codes, rank, quotas
        self.table_ = {"cluster": ids, "size": sizes, "weight": weights, "quota": quotas}
        return mask

    def audit_columns(self):
        """`cluster_quota` and `cluster_rank` per row (-1 for non-candidates), after `select`."""
        if not hasattr(self, "_rank"):
            return {}
        quota = np.full(len(self._codes), -1, dtype=np.int64)
        member = self._codes >= 0
        quota[member] = self._quotas[self._codes[member]]
        return {"cluster_quota": quota, "cluster_rank": self._rank}


PREFER = ("hard", "easy")


class Prototypes(RankingPolicy):
    """Prototypicality selection (METHODS.md A4): keep the hard (far) or easy (near) rows.

    The same rule as `top_fraction` without an offset: ``prefer: hard`` ranks `score` descending,
    ``prefer: easy`` ascending.

    Parameters
    ----------
    keep | keep_total | keep_n :
        The budget (exactly one): a fraction of the candidates, of the whole dataset, or a row count.
    prefer : {"hard", "easy"}, default "hard"
        "hard" keeps the rows farthest from their centroid (abundant data), "easy" the nearest
        (scarce data).
    score : str, default "proto_distance"
        Distance column.
    per_class : {false, true, "equal"}, default false
        Class quotas (METHODS.md D4), ranked inside each class.
    """

    name = "prototypes"
    defaults = {"prefer": "hard", "score": "proto_distance"}
    params_doc = {
        **BUDGET_PARAMS_DOC,
        "prefer": "'hard' keeps the rows farthest from their centroid (default; abundant data), 'easy' the nearest (scarce data)",
        "score": "distance column (default proto_distance)",
        **PER_CLASS_PARAMS_DOC,
    }

    def __init__(self, **params: Any):
        if "keep" in params and isinstance(params["keep"], str):
            raise ConfigError(self.key("keep"), params["keep"], "a number in (0, 1]; choose hard or easy rows with prefer: hard|easy")
        super().__init__(**params)
        self.prefer = check_choice(self.key("prefer"), self.param("prefer"), PREFER)

    def pick(self, scores, rows, n, context):
        """The `n` rows farthest from (hard) or nearest to (easy) their centroid."""
        return ranked(self.column(scores), rows, descending=self.prefer == "hard")[:n]
