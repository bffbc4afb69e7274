"""Selection policies, found by name. Add a policy: a module here and one line in CATALOG."""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Mapping, Sequence

import numpy as np

from datapruner.errors import ConfigError
from datapruner.selection.base import Policy
from datapruner.selection.context import SelectionContext

# policy name -> module defining a Policy subclass with that name
CATALOG = {
    "top_fraction": "datapruner.selection.ranking",
    "band": "datapruner.selection.ranking",
    "threshold": "datapruner.selection.ranking",
    "drop_flagged": "datapruner.selection.flags",
    "quadrants": "datapruner.selection.quadrants",
    "drop_label_issues": "datapruner.selection.label_issues",
    "cluster_quota": "datapruner.selection.quotas",
    "prototypes": "datapruner.selection.quotas",
    "coverage": "datapruner.selection.coverage",
    "d2": "datapruner.selection.d2",
    "moderate": "datapruner.selection.moderate",
}

KEPT = "kept"


def make_policy(spec: Mapping[str, Any]) -> Policy:
    """Build a policy from one `selection` entry of a config; every parameter is checked here.

    Parameters
    ----------
    spec : mapping
        ``{"policy": <name in CATALOG>, **params}``, e.g.
        ``{"policy": "band", "score": "perplexity", "keep": 0.5, "band": "middle"}``.

    Returns
    -------
    Policy
        Ready to `select`. `RunConfig.validate` calls this at config load, so an unknown policy,
        an unknown key or a bad value fails before any model loads.

    Raises
    ------
    ConfigError
        Naming ``selection[<name>].<key>``, the value and what is expected.
    """
    if not isinstance(spec, Mapping):
        raise ConfigError("selection[]", spec, "a mapping with a 'policy' key")
    spec = dict(spec)
    name = spec.pop("policy", None)
    if name not in CATALOG:
        raise ConfigError("selection[].policy", name, f"one of {sorted(CATALOG)}")
    module = importlib.import_module(CATALOG[name])
    for obj in vars(module).values():
        if inspect.isclass(obj) and issubclass(obj, Policy) and obj.name == name:
            return obj(**spec)
    raise RuntimeError(f"{CATALOG[name]} defines no policy named {name!r}")


def apply_policies(
    policies: Sequence[Policy],
    scores: dict[str, np.ndarray],
    *,
    valid: np.ndarray,
    invalid_reason: np.ndarray,
    on_invalid: str = "drop",
    context: SelectionContext | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Run the chain of policies, each on the survivors of the previous one.

    Parameters
    ----------
    policies : sequence of Policy
        In config order.
    scores : dict of str to (N,) array
        The score columns. Columns a policy records for the audit (`Policy.audit_columns`, e.g.
        each row's quadrant) are added to it.
    valid : (N,) bool
        False for rows skipped at ingest (null or empty text).
    invalid_reason : (N,) object
        Why each invalid row was skipped.
    on_invalid : {"drop", "keep"}
        Whether invalid rows are dropped (reason ``invalid:<why>``) or left to the policies.
    context : SelectionContext, optional
        Labels, embeddings and the seed, for the policies that need them (per_class, d2, moderate,
        coverage's sampling). Default: none of them (seed 0).

    Returns
    -------
    keep : (N,) bool
    reason : (N,) object, "kept" or why the row was dropped.
    """
    n = len(valid)
    reason = np.empty(n, dtype=object)
    reason.fill(KEPT)  # one shared str; np.full would make a new str object per row (~60 B each)
    alive = np.ones(n, dtype=bool)
    if on_invalid == "drop":
        why, which = np.unique(invalid_reason[~valid].astype(str), return_inverse=True)
        reason[~valid] = np.array([f"invalid:{w}" for w in why], dtype=object)[which.reshape(-1)]
        alive &= valid
    elif on_invalid != "keep":
        raise ConfigError("on_invalid", on_invalid, "'drop' or 'keep'")
    for policy in policies:
        kept = policy.select(scores, alive.copy(), context=context)
        if np.any(kept & ~alive):
            raise RuntimeError(f"policy {policy.name} kept rows that were not candidates")
        dropped = alive & ~kept
        text = policy.reason()
        col = policy.score_column
        if col is not None and col in scores:
            values = np.asarray(scores[col], dtype=np.float64)
            missing = dropped & np.isnan(values)
            reason[dropped & ~missing] = text
            reason[missing] = f"{text}[missing {col}]"
        else:
            reason[dropped] = text
        for name, values in policy.audit_columns().items():
            if name in scores:
                raise ConfigError(f"selection[{policy.name}]", name, "an audit column name not already used by a scorer")
            scores[name] = values
        alive = kept
    return alive, reason
