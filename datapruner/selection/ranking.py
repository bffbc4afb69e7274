"""Rank-based policies: keep a top fraction, or a band (bottom / middle / top) of a score."""

from __future__ import annotations

from typing import Any

import numpy as np

from datapruner.errors import ConfigError
from datapruner.selection.base import Policy, count_for, ranked
from datapruner.validation import check_choice, check_fraction, check_number

DIRECTIONS = ("high", "low")
BANDS = ("bottom", "middle", "top")


class TopFraction(Policy):
    """Keep the `keep` fraction of candidates with the highest (or lowest) score, after skipping an `offset` fraction.

    Parameters
    ----------
    score : str
        Score column to rank by; rows where it is NaN are dropped.
    keep : float in (0, 1]
        Fraction of the candidates to keep (``count_for(keep, candidates)`` rows).
    direction : {"high", "low"}, default "high"
        "high" keeps the highest scores, "low" the lowest.
    offset : float in [0, 1), default 0
        Fraction of the candidates at the top of the ranking skipped first (e.g. the most extreme,
        often mislabeled, EL2N rows).
    """

    name = "top_fraction"
    required = ("score", "keep")
    defaults = {"direction": "high", "offset": 0.0}
    params_doc = {
        "score": "score column to rank by",
        "keep": "fraction of the candidates to keep, in (0, 1]",
        "direction": "'high' keeps the highest scores (default), 'low' the lowest",
        "offset": "fraction of the candidates at the top of the ranking to skip first, in [0, 1) (default 0)",
    }

    def __init__(self, **params: Any):
        super().__init__(**params)
        self.keep = check_fraction(self.key("keep"), self.param("keep"))
        self.direction = check_choice(self.key("direction"), self.param("direction"), DIRECTIONS)
        self.offset = check_number(self.key("offset"), self.param("offset"), low=0.0, high=1.0)
        if self.offset >= 1.0:
            raise ConfigError(self.key("offset"), self.param("offset"), "a number in [0, 1)")

    def select(self, scores, candidates):
        """The candidates ranked `keep` fraction after `offset`, NaN scores dropped, ties by row index."""
        rows = np.flatnonzero(candidates)
        order = ranked(self.column(scores), rows, descending=self.direction == "high")
        skip = count_for(self.offset, len(rows)) if self.offset > 0 else 0
        chosen = order[skip : skip + count_for(self.keep, len(rows))]
        mask = np.zeros_like(candidates)
        mask[chosen] = True
        return mask


class Band(Policy):
    """Keep a contiguous band of the score distribution: the bottom, middle or top `keep` fraction.

    Parameters
    ----------
    score : str
        Score column; rows where it is NaN are dropped.
    keep : float in (0, 1]
        Fraction of the candidates to keep.
    band : {"bottom", "middle", "top"}, default "middle"
        Which part of the ascending ranking is kept.
    """

    name = "band"
    required = ("score", "keep")
    defaults = {"band": "middle"}
    params_doc = {
        "score": "score column",
        "keep": "fraction of the candidates to keep, in (0, 1]",
        "band": "'bottom', 'middle' (default) or 'top'",
    }

    def __init__(self, **params: Any):
        super().__init__(**params)
        self.keep = check_fraction(self.key("keep"), self.param("keep"))
        self.band = check_choice(self.key("band"), self.param("band"), BANDS)

    def select(self, scores, candidates):
        """The bottom, middle or top `keep` fraction of the ascending ranking, NaN scores dropped."""
        rows = np.flatnonzero(candidates)
        order = ranked(self.column(scores), rows, descending=False)
        n_keep = count_for(self.keep, len(rows))
        start = {"bottom": 0, "middle": (len(order) - n_keep) // 2, "top": max(0, len(order) - n_keep)}[self.band]
        mask = np.zeros_like(candidates)
        mask[order[start : start + n_keep]] = True
        return mask


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

    def select(self, scores, candidates):
        """The candidates with min <= score <= max; NaN scores dropped."""
        values = self.column(scores)
        ok = ~np.isnan(values)
        if self.min is not None:
            ok &= values >= self.min
        if self.max is not None:
            ok &= values <= self.max
        return candidates & ok
