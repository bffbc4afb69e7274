"""Selection policies: they read score columns and decide; they never compute scores.

A policy sees the rows still alive (`candidates`) and returns which of them it keeps. Policies
chain in config order, each applied to the survivors of the previous one; every dropped row gets
the `reason` of the policy that dropped it.

Every parameter is checked when the policy is built (`RunConfig.validate` builds every policy when
the config is loaded), so a typo fails in well under a second, before any model loads or any row
is scored. Only the existence of score columns waits for `select`: they are produced by scorers.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Mapping

import numpy as np

from datapruner.errors import ConfigError


class Policy:
    """Base class of a selection policy (the extension point for a new policy).

    A subclass sets the class attributes below, checks and converts every parameter in its
    ``__init__`` (after ``super().__init__(**params)``, with `datapruner.validation`), and
    implements `select`. Register it with one line in `datapruner.selection.CATALOG`.

    Attributes
    ----------
    name : str
        The config name (``policy: <name>``).
    params_doc : dict of str to str
        Every accepted parameter and its one-line meaning; any other key is a `ConfigError`.
    required : tuple of str
        Parameters without a default.
    defaults : dict of str to Any
        Default values, including the default score column names, so no column name is hard-coded
        in `select`: each one is a parameter a user can point at another column.
    column_params : tuple of str
        The parameters that name a score column (checked to be strings when the policy is built).
    params : dict
        The parameters as the user wrote them (they form the `reason` text).
    """

    name: ClassVar[str] = ""
    params_doc: ClassVar[dict[str, str]] = {}
    required: ClassVar[tuple[str, ...]] = ()
    defaults: ClassVar[dict[str, Any]] = {}
    column_params: ClassVar[tuple[str, ...]] = ("score",)

    def __init__(self, **params: Any):
        for key in params:
            if key not in self.params_doc:
                raise ConfigError(self.key(key), params[key], f"one of {sorted(self.params_doc)}")
        for key in self.required:
            if key not in params:
                raise ConfigError(self.key(key), None, f"a value ({self.params_doc[key]})")
        self.params = params
        for key in self.column_params:
            self.column_name(key)

    def key(self, param: str) -> str:
        """The config key of parameter `param`, as error messages name it: ``selection[<name>].<param>``."""
        return f"selection[{self.name}].{param}"

    def param(self, name: str) -> Any:
        """The value of parameter `name`: as given, else its default (None when it has neither)."""
        return self.params.get(name, self.defaults.get(name))

    def column_name(self, param: str) -> str | None:
        """The column that parameter `param` names; a `ConfigError` when it is given but not a string."""
        value = self.param(param)
        if value is not None and not isinstance(value, str):
            raise ConfigError(self.key(param), value, "the name of a score column (a string)")
        return value

    @property
    def score_column(self) -> str | None:
        """The column whose missing values are named in the drop reason (``reason[missing <col>]``)."""
        return self.param("score")

    def select(self, scores: Mapping[str, np.ndarray], candidates: np.ndarray) -> np.ndarray:
        """Decide which candidates to keep.

        Parameters
        ----------
        scores : mapping of column name to (N,) array
            Every score column produced by the run's scorers (and earlier policies' audit columns).
        candidates : (N,) bool
            The rows still alive after the previous policies.

        Returns
        -------
        (N,) bool mask of the rows kept; a subset of `candidates`.
        """
        raise NotImplementedError

    def audit_columns(self) -> dict[str, np.ndarray]:
        """Per-row columns this policy wants in scores.parquet (N,), set during `select`. Default none."""
        return {}

    def reason(self) -> str:
        """The text written in `reason` for rows this policy drops."""
        args = ",".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.name}({args})"

    def column(self, scores: Mapping[str, np.ndarray], param: str = "score") -> np.ndarray:
        """The float64 values of the column named by parameter `param`.

        Raises
        ------
        ConfigError
            Naming ``selection[<name>].<param>`` when no scorer produced that column.
        """
        name = self.param(param)
        if name not in scores:
            raise ConfigError(self.key(param), name, f"a score column produced by a scorer: {sorted(scores)}")
        return np.asarray(scores[name], dtype=np.float64)


def count_for(fraction: float, n: int) -> int:
    """Rows to keep for a fraction of n: round half up, at least one row when n > 0.

    Parameters
    ----------
    fraction : float in (0, 1]
    n : int >= 0

    Returns
    -------
    int in ``[min(1, n), n]``.
    """
    return min(n, max(1 if n else 0, math.floor(fraction * n + 0.5)))


def ranked(values: np.ndarray, rows: np.ndarray, *, descending: bool) -> np.ndarray:
    """`rows` sorted by `values[rows]` (NaN excluded), ties broken by row index: deterministic.

    Parameters
    ----------
    values : (N,) float
    rows : (M,) int indices into `values`
    descending : True puts the highest value first.

    Returns
    -------
    (M',) int64, the rows with a finite value, in rank order.
    """
    finite = rows[~np.isnan(values[rows])]
    key = -values[finite] if descending else values[finite]
    return finite[np.lexsort((finite, key))]
