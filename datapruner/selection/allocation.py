"""Integer allocation of a row budget across groups: exact water-filling, largest remainders, class quotas.

Density-based pruning (A5) gives clusters quotas by `water_fill` + `round_quotas`; class-balanced
selection (METHODS.md D4) gives classes quotas by `class_quotas`.
"""

from __future__ import annotations

import numpy as np

from datapruner.errors import InputDataError

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


def class_quotas(sizes: np.ndarray, n_keep: int, *, mode: bool | str = True) -> np.ndarray:
    """Per-class quotas of a row budget (METHODS.md D4).

    Parameters
    ----------
    sizes : (C,) rows available in each class.
    n_keep : total budget, 0 <= n_keep <= sum(sizes).
    mode : True (proportional) or "equal".
        True: quotas proportional to class size by largest remainders; while the budget allows
        (n_keep >= the number of non-empty classes) every non-empty class gets at least one row,
        taken from the class whose quota most exceeds its proportional share.
        "equal": an equal split capped by class size, the remainder redistributed over the classes
        that still have rows (water-filling), rounded by largest remainders.

    Returns
    -------
    (C,) int64 quotas with ``sum == n_keep`` and ``0 <= quota <= size``.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    if np.any(sizes < 0) or not 0 <= n_keep <= int(sizes.sum()):
        raise InputDataError(f"class_quotas: n_keep {n_keep} must lie in [0, {int(sizes.sum())}] and sizes must be >= 0")
    if n_keep == 0 or sizes.sum() == 0:
        return np.zeros(len(sizes), dtype=np.int64)
    if mode == "equal":
        x = water_fill(np.zeros(len(sizes)), lower=np.zeros(len(sizes)), upper=sizes.astype(np.float64), total=float(n_keep))
        return round_quotas(x, total=n_keep, upper=sizes)
    if mode is not True:
        raise InputDataError(f"class_quotas: mode must be True or 'equal', not {mode!r}")
    share = n_keep * sizes / sizes.sum()
    quotas = round_quotas(share, total=n_keep, upper=sizes)
    if n_keep >= int((sizes > 0).sum()):
        for c in np.flatnonzero((sizes > 0) & (quotas == 0)):
            surplus = np.where(quotas > 1, quotas - share, -np.inf)
            donor = int(np.argmax(surplus))  # ties: the lowest class index
            quotas[donor] -= 1
            quotas[c] += 1
    return quotas
