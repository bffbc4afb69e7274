"""Named curation recipes: the scorers and the selection chain a recipe runs (``datapruner prune --recipe``)."""

from __future__ import annotations

from typing import Any

from datapruner.selection.recipes import RECOMMENDED_SCORERS, recipe_selection


def recipe_parts(name: str, keep_total: float) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """({scorer name: its parameters}, selection chain) of recipe `name` for a budget of `keep_total` of every input row.

    Raises
    ------
    ConfigError
        For an unknown recipe name or a budget outside (0, 1].
    """
    selection = recipe_selection(name, keep_total)
    return {s["name"]: dict(s["params"]) for s in RECOMMENDED_SCORERS}, selection
