"""What a method hands back for one item, and the shared selection rules.

A method scores the units of an item and decides which to keep (:class:`UnitSelection`). Two
rules are common to most methods and live here once: forced units first
(:func:`datapruner.compression.budget.select_forced`) and the greedy "fill by score while it
fits" loop (:func:`fill_by_score`); :func:`select_by_scores` chains them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datapruner.compression.budget import select_forced
from datapruner.compression.item import CompressionItem


@dataclass(frozen=True)
class UnitSelection:
    """A method's decision for one item.

    Attributes
    ----------
    scores : (n_units,) float, each unit's score (higher = more worth keeping; the scale is the
        method's). The final cap drops the lowest-scored kept units first if the rendered text
        is over the cap.
    passage_scores : (n_passages,) float, relevance of each passage (NaN for a passage without units).
    keep : (n_units,) bool, the units to keep. In budget mode their weights should fit the cap;
        the engine re-counts the rendered text and enforces the cap in any case.
    """

    scores: np.ndarray
    passage_scores: np.ndarray
    keep: np.ndarray


def fill_by_score(weights: np.ndarray, scores: np.ndarray, keep: np.ndarray, capacity: int,
                  allowed: np.ndarray | None = None) -> np.ndarray:
    """Greedy fill: visit units by decreasing score (ties: earlier unit first) and keep each that fits.

    Parameters
    ----------
    weights : (n,) tokens per unit.
    scores : (n,) unit scores (NaN ranks last).
    keep : (n,) bool, units already kept (not counted again); a new mask is returned.
    capacity : tokens still available.
    allowed : (n,) bool, the units that may be added (default: all).

    Returns
    -------
    (n,) bool mask: `keep` plus the added units; added weights never exceed `capacity`.
    """
    keep = np.asarray(keep, dtype=bool).copy()
    s = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)
    w = np.asarray(weights, dtype=np.int64)
    left = int(capacity)
    for i in np.lexsort((np.arange(len(s)), -s)):
        if not keep[i] and (allowed is None or allowed[i]) and w[i] <= left:
            keep[i] = True
            left -= int(w[i])
    return keep


def select_by_scores(item: CompressionItem, scores: np.ndarray, *, allowed: np.ndarray | None = None) -> np.ndarray:
    """Budget mode of a score-only method: forced units first, then :func:`fill_by_score` under the cap.

    Parameters
    ----------
    item : the item (``item.cap`` must be set).
    scores : (n_units,) unit scores.
    allowed : (n_units,) bool, units that may be kept (default: all); forced units outside it are not kept.
    """
    forced = item.forced if allowed is None else item.forced & allowed
    keep, left = select_forced(item.weights, scores, forced, item.cap)
    return fill_by_score(item.weights, scores, keep, left, allowed)


def passage_max_scores(item: CompressionItem, scores: np.ndarray) -> np.ndarray:
    """Each passage's score as the best score of its units (NaN for a passage without units)."""
    s = np.asarray(scores, dtype=np.float64)
    return np.array([float(s[item.passage == p].max()) if (item.passage == p).any() else float("nan")
                     for p in range(len(item.passages))])


def best_until(scores: np.ndarray, sizes: np.ndarray, limit: float) -> np.ndarray:
    """Coarse selection of groups (passages, chunks): take them by decreasing score (ties: lower
    index first) until the taken sizes sum to at least `limit`; always at least one.

    Returns
    -------
    sorted int array of the taken group indices.
    """
    order = np.lexsort((np.arange(len(scores)), -np.asarray(scores, dtype=np.float64)))
    kept, total = [], 0.0
    for j in order:
        if kept and total >= limit:
            break
        kept.append(int(j))
        total += float(sizes[j])
    return np.array(sorted(kept), dtype=np.int64)
