"""Windows and units of the sequence-labelling pruner (no model): how a passage is cut into encoder
windows at unit ends, which tokens belong to a unit, and the threshold rule of Provence."""

from __future__ import annotations

import numpy as np

from datapruner.errors import InputDataError

CONSERVATIVE_THRESHOLD = 0.1
AGGRESSIVE_THRESHOLD = 0.5


def keep_units_by_threshold(unit_probs: np.ndarray, *, threshold: float = CONSERVATIVE_THRESHOLD) -> np.ndarray:
    """Threshold mode of B1: keep a unit when its mean keep-probability exceeds `threshold`.

    Parameters
    ----------
    unit_probs : (n_units,) float array of mean keep-probabilities in [0, 1] (higher = keep).
    threshold : T in [0, 1); 0.1 is conservative (keeps more), 0.5 aggressive.

    Returns
    -------
    (n_units,) bool array, True where ``unit_probs > threshold``.
    """
    if not 0.0 <= float(threshold) < 1.0:
        raise InputDataError(
            f"threshold must be in [0, 1), got {threshold!r}; use 0.1 (conservative) or 0.5 (aggressive)"
        )
    probs = np.asarray(unit_probs, dtype=np.float64)
    return probs > float(threshold)


def plan_windows(unit_token_ends: list[int], n_tokens: int, capacity: int) -> list[tuple[int, int]]:
    """Split ``n_tokens`` passage tokens into windows of at most `capacity` tokens, cutting at unit ends.

    Parameters
    ----------
    unit_token_ends : token index one past the last token of each unit, ascending.
    n_tokens : number of passage tokens.
    capacity : passage tokens that fit in one encoder window (>= 1).

    Returns
    -------
    Half-open token ranges covering ``[0, n_tokens)`` in order, each at most `capacity` long. A cut
    falls at a unit end whenever one fits; a unit longer than `capacity` is cut at token boundaries.
    """
    if capacity < 1:
        raise InputDataError(f"window capacity must be >= 1 token, got {capacity}")
    cuts = sorted({e for e in unit_token_ends if 0 < e < n_tokens})
    windows: list[tuple[int, int]] = []
    start = 0
    ci = 0
    while start < n_tokens:
        limit = start + capacity
        if limit >= n_tokens:
            windows.append((start, n_tokens))
            break
        best = None
        while ci < len(cuts) and cuts[ci] <= limit:
            if cuts[ci] > start:
                best = cuts[ci]
            ci += 1
        end = best if best is not None else limit
        windows.append((start, end))
        start = end
    if not windows:
        windows.append((0, 0))
    return windows


def unit_token_indices(offsets: np.ndarray, units: list[tuple[int, int]]) -> list[list[int]]:
    """Token indices overlapping each unit's character span (tokens with empty offsets are skipped)."""
    if len(offsets) == 0:
        return [[] for _ in units]
    starts, ends = offsets[:, 0], offsets[:, 1]
    real = ends > starts
    out = []
    for s, e in units:
        hit = np.nonzero(real & (starts < e) & (ends > s))[0]
        out.append(hit.tolist())
    return out
