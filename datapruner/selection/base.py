"""Selection policies: they read score columns and decide; they never compute scores.

A policy sees the rows still alive (`candidates`) and returns which of them it keeps. Policies
chain in config order, each applied to the survivors of the previous one; every dropped row gets
the `reason` of the policy that dropped it.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Mapping

import numpy as np

from datapruner.errors import ConfigError


class Policy:
    """Base class. Subclasses set `name` and `params_doc` ({param: meaning}) and implement `select`."""

    name: ClassVar[str] = ""
    params_doc: ClassVar[dict[str, str]] = {}
    required: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **params: Any):
        where = f"selection[{self.name}]"
        for key in params:
            if key not in self.params_doc:
                raise ConfigError(f"{where}.{key}", params[key], f"one of {sorted(self.params_doc)}")
        for key in self.required:
            if key not in params:
                raise ConfigError(f"{where}.{key}", None, f"a value ({self.params_doc[key]})")
        self.params = params

    @property
    def score_column(self) -> str | None:
        return self.params.get("score")

    def select(self, scores: Mapping[str, np.ndarray], candidates: np.ndarray) -> np.ndarray:
        """Return a bool mask (N,) of rows to keep; it must be a subset of `candidates`."""
        raise NotImplementedError

    def audit_columns(self) -> dict[str, np.ndarray]:
        """Per-row columns this policy wants in scores.parquet (N,), set during `select`. Default none."""
        return {}

    def reason(self) -> str:
        """The text written in `reason` for rows this policy drops."""
        args = ",".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.name}({args})"

    # ---- helpers shared by policies ----------------------------------------------------------
    def column(self, scores: Mapping[str, np.ndarray], name: str | None = None) -> np.ndarray:
        name = name or self.score_column
        if name not in scores:
            raise ConfigError(f"selection[{self.name}].score", name, f"a score column produced by a scorer: {sorted(scores)}")
        return np.asarray(scores[name], dtype=np.float64)


def keep_fraction(value: Any, where: str) -> float:
    """Validate a keep fraction in (0, 1]."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ConfigError(where, value, "a number in (0, 1]") from None
    if not 0.0 < f <= 1.0 or math.isnan(f):
        raise ConfigError(where, value, "a number in (0, 1]")
    return f


def count_for(fraction: float, n: int) -> int:
    """Rows to keep for a fraction of n: round half up, at least one row when n > 0."""
    return min(n, max(1 if n else 0, math.floor(fraction * n + 0.5)))


def ranked(values: np.ndarray, rows: np.ndarray, *, descending: bool) -> np.ndarray:
    """`rows` sorted by `values[rows]` (NaN excluded), ties broken by row index: deterministic."""
    finite = rows[~np.isnan(values[rows])]
    key = -values[finite] if descending else values[finite]
    return finite[np.lexsort((finite, key))]
