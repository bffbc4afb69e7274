"""Rank-based policies: keep a top fraction, or a band (bottom / middle / top) of a score.

`RankingPolicy` is the base of every policy that chooses a budget of rows by a score (top_fraction,
band, prototypes, coverage, d2, moderate): it turns the budget (`keep`, `keep_total`, `keep_n`)
into a row count and, with ``per_class``, splits it into class quotas (METHODS.md D4) and runs the
policy inside each class.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from datapruner.errors import ConfigError
from datapruner.selection.allocation import class_quotas
from datapruner.selection.base import BUDGET_PARAMS_DOC, Policy, count_for, ranked
from datapruner.selection.context import SelectionContext
from datapruner.validation import check_choice, check_number

DIRECTIONS = ("high", "low")
BANDS = ("bottom", "middle", "top")

PER_CLASS_PARAMS_DOC = {
    "per_class": "false (default): one ranking over all candidates; true: class quotas proportional to class size "
    "(largest remainders, at least one row per class while the budget allows), ranked inside each class; "
    "'equal': equal quotas capped by class size, the remainder redistributed",
}


def check_per_class(key: str, value: Any) -> bool | str:
    """`per_class` as given: False, True or "equal" (a `ConfigError` otherwise; 0 and 1 are not booleans)."""
    if isinstance(value, bool) or value == "equal":
        return value
    raise ConfigError(key, value, "one of false, true, 'equal'")


class RankingPolicy(Policy):
    """Base of a policy that keeps a budget of rows chosen by a score (the extension point for one).

    A subclass implements `pick` (which `n` of the given rows to keep) and may override `usable`
    (which candidates can be ranked at all; default: a finite `score`). `select` computes the
    budget, caps it at the usable rows, and with ``per_class`` calls `pick` once per class with the
    class's quota (`class_quotas`). Include `BUDGET_PARAMS_DOC` and `PER_CLASS_PARAMS_DOC` in
    `params_doc`.

    After `select`, `class_quotas_` maps each class (label index, -1 = no label) to its quota when
    ``per_class`` is set.
    """

    budgeted = True

    def __init__(self, **params: Any):
        super().__init__(**params)
        self.per_class = check_per_class(self.key("per_class"), self.params.get("per_class", False))

    def usable(self, scores: Mapping[str, np.ndarray], rows: np.ndarray, context: SelectionContext) -> np.ndarray:
        """The candidate rows this policy can rank: by default those with a finite `score`."""
        return rows[np.isfinite(self.column(scores)[rows])]

    def pick(self, scores: Mapping[str, np.ndarray], rows: np.ndarray, n: int, context: SelectionContext) -> np.ndarray:
        """The `n` rows of `rows` (ascending row indices, all usable) to keep; exactly `n` of them."""
        raise NotImplementedError

    def select(self, scores, candidates, *, context=None):
        """Keep `n_keep(candidates)` rows (capped at the usable ones), in one ranking or per class."""
        context = context or SelectionContext()
        rows = self.usable(scores, np.flatnonzero(candidates), context)
        n_keep = min(self.n_keep(candidates), len(rows))
        if not self.per_class:
            chosen = self.pick(scores, rows, n_keep, context)
        else:
            labels = context.require_labels(self.name)[rows]
            classes, inverse = np.unique(labels, return_inverse=True)
            quotas = class_quotas(np.bincount(inverse, minlength=len(classes)), n_keep, mode=self.per_class)
            self.class_quotas_ = {int(c): int(q) for c, q in zip(classes, quotas)}
            parts = [self.pick(scores, rows[inverse == i], int(q), context) for i, q in enumerate(quotas)]
            chosen = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        mask = np.zeros(len(candidates), dtype=bool)
        mask[chosen] = True
        if int(mask.sum()) != n_keep:
            raise RuntimeError(f"policy {self.name} kept {int(mask.sum())} rows for a budget of {n_keep}")
        return mask


class TopFraction(RankingPolicy):
    """Keep the candidates with the highest (or lowest) score, after skipping an `offset` fraction.

    Parameters
    ----------
    score : str
        Score column to rank by; rows where it is NaN are dropped.
    keep | keep_total | keep_n :
        The budget (exactly one): a fraction of the candidates, of the whole dataset, or a row count.
    direction : {"high", "low"}, default "high"
        "high" keeps the highest scores, "low" the lowest.
    offset : float in [0, 1), default 0
        Fraction of the ranked rows at the top of the ranking skipped first (e.g. the most extreme,
        often mislabeled, EL2N rows); it shrinks when skipping it would leave fewer rows than the budget.
    per_class : {false, true, "equal"}, default false
        Class quotas (METHODS.md D4); the ranking (and the offset) then apply inside each class.
    """

    name = "top_fraction"
    required = ("score",)
    defaults = {"direction": "high", "offset": 0.0}
    params_doc = {
        "score": "score column to rank by",
        **BUDGET_PARAMS_DOC,
        "direction": "'high' keeps the highest scores (default), 'low' the lowest",
        "offset": "fraction of the ranked rows at the top of the ranking to skip first, in [0, 1) (default 0)",
        **PER_CLASS_PARAMS_DOC,
    }

    def __init__(self, **params: Any):
        super().__init__(**params)
        self.direction = check_choice(self.key("direction"), self.param("direction"), DIRECTIONS)
        self.offset = check_number(self.key("offset"), self.param("offset"), low=0.0, high=1.0)
        if self.offset >= 1.0:
            raise ConfigError(self.key("offset"), self.param("offset"), "a number in [0, 1)")

    def pick(self, scores, rows, n, context):
        """The top `n` of `rows` after the offset, ties by row index."""
        order = ranked(self.column(scores), rows, descending=self.direction == "high")
        skip = min(count_for(self.offset, len(order)), len(order) - n) if self.offset > 0 else 0
        return order[skip : skip + n]


class Band(RankingPolicy):
    """Keep a contiguous band of the score distribution: the bottom, middle or top of the ranking.

    Parameters
    ----------
    score : str
        Score column; rows where it is NaN are dropped.
    keep | keep_total | keep_n :
        The budget (exactly one).
    band : {"bottom", "middle", "top"}, default "middle"
        Which part of the ascending ranking is kept.
    per_class : {false, true, "equal"}, default false
        Class quotas; the band is then taken inside each class.
    """

    name = "band"
    required = ("score",)
    defaults = {"band": "middle"}
    params_doc = {
        "score": "score column",
        **BUDGET_PARAMS_DOC,
        "band": "'bottom', 'middle' (default) or 'top'",
        **PER_CLASS_PARAMS_DOC,
    }

    def __init__(self, **params: Any):
        super().__init__(**params)
        self.band = check_choice(self.key("band"), self.param("band"), BANDS)

    def pick(self, scores, rows, n, context):
        """The bottom, middle or top `n` rows of the ascending ranking."""
        order = ranked(self.column(scores), rows, descending=False)
        start = {"bottom": 0, "middle": (len(order) - n) // 2, "top": len(order) - n}[self.band]
        return order[start : start + n]


class Threshold(Policy):
    """Keep candidates whose score lies in [min, max].

    Parameters
    ----------
    score : str
        Score column; rows where it is NaN are dropped.
    min, max : float, optional
        Inclusive bounds; at least one is required, and min <= max.
    """

    name = "threshold"
    required = ("score",)
    params_doc = {"score": "score column", "min": "lowest score kept (inclusive)", "max": "highest score kept (inclusive)"}

    def __init__(self, **params: Any):
        super().__init__(**params)
        lo, hi = self.param("min"), self.param("max")
        if lo is None and hi is None:
            raise ConfigError(self.key("min"), None, "a number for min and/or max")
        self.min = None if lo is None else check_number(self.key("min"), lo)
        self.max = None if hi is None else check_number(self.key("max"), hi)
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ConfigError(self.key("max"), hi, f"a number >= min ({lo})")

    def select(self, scores, candidates, *, context=None):
        """The candidates with min <= score <= max; NaN scores dropped."""
        values = self.column(scores)
        ok = ~np.isnan(values)
        if self.min is not None:
            ok &= values >= self.min
        if self.max is not None:
            ok &= values <= self.max
        return candidates & ok
