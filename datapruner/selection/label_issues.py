"""Drop the rows confident learning flagged as label issues (METHODS.md A7)."""

from __future__ import annotations

import numpy as np

from datapruner.selection.base import count_for, ranked
from datapruner.selection.flags import DropFlagged
from datapruner.validation import check_fraction


class DropLabelIssues(DropFlagged):
    """Drop candidates whose `is_label_issue` column (from the `confident_learning` scorer) is true.

    Rows without a flag (invalid text, missing label) are kept. Chain it before a ranking policy,
    e.g. drop label issues, then keep the hardest 50% by EL2N.

    With ``min_keep_total`` the step never costs the budget of the policy after it: when dropping
    every flagged row would leave fewer than ``min_keep_total`` of all input rows, only the most
    suspicious flagged rows (lowest `rank`, cleanlab's label quality) are dropped, as many as the
    floor allows; the least suspicious flagged rows stay candidates.

    Parameters
    ----------
    score : str, default "is_label_issue"
        Boolean flag column.
    min_keep_total : float in (0, 1], optional
        Keep at least this fraction of the whole dataset (of the candidates, if fewer remain).
    rank : str, default "label_quality"
        Suspicion column for ``min_keep_total`` (lower = more suspicious, dropped first).
    """

    name = "drop_label_issues"
    required = ()
    defaults = {"score": "is_label_issue", "rank": "label_quality"}
    column_params = ("score", "rank")
    params_doc = {
        "score": "boolean flag column (default is_label_issue)",
        "min_keep_total": "keep at least this fraction of the whole dataset, dropping the most suspicious flagged rows first, in (0, 1]",
        "rank": "suspicion column for min_keep_total, lower = more suspicious (default label_quality)",
    }

    def __init__(self, **params):
        super().__init__(**params)
        self.floor = check_fraction(self.key("min_keep_total"), params["min_keep_total"]) if "min_keep_total" in params else None

    def select(self, scores, candidates, *, context=None):
        """Drop the flagged candidates, or (under ``min_keep_total``) the most suspicious of them."""
        keep = super().select(scores, candidates, context=context)
        if self.floor is None:
            return keep
        n_candidates = int(np.count_nonzero(candidates))
        floor = min(count_for(self.floor, len(candidates)), n_candidates)
        if np.count_nonzero(keep) >= floor:
            return keep
        flagged = np.flatnonzero(candidates & ~keep)
        quality = self.column(scores, "rank")
        # most suspicious first; a flagged row without a quality value is dropped last
        order = np.concatenate([ranked(quality, flagged, descending=False), flagged[np.isnan(quality[flagged])]])
        allowed = n_candidates - floor
        keep = candidates.copy()
        keep[order[:allowed]] = False
        return keep
