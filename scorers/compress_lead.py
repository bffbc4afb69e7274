"""Baseline (METHODS.md B4): the first units of the context, in order, while they fit the budget."""

from __future__ import annotations

import numpy as np

from datapruner.compression.method import ScoreOnlyMethod


class LeadUnits(ScoreOnlyMethod):
    """Unit ``i`` of ``n`` scores ``1 - i / n``: earlier units first."""

    name = "lead"
    summary = "baseline: the first units, in order, while they fit the budget"
    params_doc = {}

    def unit_scores(self, items, *, random_state):
        return [1.0 - np.arange(it.n_units) / max(it.n_units, 1) for it in items]
