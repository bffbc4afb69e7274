"""Named selection chains users pick by name (``datapruner prune --recipe recommended``).

`recommended` is the chain measured to beat random most often on the full SST-2 and Banking77
training sets, clean and with 20 % label noise (benchmarks/pruning_curve.py; docs/selection.md
and the README's pruning section give the tables):

1. ``drop_label_issues`` with ``min_keep_total: keep_total``: drop the rows the label-noise detector
   flags (`LABEL_NOISE_DETECTOR`: cleanlab on out-of-sample probabilities of the embedding proxy
   blended with TF-IDF models, refit without the first flags), but never so many that fewer than the budget
   survive: when more than ``1 - keep_total`` of the rows are flagged, only the most suspicious
   flagged rows (lowest label quality) go, so the chain still returns ``keep_total`` of the rows.
   Needs the `confident_learning` scorer.
2. Coverage per class (``coverage, beta: hard_cut(keep_total), per_class: true``): cut the hardest
   rows of each class (none from 40 % kept upwards), then sample the EL2N range inside every class,
   so easy and hard rows are kept in proportion.

The regime rule (Sorscher et al. 2022: keep the easiest rows when data is scarce, harder ones when
it is abundant) is the ``switch`` parameter: below it, the second step keeps the easiest EL2N rows
per class (``top_fraction, direction: low, per_class: true``) instead. On the full benchmark sets
the measured switch differs between the datasets (easy-first falls below random on Banking77 at
most keep fractions, while it is the better choice on SST-2 at small ones), so the shipped default
is no switch: coverage at every budget, which beats random far more often than easy-first does.
"""

from __future__ import annotations

from typing import Any, Callable

from datapruner.errors import ConfigError
from datapruner.validation import check_fraction

#: Keep fraction (of the whole dataset) below which the recommended chain keeps the easiest rows
#: instead of sampling the range; None = coverage at every budget (what the benchmarks support).
RECOMMENDED_SWITCH: float | None = None

#: The label-noise detector of the recommended chain (docs/training-scores.md, "The better detector"):
#: the embedding proxy blended with TF-IDF models, the least self-confident rows flagged, as many as
#: cleanlab's two issue-count estimators say on average, then trained again without them and re-detected.
LABEL_NOISE_DETECTOR = {"text_features": True, "filter_by": "low_self_confidence", "issue_count": "mean", "refit_clean": True}

#: The scorers the recommended chain reads, with their parameters (added to a run that uses it).
RECOMMENDED_SCORERS = ({"name": "confident_learning", "params": LABEL_NOISE_DETECTOR}, {"name": "el2n", "params": {}})


#: CCS's hard cut (METHODS.md D1): none at low pruning rates, growing as the budget shrinks. The
#: recipe cuts ``max(0, HARD_CUT_FROM - keep_total)`` of the hardest rows of each class before
#: sampling the score range: nothing from 40 % kept upwards, 0.3 at 10 % kept (the CCS authors'
#: own CIFAR-10 example at 90 % pruning cuts 0.3).
HARD_CUT_FROM = 0.4


def hard_cut(keep_total: float) -> float:
    """The coverage step's `beta` for a budget of `keep_total`: ``max(0, HARD_CUT_FROM - keep_total)``."""
    return round(max(0.0, HARD_CUT_FROM - float(keep_total)), 6)


def recommended(keep_total: float, *, score: str = "el2n", switch: float | None = RECOMMENDED_SWITCH) -> list[dict[str, Any]]:
    """The recommended chain for a budget of `keep_total` (fraction of every input row).

    Parameters
    ----------
    keep_total : float in (0, 1]
        Fraction of the whole dataset to keep.
    score : str, default "el2n"
        Difficulty column (higher = harder).
    switch : float in (0, 1] or None, default `RECOMMENDED_SWITCH` (None)
        Below it: easy-first per class; at or above it (or always, when None): coverage per class.

    Returns
    -------
    list of policy specs (the ``selection:`` list of a config).
    """
    keep_total = check_fraction("--keep", keep_total)
    if switch is not None:
        check_fraction("switch", switch)
    chain: list[dict[str, Any]] = [{"policy": "drop_label_issues", "min_keep_total": keep_total}]
    if switch is not None and keep_total < switch:
        chain.append({"policy": "top_fraction", "score": score, "keep_total": keep_total, "direction": "low", "per_class": True})
    else:
        chain.append({"policy": "coverage", "score": score, "keep_total": keep_total, "beta": hard_cut(keep_total), "per_class": True})
    return chain


RECIPES: dict[str, Callable[..., list[dict[str, Any]]]] = {"recommended": recommended}


def recipe_selection(name: str, keep_total: float) -> list[dict[str, Any]]:
    """The policy chain of recipe `name` for a budget of `keep_total`; a `ConfigError` for an unknown name."""
    if name not in RECIPES:
        raise ConfigError("--recipe", name, f"one of {sorted(RECIPES)}")
    return RECIPES[name](keep_total)
