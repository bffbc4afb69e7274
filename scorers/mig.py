"""B3. Marginal information gain (after COMI, 2025) for text selection under a token budget.

COMI compresses into soft tokens for a trained decoder. This module implements its selection
principle for plain text (METHODS.md, B3):

``MIG(u) = alpha * cos(e_u, q) - beta * max_{v != u} cos(e_u, e_v)``     (higher = keep)

* Coarse: the context is split into groups (the passages; a single passage is split into fixed
  windows of `group_size` units). Each group's embedding is the L2-normalised mean of its unit
  embeddings (so a passage longer than the embedder window is represented by all of its units,
  never truncated), and its group MIG is computed with the same formula over groups. The budget is
  shared by ``softmax(group MIG / temperature)``, capped at each group's own size, with the excess
  redistributed to the uncapped groups (water-filling), integers fixed by largest remainders.
* Fine: inside a group, units are chosen greedily by the MMR form
  ``alpha * cos(e_u, q) - beta * max_{v in S} cos(e_u, e_v)``, where S holds every unit already
  taken (in any group).
* Both stages are run as one budget-free order (:func:`mig_order`): the group furthest below its
  share of the tokens taken so far gives its next MMR unit. The budget then takes units in that
  order while they fit (:func:`fill_in_order`). Any prefix holds each group's share (up to one
  unit), and a larger budget never keeps fewer tokens (issue 10: the earlier per-budget share
  allocation gave 17 tokens at a 24-token budget and nothing at 25).

All functions are pure over arrays; :func:`select_mig` is the adapter the pipeline calls.
"""

from __future__ import annotations

import numpy as np



def mig_scores(unit_embeddings: np.ndarray, query_embedding: np.ndarray, *, alpha: float = 1.0, beta: float = 1.0) -> np.ndarray:
    """Marginal information gain of every unit against the whole context.

    Parameters
    ----------
    unit_embeddings : (n, d) float32, rows L2-normalised.
    query_embedding : (d,) float32, L2-normalised.
    alpha, beta : weights of relevance and redundancy (COMI: both 1).

    Returns
    -------
    (n,) float64; higher = more relevant and less redundant. With one unit the redundancy is 0.
    """
    e = np.asarray(unit_embeddings, dtype=np.float64)
    q = np.asarray(query_embedding, dtype=np.float64)
    n = len(e)
    if n == 0:
        return np.zeros(0)
    relevance = e @ q
    if n == 1:
        return alpha * relevance
    sim = e @ e.T
    np.fill_diagonal(sim, -np.inf)
    return alpha * relevance - beta * sim.max(axis=1)


def mmr_select(
    unit_embeddings: np.ndarray,
    query_embedding: np.ndarray,
    weights: np.ndarray,
    candidates: np.ndarray,
    capacity: int,
    selected: np.ndarray,
    *,
    alpha: float = 1.0,
    beta: float = 1.0,
    min_score: float = -np.inf,
) -> int:
    """Greedy MMR: add the best fitting candidate until nothing fits (or scores fall below `min_score`).

    Parameters
    ----------
    unit_embeddings : (n, d) L2-normalised.
    query_embedding : (d,).
    weights : (n,) tokens per unit.
    candidates : indices allowed in this call.
    capacity : tokens available; ``None``-free: pass a large int for "no cap".
    selected : (n,) bool, updated in place; redundancy is measured against every True unit.
    min_score : stop when the best MMR score is below this (threshold mode).

    Returns
    -------
    tokens used by this call.
    """
    e = np.asarray(unit_embeddings, dtype=np.float64)
    relevance = alpha * (e @ np.asarray(query_embedding, dtype=np.float64))
    cand = [int(i) for i in candidates if not selected[i]]
    if not cand:
        return 0
    cand_arr = np.array(cand)
    chosen = np.flatnonzero(selected)
    redundancy = np.full(len(cand_arr), 0.0)
    if len(chosen):
        redundancy = (e[cand_arr] @ e[chosen].T).max(axis=1)
    alive = np.ones(len(cand_arr), dtype=bool)
    used, left = 0, capacity
    while True:
        fits = alive & (np.asarray(weights)[cand_arr] <= left)
        if not fits.any():
            break
        score = relevance[cand_arr] - beta * redundancy
        score = np.where(fits, score, -np.inf)
        j = int(np.argmax(score))
        if score[j] < min_score:
            break
        i = int(cand_arr[j])
        selected[i] = True
        alive[j] = False
        used += int(weights[i])
        left -= int(weights[i])
        redundancy = np.maximum(redundancy, e[cand_arr] @ e[i])
    return used


