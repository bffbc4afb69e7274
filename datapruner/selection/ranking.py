"""Rank-based policies: keep a top fraction, or a band (bottom / middle / top) of a score."""

from __future__ import annotations

import numpy as np

from datapruner.errors import ConfigError
from datapruner.selection.base import Policy, count_for, keep_fraction, ranked


class TopFraction(Policy):
    """Keep the `keep` fraction of candidates with the highest (or lowest) score, after skipping an `offset` fraction."""

    name = "top_fraction"
    required = ("score", "keep")
    params_doc = {
        "score": "score column to rank by",
        "keep": "fraction of the candidates to keep, in (0, 1]",
        "direction": "'high' keeps the highest scores (default), 'low' the lowest",
        "offset": "fraction of the candidates at the top of the ranking to skip first, in [0, 1) (default 0)",
    }

    def select(self, scores, candidates):
        keep = keep_fraction(self.params["keep"], f"selection[{self.name}].keep")
        direction = self.params.get("direction", "high")
        if direction not in ("high", "low"):
            raise ConfigError(f"selection[{self.name}].direction", direction, "'high' or 'low'")
        offset = float(self.params.get("offset", 0.0))
        if not 0.0 <= offset < 1.0:
            raise ConfigError(f"selection[{self.name}].offset", offset, "a number in [0, 1)")
        rows = np.flatnonzero(candidates)
        order = ranked(self.column(scores), rows, descending=direction == "high")
        skip = count_for(offset, len(rows)) if offset > 0 else 0
        chosen = order[skip : skip + count_for(keep, len(rows))]
        mask = np.zeros_like(candidates)
        mask[chosen] = True
        return mask


class Band(Policy):
    """Keep a contiguous band of the score distribution: the bottom, middle or top `keep` fraction."""

    name = "band"
    required = ("score", "keep")
    params_doc = {
        "score": "score column",
        "keep": "fraction of the candidates to keep, in (0, 1]",
        "band": "'bottom', 'middle' (default) or 'top'",
    }

    def select(self, scores, candidates):
        keep = keep_fraction(self.params["keep"], f"selection[{self.name}].keep")
        band = self.params.get("band", "middle")
        if band not in ("bottom", "middle", "top"):
            raise ConfigError(f"selection[{self.name}].band", band, "'bottom', 'middle' or 'top'")
        rows = np.flatnonzero(candidates)
        order = ranked(self.column(scores), rows, descending=False)
        n_keep = count_for(keep, len(rows))
        start = {"bottom": 0, "middle": (len(order) - n_keep) // 2, "top": max(0, len(order) - n_keep)}[band]
        mask = np.zeros_like(candidates)
        mask[order[start : start + n_keep]] = True
        return mask


class Threshold(Policy):
    """Keep candidates whose score lies in [min, max] (either bound optional)."""

    name = "threshold"
    required = ("score",)
    params_doc = {"score": "score column", "min": "lowest score kept (inclusive)", "max": "highest score kept (inclusive)"}

    def select(self, scores, candidates):
        lo, hi = self.params.get("min"), self.params.get("max")
        if lo is None and hi is None:
            raise ConfigError(f"selection[{self.name}].min", None, "a number for min and/or max")
        values = self.column(scores)
        ok = ~np.isnan(values)
        if lo is not None:
            ok &= values >= float(lo)
        if hi is not None:
            ok &= values <= float(hi)
        return candidates & ok
