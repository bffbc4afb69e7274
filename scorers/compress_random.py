"""Baseline (METHODS.md B4): random units, seeded by ``random_state``, kept while they fit the budget."""

from __future__ import annotations

import numpy as np

from datapruner.compression.method import ScoreOnlyMethod


class RandomUnits(ScoreOnlyMethod):
    """Each unit gets a uniform random score (one generator seeded by ``random_state`` per call)."""

    name = "random"
    summary = "baseline: random units (seeded by random_state) while they fit the budget"
    params_doc = {}

    def unit_scores(self, items, *, random_state):
        rng = np.random.default_rng(random_state)
        return [rng.random(it.n_units) for it in items]
