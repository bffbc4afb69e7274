"""Checks of class labels and predicted probabilities, shared by every scorer that takes them.

`check_labels`, `check_pred_probs` and `softmax` are used by every function over
``(labels, pred_probs)`` arrays (EL2N, GraNd, confident learning, the EU plane) and by the proxy,
so every scorer fails the same way on the same bad input: what was expected, what was given, and
how to fix it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from datapruner.errors import InputDataError

#: Row sums of `pred_probs` may differ from 1 by at most this much.
SUM_TOLERANCE = 1e-3


def check_labels(labels: Any, *, n_classes: int | None = None, name: str = "labels") -> np.ndarray:
    """Validate class indices; returns them as a (N,) int64 array.

    Parameters
    ----------
    labels : array-like of shape (N,)
        Integer class indices in ``0 .. n_classes - 1``.
    n_classes : int, optional
        Number of classes K (the width of `pred_probs`). Without it, K = max(labels) + 1.
    """
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise InputDataError(f"{name} must be a 1-D array of class indices; given shape {arr.shape}. Pass one integer per row")
    if arr.size == 0:
        raise InputDataError(f"{name} is empty; pass at least two rows")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise InputDataError(
                f"{name} must be integer class indices; given non-integer values (e.g. {arr[arr != np.round(arr)][:1].tolist()}). "
                f"Map each class to an index 0..K-1"
            )
    elif arr.dtype.kind not in "iub":
        raise InputDataError(f"{name} must be integer class indices; given dtype {arr.dtype}. Map each class to an index 0..K-1")
    arr = arr.astype(np.int64)
    k = n_classes if n_classes is not None else int(arr.max()) + 1
    bad = (arr < 0) | (arr >= k)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputDataError(
            f"{name}[{i}] = {int(arr[i])} is out of range; expected class indices in 0..{k - 1} "
            f"(pred_probs has {k} columns). Fix the label or pass pred_probs with one column per class"
        )
    return arr


def check_pred_probs(pred_probs: Any, *, labels: np.ndarray | None = None, name: str = "pred_probs") -> np.ndarray:
    """Validate predicted probabilities; returns them as float64, shape (N, K) or (S, N, K).

    Every row must be finite, in [0, 1], and sum to 1 within `SUM_TOLERANCE`. With `labels`, their
    length must equal N and every label must index a column.
    """
    p = np.asarray(pred_probs, dtype=np.float64)
    if p.ndim not in (2, 3):
        raise InputDataError(
            f"{name} must have shape (N, K) (or (S, N, K) for S runs); given shape {p.shape}. "
            f"Pass one row of K class probabilities per example"
        )
    if p.shape[-1] < 2:
        raise InputDataError(f"{name} has {p.shape[-1]} column; expected K >= 2 classes (one column per class)")
    if not np.all(np.isfinite(p)):
        idx = np.argwhere(~np.isfinite(p))[0].tolist()
        raise InputDataError(f"{name} has a non-finite value (NaN or inf) at index {idx}; expected finite probabilities. Remove or fix that row")
    if p.min() < 0 or p.max() > 1:
        raise InputDataError(
            f"{name} has values outside [0, 1] (min {p.min():.4g}, max {p.max():.4g}); expected probabilities. "
            f"If these are logits, convert them with softmax (or use logits_column)"
        )
    sums = p.sum(-1)
    off = np.abs(sums - 1.0) > SUM_TOLERANCE
    if off.any():
        idx = np.argwhere(off)[0].tolist()
        raise InputDataError(
            f"rows of {name} must sum to 1; row {idx} sums to {float(sums[tuple(idx)]):.6g}. "
            f"Normalise each row (or pass logits through softmax)"
        )
    if labels is not None:
        if len(labels) != p.shape[-2]:
            raise InputDataError(f"labels has {len(labels)} rows but {name} has {p.shape[-2]}; pass one label per row of {name}")
        check_labels(labels, n_classes=p.shape[-1])
    return p


def softmax(logits: Any, *, name: str = "logits") -> np.ndarray:
    """Row-wise softmax of (…, K) logits, numerically stable; rejects NaN/inf with a clear error."""
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim < 2 or z.shape[-1] < 2:
        raise InputDataError(f"{name} must have shape (N, K) with K >= 2; given shape {z.shape}")
    if not np.all(np.isfinite(z)):
        idx = np.argwhere(~np.isfinite(z))[0].tolist()
        raise InputDataError(f"{name} has a non-finite value (NaN or inf) at index {idx}; expected finite logits. Fix or drop that row")
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)
