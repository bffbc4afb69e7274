"""D2. D2 pruning (Maharana et al., ICLR 2024): message passing over a kNN graph, difficulty and diversity.

1. Optional hard cut: drop the hardest `beta` fraction first (as CCS does; default 0).
2. kNN graph over the remaining rows' L2-normalised embeddings: k = 10 neighbours by exact faiss
   search, ``d_ij`` the Euclidean distance.
3. Forward message passing: ``s'_i = s_i + sum_{j in N(i)} exp(-gamma_f d_ij) s_j`` with s the
   difficulty min-max normalised to [0, 1].
4. Reverse message passing while selecting: repeatedly take the unselected row i with the largest
   s' (ties: the lower position) and, for each neighbour j of i, ``s'_j -= exp(-gamma_r d_ij) s'_i``.
"""

from __future__ import annotations

import heapq
from typing import Any

import numpy as np

from datapruner.selection.base import BUDGET_PARAMS_DOC
from datapruner.selection.coverage import check_beta, hardest_cut
from datapruner.selection.ranking import DIRECTIONS, PER_CLASS_PARAMS_DOC, RankingPolicy
from datapruner.validation import check_choice, check_number, check_positive_int


def knn_graph(embeddings: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours (self excluded) of every row by faiss.

    Parameters
    ----------
    embeddings : (n, d) float32, L2-normalised.
    k : neighbours per row; fewer when n - 1 < k.

    Returns
    -------
    neighbours : (n, k') int64 positions. distances : (n, k') float64 Euclidean distances.
    """
    import faiss

    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    n = len(x)
    k = min(k, n - 1)
    if k <= 0:
        return np.zeros((n, 0), dtype=np.int64), np.zeros((n, 0))
    index = faiss.IndexFlatL2(x.shape[1])
    index.add(x)
    sq, idx = index.search(x, k + 1)
    neighbours = np.empty((n, k), dtype=np.int64)
    distances = np.empty((n, k))
    for i in range(n):
        others = idx[i] != i
        row, dist = idx[i][others][:k], sq[i][others][:k]
        neighbours[i], distances[i] = row, np.sqrt(np.maximum(dist, 0.0))
    return neighbours, distances


def d2_select(values: np.ndarray, embeddings: np.ndarray, n: int, *, k: int = 10, gamma_forward: float = 1.0,
              gamma_reverse: float = 1.0, beta: float = 0.0) -> np.ndarray:
    """Positions (into `values`) of the `n` rows D2 keeps, in selection order; higher value = harder.

    Parameters
    ----------
    values : (M,) finite difficulty scores. embeddings : (M, d) L2-normalised.
    n : rows to keep, 0 <= n <= M.
    k, gamma_forward, gamma_reverse, beta : as in the module docstring.
    """
    pool = hardest_cut(values, n, beta)
    if n == 0 or len(pool) == 0:
        return np.zeros(0, dtype=np.int64)
    v = values[pool]
    span = v.max() - v.min()
    s = (v - v.min()) / span if span > 0 else np.zeros(len(v))
    neighbours, dist = knn_graph(embeddings[pool], k)
    score = s + (np.exp(-gamma_forward * dist) * s[neighbours]).sum(1)
    reverse = np.exp(-gamma_reverse * dist)
    heap = [(-score[i], i) for i in range(len(pool))]
    heapq.heapify(heap)
    selected = np.zeros(len(pool), dtype=bool)
    order: list[int] = []
    while len(order) < n:
        neg, i = heapq.heappop(heap)
        if selected[i]:
            continue
        if -neg != score[i]:  # stale entry: scores only decrease, so re-queue the current value
            heapq.heappush(heap, (-score[i], i))
            continue
        selected[i] = True
        order.append(i)
        score[neighbours[i]] -= reverse[i] * score[i]
    return pool[np.asarray(order, dtype=np.int64)]


class D2(RankingPolicy):
    """D2 pruning (METHODS.md D2): forward and reverse message passing over a kNN graph of the embeddings.

    Parameters
    ----------
    score : str
        Difficulty column (higher = harder unless ``direction: low``); rows where it is NaN are dropped.
    keep | keep_total | keep_n :
        The budget (exactly one).
    k : int >= 1, default 10
        Neighbours in the kNN graph.
    gamma_forward, gamma_reverse : float > 0, default 1.0
        Decay of the forward and reverse messages with distance.
    beta : float in [0, 1), default 0
        Fraction of the hardest rows dropped before the graph is built.
    direction : {"high", "low"}, default "high"
    per_class : {false, true, "equal"}, default false
        Class quotas (D4); the graph is then built and walked inside each class.

    Needs the run's embeddings (L2-normalised). Deterministic: exact search, ties by row index.
    """

    name = "d2"
    required = ("score",)
    defaults = {"k": 10, "gamma_forward": 1.0, "gamma_reverse": 1.0, "beta": 0.0, "direction": "high"}
    params_doc = {
        "score": "difficulty column (higher = harder unless direction: low)",
        **BUDGET_PARAMS_DOC,
        "k": "neighbours in the kNN graph, an integer >= 1 (default 10)",
        "gamma_forward": "forward message decay with distance, > 0 (default 1.0)",
        "gamma_reverse": "reverse message decay with distance, > 0 (default 1.0)",
        "beta": "fraction of the hardest rows dropped before the graph is built, in [0, 1) (default 0)",
        "direction": "'high' (default): high scores are hard; 'low': low scores are hard",
        **PER_CLASS_PARAMS_DOC,
    }

    def __init__(self, **params: Any):
        super().__init__(**params)
        self.k = check_positive_int(self.key("k"), self.param("k"))
        self.gamma_forward = check_number(self.key("gamma_forward"), self.param("gamma_forward"), low=0.0, low_open=True)
        self.gamma_reverse = check_number(self.key("gamma_reverse"), self.param("gamma_reverse"), low=0.0, low_open=True)
        self.beta = check_beta(self.key("beta"), self.param("beta"))
        self.direction = check_choice(self.key("direction"), self.param("direction"), DIRECTIONS)

    def pick(self, scores, rows, n, context):
        """D2 over `rows` (the graph spans these rows only)."""
        values = self.column(scores)[rows]
        if self.direction == "low":
            values = -values
        emb = context.require_embeddings(self.name)[rows]
        return rows[d2_select(values, emb, n, k=self.k, gamma_forward=self.gamma_forward,
                              gamma_reverse=self.gamma_reverse, beta=self.beta)]
