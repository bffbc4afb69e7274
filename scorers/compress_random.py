"""Baseline (METHODS.md B4): random units, seeded by ``random_state``, kept while they fit the budget."""

from __future__ import annotations

import numpy as np

from datapruner.compression.method import ScoreOnlyMethod


class RandomUnits(ScoreOnlyMethod):
    """Each unit gets a uniform random score. Every item draws from its own generator seeded by
    ``random_state``, so a pair's result does not depend on the other pairs of its batch."""

    name = "random"
    summary = "baseline: random units (seeded by random_state) while they fit the budget"
    params_doc = {}

    def unit_scores(self, items, *, random_state):
        return [np.random.default_rng(random_state).random(it.n_units) for it in items]