def mig_order(
    unit_embeddings: np.ndarray,
    query_embedding: np.ndarray,
    weights: np.ndarray,
    groups: np.ndarray,
    preselected: np.ndarray,
    *,
    alpha: float = 1.0,
    beta: float = 1.0,
    temperature: float = 0.1,
) -> np.ndarray:
    """The budget-free order in which units are taken: coarse group shares and fine MMR, at once.

    Each group's share is ``softmax(group MIG / temperature)`` (renormalised over the groups that
    still have units: water-filling). At each step the group furthest below its share of the
    tokens taken so far gives its next unit, the one with the best MMR score
    ``alpha cos(e_u, q) - beta max_{v taken} cos(e_u, e_v)``. Any prefix of the order therefore
    holds each group's share of that prefix's tokens (up to one unit), which is the coarse
    allocation of B3 for a budget equal to the prefix -- and because the order does not depend on
    the budget, filling it under a larger budget never keeps fewer tokens.

    Parameters
    ----------
    unit_embeddings : (n, d) L2-normalised; query_embedding : (d,); weights : (n,) tokens per unit.
    groups : (n,) group id of each unit; preselected : (n,) bool units already kept (they count as
        taken, for redundancy and for their group's tokens, and are not in the order).

    Returns
    -------
    int array: the units not preselected, in the order they are taken.
    """
    e = np.asarray(unit_embeddings, dtype=np.float64)
    w = np.asarray(weights, dtype=np.int64)
    groups = np.asarray(groups, dtype=np.int64)
    taken = np.asarray(preselected, dtype=bool).copy()
    n = len(e)
    g = int(groups.max()) + 1 if n else 0
    group_emb = np.zeros((g, e.shape[1]))
    np.add.at(group_emb, groups, e)
    norms = np.linalg.norm(group_emb, axis=1, keepdims=True)
    group_emb = group_emb / np.where(norms > 0, norms, 1.0)
    present = np.bincount(groups, minlength=g) > 0
    share = np.zeros(g)
    z = mig_scores(group_emb[present], query_embedding, alpha=alpha, beta=beta) / temperature
    share[present] = np.exp(z - z.max())
    relevance = alpha * (e @ np.asarray(query_embedding, dtype=np.float64))
    redundancy = np.zeros(n)
    if taken.any():
        redundancy = (e @ e[taken].T).max(axis=1)
    group_tokens = np.bincount(groups, weights=np.where(taken, w, 0), minlength=g).astype(np.float64)
    left = np.bincount(groups, weights=(~taken).astype(np.float64), minlength=g)
    order = []
    for _ in range(int((~taken).sum())):
        active = left > 0
        p = np.where(active, share, 0.0)
        p = p / p.sum() if p.sum() > 0 else active / active.sum()
        deficit = np.where(active, p * (group_tokens[active].sum() + 1.0) - group_tokens, -np.inf)
        gi = int(np.lexsort((np.arange(g), -p, -deficit))[0])
        cand = np.flatnonzero((groups == gi) & ~taken)
        score = relevance[cand] - beta * redundancy[cand]
        i = int(cand[int(np.argmax(score))])
        order.append(i)
        taken[i] = True
        left[gi] -= 1
        group_tokens[gi] += w[i]
        redundancy = np.maximum(redundancy, e @ e[i])
    return np.array(order, dtype=np.int64)


def fill_in_order(weights: np.ndarray, order: np.ndarray, capacity: int, keep: np.ndarray) -> np.ndarray:
    """Visit units in `order` and keep each that fits the tokens left (a new mask).

    With a fixed order this greedy fill is monotone: a larger `capacity` never keeps fewer tokens
    (where the two runs first differ, the larger one takes a unit that fills it completely).
    """
    keep = np.asarray(keep, dtype=bool).copy()
    w = np.asarray(weights, dtype=np.int64)
    left = int(capacity)
    for i in order:
        if not keep[i] and w[i] <= left:
            keep[i] = True
            left -= int(w[i])
    return keep


def select_mig(
    unit_embeddings: np.ndarray,
    query_embedding: np.ndarray,
    weights: np.ndarray,
    groups: np.ndarray,
    *,
    capacity: int | None,
    threshold: float | None = None,
    preselected: np.ndarray | None = None,
    alpha: float = 1.0,
    beta: float = 1.0,
    temperature: float = 0.1,
) -> np.ndarray:
    """Coarse group shares then fine greedy MMR inside groups.

    Parameters
    ----------
    unit_embeddings : (n, d) L2-normalised unit embeddings.
    query_embedding : (d,) L2-normalised query embedding.
    weights : (n,) tokens per unit.
    groups : (n,) int group id of each unit (0..g-1).
    capacity : tokens available after `preselected` units (None = threshold mode).
    threshold : in threshold mode, keep units while their MMR score is at least this.
    preselected : (n,) bool units already kept (forced); they count as selected for redundancy.

    Returns
    -------
    (n,) bool mask of kept units (including `preselected`).
    """
    e = np.asarray(unit_embeddings, dtype=np.float64)
    n = len(e)
    selected = np.zeros(n, dtype=bool) if preselected is None else np.asarray(preselected, dtype=bool).copy()
    if n == 0:
        return selected
    w = np.asarray(weights, dtype=np.int64)
    if capacity is None:
        mmr_select(e, query_embedding, w, np.arange(n), np.iinfo(np.int64).max, selected, alpha=alpha, beta=beta,
                   min_score=-np.inf if threshold is None else threshold)
        return selected
    order = mig_order(e, query_embedding, w, groups, selected, alpha=alpha, beta=beta, temperature=temperature)
    return fill_in_order(w, order, capacity, selected)
