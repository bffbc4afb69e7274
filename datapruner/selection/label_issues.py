"""Drop the rows confident learning flagged as label issues (METHODS.md A7)."""

from __future__ import annotations

from datapruner.selection.flags import DropFlagged


class DropLabelIssues(DropFlagged):
    """Drop candidates whose `is_label_issue` column (from the `confident_learning` scorer) is true.

    Rows without a flag (invalid text, missing label) are kept. Chain it before a ranking policy,
    e.g. drop label issues, then keep the hardest 50% by EL2N.

    Parameters
    ----------
    score : str, default "is_label_issue"
        Boolean flag column.
    """

    name = "drop_label_issues"
    required = ()
    defaults = {"score": "is_label_issue"}
    params_doc = {"score": "boolean flag column (default is_label_issue)"}
