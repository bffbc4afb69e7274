"""Drop rows that a scorer flagged (a boolean column), e.g. label issues or semantic duplicates."""

from __future__ import annotations

import numpy as np

from datapruner.selection.base import Policy


class DropFlagged(Policy):
    """Drop candidates whose boolean `score` column is true; rows with a null flag are kept."""

    name = "drop_flagged"
    required = ("score",)
    params_doc = {"score": "boolean column; true means drop"}

    def select(self, scores, candidates):
        flags = np.asarray(scores[self._flag_column(scores)])
        flagged = np.array([bool(v) if v is not None else False for v in flags]) if flags.dtype == object else flags.astype(bool)
        return candidates & ~flagged

    def _flag_column(self, scores) -> str:
        self.column(scores)  # validates the name
        return self.score_column
