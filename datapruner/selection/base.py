"""Selection policies: they read score columns and decide; they never compute scores.

A policy sees the rows still alive (`candidates`) and returns which of them it keeps. Policies
chain in config order, each applied to the survivors of the previous one; every dropped row gets
the `reason` of the policy that dropped it.

Every parameter is checked when the policy is built (`RunConfig.validate` builds every policy when
the config is loaded), so a typo fails in well under a second, before any model loads or any row
is scored. Only the existence of score columns waits for `select`: they are produced by scorers.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

import numpy as np

from datapruner.errors import ConfigError
from datapruner.selection.context import SelectionContext
from datapruner.validation import check_fraction, check_positive_int

log = logging.getLogger(__name__)

BUDGET_KEYS = ("keep", "keep_total", "keep_n")
#: The budget parameters every budgeted policy accepts (exactly one of them).
BUDGET_PARAMS_DOC = {
    "keep": "fraction of this policy's candidates (the previous policy's survivors) to keep, in (0, 1]",
    "keep_total": "fraction of the whole dataset (every input row) to keep, in (0, 1]",
    "keep_n": "number of rows to keep, an integer >= 1",
}


@dataclass(frozen=True)
class Budget:
    """How many rows a policy keeps: exactly one of ``keep``, ``keep_total``, ``keep_n``.

    kind : "keep" (a fraction of the candidates), "keep_total" (a fraction of all N input rows) or
        "keep_n" (a row count).
    value : the fraction or the count.
    """

    kind: str
    value: float

    @classmethod
    def from_params(cls, params: Mapping[str, Any], key) -> "Budget":
        """The budget a policy's params give; a `ConfigError` unless exactly one budget key is set."""
        given = [k for k in BUDGET_KEYS if k in params]
        if len(given) != 1:
            where = key(given[1]) if len(given) > 1 else key("keep")
            value = {k: params[k] for k in given} if given else None
            raise ConfigError(where, value, "exactly one of keep (fraction of the candidates), keep_total (fraction of the whole dataset) or keep_n (rows)")
        kind = given[0]
        if kind == "keep_n":
            return cls(kind, check_positive_int(key(kind), params[kind]))
        return cls(kind, check_fraction(key(kind), params[kind]))

    def rows(self, n_candidates: int, n_total: int, *, policy: str = "") -> int:
        """Rows to keep from `n_candidates` candidates of a dataset of `n_total` rows.

        ``keep`` gives ``count_for(keep, n_candidates)``; ``keep_total`` ``count_for(keep_total, n_total)``;
        ``keep_n`` the count. A budget larger than the candidates keeps every candidate, with a warning.
        """
        if self.kind == "keep":
            return count_for(self.value, n_candidates)
        want = count_for(self.value, n_total) if self.kind == "keep_total" else int(self.value)
        if want > n_candidates:
            log.warning("selection %s: %s=%g asks for %d rows but only %d candidates are left; keeping all of them",
                        policy, self.kind, self.value, want, n_candidates)
        return min(want, n_candidates)


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
    budgeted : bool
        True: the policy takes exactly one of ``keep``, ``keep_total``, ``keep_n`` (include
        `BUDGET_PARAMS_DOC` in `params_doc`); the base class checks it into `budget`, and `select`
        asks `n_keep(candidates)` how many rows to keep.
    params : dict
        The parameters as the user wrote them (they form the `reason` text).
    """

    name: ClassVar[str] = ""
    params_doc: ClassVar[dict[str, str]] = {}
    required: ClassVar[tuple[str, ...]] = ()
    defaults: ClassVar[dict[str, Any]] = {}
    column_params: ClassVar[tuple[str, ...]] = ("score",)
    budgeted: ClassVar[bool] = False

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
        self.budget = Budget.from_params(params, self.key) if self.budgeted else None

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

    def select(self, scores: Mapping[str, np.ndarray], candidates: np.ndarray, *, context: SelectionContext | None = None) -> np.ndarray:
        """Decide which candidates to keep.

        Parameters
        ----------
        scores : mapping of column name to (N,) array
            Every score column produced by the run's scorers (and earlier policies' audit columns).
        candidates : (N,) bool
            The rows still alive after the previous policies.
        context : SelectionContext, optional
            The run's labels, embeddings and seed, for policies that need them (`needs`).

        Returns
        -------
        (N,) bool mask of the rows kept; a subset of `candidates`.
        """
        raise NotImplementedError

    def audit_columns(self) -> dict[str, np.ndarray]:
        """Per-row columns this policy wants in scores.parquet (N,), set during `select`. Default none."""
        return {}

    def n_keep(self, candidates: np.ndarray) -> int:
        """Rows this policy keeps out of `candidates` under its budget (`keep`, `keep_total` or `keep_n`)."""
        return self.budget.rows(int(np.count_nonzero(candidates)), len(candidates), policy=self.name)

    def reason(self) -> str:
        """The text written in `reason` for rows this policy drops."""
        args = ",".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.name}({args})"

    def column(self, scores: Mapping[str, np.ndarray], param: str = "score", *, dtype=np.float64) -> np.ndarray:
        """The values of the column named by parameter `param`, as float64 (or `dtype`; None: as stored).

        Raises
        ------
        ConfigError
            Naming ``selection[<name>].<param>`` when no scorer produced that column.
        """
        name = self.param(param)
        if name not in scores:
            raise ConfigError(self.key(param), name, f"a score column produced by a scorer: {sorted(scores)}")
        return np.asarray(scores[name], dtype=dtype)


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
