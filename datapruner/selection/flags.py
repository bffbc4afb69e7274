"""Drop rows that a scorer flagged (a boolean column), e.g. label issues or semantic duplicates."""

from __future__ import annotations

import numpy as np

from datapruner.selection.base import Policy


class DropFlagged(Policy):
    """Drop candidates whose boolean `score` column is true; rows with a null flag are kept.

    Parameters
    ----------
    score : str
        Boolean (or nullable boolean) column; true means drop.
    """

    name = "drop_flagged"
    required = ("score",)
    params_doc = {"score": "boolean column; true means drop"}

    def select(self, scores, candidates, *, context=None):
        """Keep the candidates whose flag is false or null."""
        self.column(scores)  # a ConfigError naming the key when no scorer produced the column
        flags = np.asarray(scores[self.score_column])
        flagged = np.array([bool(v) if v is not None else False for v in flags]) if flags.dtype == object else flags.astype(bool)
        return candidates & ~flagged
