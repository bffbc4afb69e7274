"""B3 marginal information gain as a compression method (the formulas: :mod:`datapruner.scorers.mig`).

Units and queries are embedded with a sentence embedder (the bundled MiniLM by default; each
distinct text of a batch once, never truncated). Budget mode: coarse group shares, then greedy
MMR inside groups (:func:`~datapruner.scorers.mig.mig_order`, filled with exact token costs); groups are the passages, or
windows of ``group_size`` units when there is a single passage. Threshold mode: greedy MMR while
the best MMR score is at least the threshold.
"""

from __future__ import annotations

import numpy as np

from datapruner.compression.budget import select_forced
from datapruner.compression.embedding import EMBEDDER_DOC, backend_doc, embed_items, method_embedder
from datapruner.compression.method import CompressionMethod
from datapruner.compression.selection import TokenLedger, UnitSelection, fill_in_order, score_order
from datapruner.scorers.mig import mig_order, mig_scores, select_mig
from datapruner.validation import check_number, check_positive_int


class MigMethod(CompressionMethod):
    """Marginal information gain: relevant and non-redundant units under the budget."""

    name = "mig"
    summary = "B3 marginal information gain (relevance minus redundancy) with the bundled MiniLM embedder"
    params_doc = {
        "alpha": "weight of relevance (cosine to the query), >= 0 (default 1.0)",
        "beta": "weight of redundancy (max cosine to another unit), >= 0 (default 1.0)",
        "temperature": "softmax temperature of the group budget shares, > 0 (default 0.1)",
        "group_size": "units per group when there is one passage, >= 1 (default 8)",
        "embedder": EMBEDDER_DOC,
        "backend": backend_doc("torch"),
    }
    threshold_doc = "minimum MMR score alpha*relevance - beta*redundancy of a kept unit"

    def __init__(self, **params):
        super().__init__(**params)
        self.alpha = self.param("alpha", 1.0, check_number, low=0.0)
        self.beta = self.param("beta", 1.0, check_number, low=0.0)
        self.temperature = self.param("temperature", 0.1, check_number, low=0.0, low_open=True)
        self.group_size = self.param("group_size", 8, check_positive_int)
        self.embedder = method_embedder(self, "torch")

    def groups(self, item) -> np.ndarray:
        """Group id of each unit: its passage, or a window of `group_size` units for a single passage."""
        if len(set(item.passage.tolist())) > 1:
            return np.unique(item.passage, return_inverse=True)[1]
        return np.arange(item.n_units) // self.group_size

    def select(self, items, *, random_state=0):
        units, queries = embed_items(self.embedder, items)
        out = []
        for it, e, q in zip(items, units, queries):
            scores = mig_scores(e, q, alpha=self.alpha, beta=self.beta)
            passage_scores = np.array([float(_normed(e[it.passage == p].mean(axis=0)) @ q)
                                       if (it.passage == p).any() else float("nan")
                                       for p in range(len(it.passages))])
            if it.cap is None:
                pre, _ = select_forced(it.weights, scores, it.forced, None)
                keep = select_mig(e, q, it.weights, self.groups(it), capacity=None, threshold=it.threshold,
                                  preselected=pre, alpha=self.alpha, beta=self.beta)
            else:  # forced units first, then the budget-free MIG order, each while it fits (exact costs)
                ledger = TokenLedger(it, it.cap)
                pre = fill_in_order(ledger, [i for i in score_order(scores) if it.forced[i]])
                order = mig_order(e, q, it.weights, self.groups(it), pre, alpha=self.alpha, beta=self.beta,
                                  temperature=self.temperature) if it.n_units else []
                keep = fill_in_order(ledger, order)
            out.append(UnitSelection(scores, passage_scores, keep))
        return out


def _normed(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v)
    return v / n if n > 0 else v
