"""D3. Moderate coreset (Xia et al., ICLR 2023): keep the rows of moderate difficulty.

``d_i = || e_i - c_{y_i} ||_2`` with ``c_y`` the mean embedding of class y (over the candidates);
keep the rows whose ``d_i`` is closest to the median of d (over the candidates; ``per_class`` uses
each class's median, and then also splits the budget into class quotas as D4 does). A `score`
column can replace the distance (the paper's rule on any score). Ties: the lower row index.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from datapruner.selection.base import BUDGET_PARAMS_DOC
from datapruner.selection.ranking import PER_CLASS_PARAMS_DOC, RankingPolicy


def class_centre_distances(embeddings: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(n,) Euclidean distance of each row to the mean embedding of its class (over these rows)."""
    out = np.empty(len(labels))
    for c in np.unique(labels):
        members = labels == c
        out[members] = np.linalg.norm(embeddings[members] - embeddings[members].mean(0), axis=1)
    return out


class Moderate(RankingPolicy):
    """Moderate coreset (METHODS.md D3): the rows whose distance to their class centre is closest to the median.

    Parameters
    ----------
    keep | keep_total | keep_n :
        The budget (exactly one): a fraction of the candidates, of the whole dataset, or a row count.
    score : str, optional
        A score column used instead of the distance to the class centre (then no embeddings are needed).
    per_class : {false, true, "equal"}, default false
        true / "equal": each class's median and class quotas (proportional / equal, D4).

    Without `score` it needs the run's labels and embeddings (L2-normalised).
    """

    name = "moderate"
    defaults: dict[str, Any] = {}
    params_doc = {
        **BUDGET_PARAMS_DOC,
        "score": "score column used instead of the distance to the class centre (default: the distance)",
        **PER_CLASS_PARAMS_DOC,
    }

    def usable(self, scores, rows, context):
        """Rows with a finite `score` when one is named, else rows with a label."""
        if self.param("score") is not None:
            return super().usable(scores, rows, context)
        return rows[context.require_labels(self.name)[rows] >= 0]

    def pick(self, scores, rows, n, context):
        """The `n` rows closest to the median (of these rows: one class under per_class)."""
        if len(rows) == 0:
            return rows
        if self.param("score") is not None:
            d = self.column(scores)[rows]
        else:
            emb = context.require_embeddings(self.name)[rows]
            d = class_centre_distances(emb, context.require_labels(self.name)[rows])
        gap = np.abs(d - np.median(d))
        return rows[np.lexsort((rows, gap))][:n]
