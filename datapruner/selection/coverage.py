"""D1. Coverage-centric selection, CCS (Zheng et al., ICLR 2023): sample across the score range.

1. Drop the hardest `beta` fraction of the ranked rows (likely mislabelled). The cut shrinks when it
   would leave fewer rows than the budget.
2. Split the remaining score range [min, max] into `k` equal-width strata (the maximum falls in the
   last stratum).
3. Budget m rows. While strata remain: take the smallest stratum B (ties: the lower stratum);
   give it ``m_B = min(|B|, floor(m / strata_left))`` rows sampled uniformly at random (seeded by
   the run's `random_state`); remove B; ``m -= m_B``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from datapruner.errors import ConfigError
from datapruner.selection.base import BUDGET_PARAMS_DOC
from datapruner.selection.ranking import DIRECTIONS, PER_CLASS_PARAMS_DOC, RankingPolicy
from datapruner.validation import check_choice, check_number, check_positive_int


def check_beta(key: str, value: Any) -> float:
    """A hard-cut fraction in [0, 1) (CCS and D2)."""
    beta = check_number(key, value, low=0.0, high=1.0)
    if beta >= 1.0:
        raise ConfigError(key, value, "a number in [0, 1)")
    return beta


def hardest_cut(values: np.ndarray, n: int, beta: float) -> np.ndarray:
    """Positions (ascending) left after dropping the hardest `beta` fraction (highest values; ties by position).

    The cut shrinks so that at least `n` positions remain.
    """
    order = np.lexsort((np.arange(len(values)), -values))
    cut = min(int(np.floor(beta * len(values))), len(values) - n)
    return np.sort(order[cut:])


def stratum_budgets(sizes: np.ndarray, m: int) -> np.ndarray:
    """CCS budget loop: rows per stratum, smallest stratum first.

    Parameters
    ----------
    sizes : (k,) rows in each stratum.
    m : the budget, 0 <= m <= sum(sizes).

    Returns
    -------
    (k,) int64 with ``budget[B] = min(|B|, floor(m_left / strata_left))`` in ascending-size order;
    sums to m.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    out = np.zeros(len(sizes), dtype=np.int64)
    left = len(sizes)
    for b in np.lexsort((np.arange(len(sizes)), sizes)):
        out[b] = min(int(sizes[b]), m // left)
        m -= int(out[b])
        left -= 1
    return out


def strata(values: np.ndarray, k: int) -> np.ndarray:
    """(n,) stratum index in 0..k-1 of each value: k equal-width bins over [min, max]."""
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return np.zeros(len(values), dtype=np.int64)
    return np.minimum(((values - lo) / (hi - lo) * k).astype(np.int64), k - 1)


def coverage_select(values: np.ndarray, n: int, *, beta: float, k: int, rng: np.random.Generator) -> np.ndarray:
    """Positions (into `values`) of the `n` rows CCS keeps; higher value = harder.

    Parameters
    ----------
    values : (M,) finite difficulty scores.
    n : rows to keep, 0 <= n <= M.
    beta : fraction of the hardest rows cut first (shrunk so that at least n rows remain).
    k : number of equal-width strata.
    rng : the seeded generator that samples inside each stratum.

    Returns
    -------
    (n,) int64 positions, ascending.
    """
    pool = hardest_cut(values, n, beta)
    if n == 0 or len(pool) == 0:
        return np.zeros(0, dtype=np.int64)
    bins = strata(values[pool], k)
    budgets = stratum_budgets(np.bincount(bins, minlength=k), n)
    chosen = [rng.choice(pool[bins == b], int(budgets[b]), replace=False) for b in range(k) if budgets[b]]
    return np.sort(np.concatenate(chosen))


class Coverage(RankingPolicy):
    """Coverage-centric selection (METHODS.md D1): cut the hardest `beta`, then sample evenly over the score range.

    Parameters
    ----------
    score : str
        Difficulty column (higher = harder unless ``direction: low``); rows where it is NaN are dropped.
    keep | keep_total | keep_n :
        The budget (exactly one): a fraction of the candidates, of the whole dataset, or a row count.
    beta : float in [0, 1), default 0.1
        Fraction of the hardest rows dropped first (the paper: 0 at low pruning rates).
    strata : int >= 1, default 50
        Equal-width strata of the remaining score range.
    direction : {"high", "low"}, default "high"
        "low": low scores are the hard ones (the `beta` cut removes the lowest).
    per_class : {false, true, "equal"}, default false
        Class quotas (D4); CCS then runs inside each class.

    Sampling is seeded by the run's `random_state` (the same config and input keep the same rows).
    """

    name = "coverage"
    required = ("score",)
    defaults = {"beta": 0.1, "strata": 50, "direction": "high"}
    params_doc = {
        "score": "difficulty column (higher = harder unless direction: low)",
        **BUDGET_PARAMS_DOC,
        "beta": "fraction of the hardest rows dropped first, in [0, 1) (default 0.1)",
        "strata": "number of equal-width score strata, an integer >= 1 (default 50)",
        "direction": "'high' (default): high scores are hard; 'low': low scores are hard",
        **PER_CLASS_PARAMS_DOC,
    }

    def __init__(self, **params: Any):
        super().__init__(**params)
        self.beta = check_beta(self.key("beta"), self.param("beta"))
        self.strata = check_positive_int(self.key("strata"), self.param("strata"))
        self.direction = check_choice(self.key("direction"), self.param("direction"), DIRECTIONS)

    def pick(self, scores, rows, n, context):
        """CCS over `rows`, with a generator seeded by the run's random_state and the first row (per class)."""
        values = self.column(scores)[rows]
        if self.direction == "low":
            values = -values
        rng = np.random.default_rng([int(context.random_state), int(rows[0]) if len(rows) else 0])
        return rows[coverage_select(values, n, beta=self.beta, k=self.strata, rng=rng)]
