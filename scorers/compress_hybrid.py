"""Hybrid of B1: rerank passages with the pruner's passage head, keep the best passages, and prune
inside them with the pruner's unit keep-probabilities (:mod:`datapruner.scorers.compress_seqlabel`)."""

from __future__ import annotations

import math

import numpy as np

from datapruner.compression.selection import best_until
from datapruner.scorers.compress_seqlabel import SeqlabelMethod
from datapruner.validation import check_number


class HybridMethod(SeqlabelMethod):
    """Passages by rerank score until they hold ``passage_ratio`` x the budget (half of the
    passages in threshold mode), then units inside them as in ``seqlabel``."""

    name = "hybrid"
    summary = "B1 passage rerank, then B1 unit pruning inside the best passages"
    params_doc = {
        **SeqlabelMethod.params_doc,
        "passage_ratio": "keep the best passages until they hold this many times the budget, > 0 (default 2.0)",
    }

    def __init__(self, **params):
        super().__init__(**params)
        self.passage_ratio = self.param("passage_ratio", 2.0, check_number, low=0.0, low_open=True)

    def allowed_units(self, item, passage_scores):
        if len(item.passages) <= 1:
            return np.ones(item.n_units, dtype=bool)
        n = len(item.passages)
        if item.cap is None:  # threshold mode: the better half of the passages
            kept = best_until(passage_scores, np.ones(n), math.ceil(n / 2))
        else:
            kept = best_until(passage_scores, np.bincount(item.passage, weights=item.weights, minlength=n),
                              self.passage_ratio * item.cap)
        return np.isin(item.passage, kept)
