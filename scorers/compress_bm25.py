"""Baseline (METHODS.md B4): Okapi BM25 of every unit against the query, best units while they fit.

IDF and the average length are computed over the units of the item's own context
(:class:`datapruner.scorers.bm25.BM25Index`).
"""

from __future__ import annotations

from datapruner.compression.method import ScoreOnlyMethod
from datapruner.scorers.bm25 import BM25Index
from datapruner.validation import check_number


class BM25Units(ScoreOnlyMethod):
    """Units ranked by Okapi BM25 against the query."""

    name = "bm25"
    summary = "baseline: units ranked by Okapi BM25 against the query, best first, while they fit"
    params_doc = {
        "k1": "term-frequency saturation, > 0 (default 1.5)",
        "b": "length normalisation, in [0, 1] (default 0.75)",
    }

    def __init__(self, **params):
        super().__init__(**params)
        self.k1 = self.param("k1", 1.5, check_number, low=0.0, low_open=True)
        self.b = self.param("b", 0.75, check_number, low=0.0, high=1.0)

    def unit_scores(self, items, *, random_state):
        return [BM25Index(it.texts, k1=self.k1, b=self.b).scores(it.query) for it in items]
