"""Baseline (METHODS.md B4): embedding top-k. Units by cosine similarity to the query under a
sentence embedder (the bundled MiniLM by default), best units while they fit the budget."""

from __future__ import annotations

from datapruner.compression.embedding import EMBEDDER_DOC, backend_doc, embed_items, method_embedder
from datapruner.compression.method import ScoreOnlyMethod


class DenseUnits(ScoreOnlyMethod):
    """Units ranked by cosine similarity of their embedding to the query's."""

    name = "dense"
    summary = "baseline: units ranked by embedding cosine to the query (bundled MiniLM), best first, while they fit"
    params_doc = {"embedder": EMBEDDER_DOC, "backend": backend_doc("torch")}

    def __init__(self, **params):
        super().__init__(**params)
        self.embedder = method_embedder(self, "torch")

    def unit_scores(self, items, *, random_state):
        units, queries = embed_items(self.embedder, items)
        return [e @ q for e, q in zip(units, queries)]
