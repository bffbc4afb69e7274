"""A8. Error-Uncertainty plane quadrants (Q-Tuning, "Winning the Pruning Gamble", 2025).

Thresholds are quantiles of the candidates' error E and uncertainty U:
``E_hi = Q_{1-a}(E)``, ``E_lo = Q_a(E)``, ``U_hi = Q_{1-b}(U)``, ``U_lo = Q_b(U)``.

- Q1 (E >= E_hi, U >= U_hi): harmful noise, dropped;
- Q2 (E >= E_hi, U <= U_lo): valuable misconception, kept (its tokens can then be pruned);
- Q3 (E <= E_lo, U <= U_lo): redundant, dropped;
- Q4 (E <= E_lo, U >= U_hi): calibration, kept whole;
- anything between the bands: ``unassigned``, dropped.

The project's choice where the paper leaves one open: a = b = t, and t in [0, 0.49] is found by
bisection (9 steps) as the widest band whose Q2 + Q4 does not exceed the budget. When Q2 + Q4
holds fewer rows than the budget, rows are topped up from Q1 and Q3 by ``max(P - H, H - P)`` on
min-max-normalised error P and uncertainty H (largest first), and, if Q1 and Q3 run out, from the
unassigned rows by the same rule. Exactly ``count_for(keep, n)`` rows are kept.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from datapruner.errors import ConfigError, InputDataError
from datapruner.selection.base import BUDGET_PARAMS_DOC, Policy, count_for
from datapruner.validation import check_fraction

log = logging.getLogger(__name__)

QUADRANTS = ("Q1", "Q2", "Q3", "Q4", "unassigned")
QUADRANT_MEANING = {
    "Q1": "harmful noise (high error, high uncertainty)",
    "Q2": "valuable misconception (high error, low uncertainty)",
    "Q3": "redundant (low error, low uncertainty)",
    "Q4": "calibration (low error, high uncertainty)",
    "unassigned": "between the quantile bands",
}
MAX_BAND = 0.49
BISECTION_STEPS = 9


@dataclass(frozen=True, kw_only=True)
class QuadrantAssignment:
    """Result of `eu_quadrants`.

    quadrant : (N,) str, one of "Q1".."Q4", "unassigned".
    keep : (N,) bool; Q2 and Q4 rows plus any top-up rows.
    topped_up : (N,) bool; rows kept from Q1 / Q3 / unassigned to meet the budget.
    a, b : the quantile band widths found by bisection (a = b).
    error_bounds, uncertainty_bounds : (lo, hi) thresholds.
    """

    quadrant: np.ndarray
    keep: np.ndarray
    topped_up: np.ndarray
    a: float
    b: float
    error_bounds: tuple[float, float]
    uncertainty_bounds: tuple[float, float]

    def counts(self) -> dict[str, int]:
        """Rows per quadrant, {"Q1": n, ..., "unassigned": n}."""
        return {q: int((self.quadrant == q).sum()) for q in QUADRANTS}


def assign_quadrants(error: np.ndarray, uncertainty: np.ndarray, t: float) -> tuple[np.ndarray, tuple[float, float], tuple[float, float]]:
    """Quadrant of every sample for one band width `t` (a = b = t), before any budget.

    Parameters
    ----------
    error, uncertainty : (N,) finite floats.
    t : band width in [0, 0.5): thresholds are the t and 1 - t quantiles.

    Returns
    -------
    quadrant : (N,) object, one of `QUADRANTS`.
    error_bounds, uncertainty_bounds : (lo, hi) thresholds.
    """
    e_lo, e_hi = np.quantile(error, [t, 1.0 - t])
    u_lo, u_hi = np.quantile(uncertainty, [t, 1.0 - t])
    high_e, low_e = error >= e_hi, error <= e_lo
    high_u, low_u = uncertainty >= u_hi, uncertainty <= u_lo
    quadrant = np.full(len(error), "unassigned", dtype=object)
    quadrant[low_e & high_u] = "Q4"
    quadrant[low_e & low_u] = "Q3"
    quadrant[high_e & low_u] = "Q2"
    quadrant[high_e & high_u] = "Q1"
    return quadrant, (float(e_lo), float(e_hi)), (float(u_lo), float(u_hi))


def _minmax(x: np.ndarray) -> np.ndarray:
    span = x.max() - x.min()
    return (x - x.min()) / span if span > 0 else np.zeros_like(x)


def eu_quadrants(error: Any, uncertainty: Any, *, keep: float) -> QuadrantAssignment:
    """Place every sample in an Error-Uncertainty quadrant and keep Q2 + Q4 within a sample budget.

    Parameters
    ----------
    error : (N,) float, finite
        Error E of each sample: response perplexity under the reference LM, or for classifiers the
        cross-entropy of the given label. Higher = the model finds the target more surprising.
    uncertainty : (N,) float, finite
        Uncertainty U: mean full-vocabulary predictive entropy over response tokens, or for
        classifiers the entropy of `pred_probs`. Higher = the model is less sure.
    keep : float in (0, 1]
        Sample budget: the fraction of the N samples to keep.

    Returns
    -------
    QuadrantAssignment with each row's quadrant, the keep mask (exactly ``count_for(keep, N)``
    rows), which rows were topped up, and the thresholds.
    """
    e = np.asarray(error, dtype=np.float64)
    u = np.asarray(uncertainty, dtype=np.float64)
    if e.ndim != 1 or u.shape != e.shape:
        raise InputDataError(f"error and uncertainty must be 1-D arrays of one length; given shapes {e.shape} and {u.shape}")
    if not (np.all(np.isfinite(e)) and np.all(np.isfinite(u))):
        raise InputDataError("error and uncertainty must be finite; drop rows without scores first (the quadrants policy does)")
    frac = check_fraction("keep", keep)
    n = len(e)
    target = count_for(frac, n)
    empty = np.zeros(n, dtype=bool)
    if n == 0:
        return QuadrantAssignment(quadrant=np.zeros(0, dtype=object), keep=empty, topped_up=empty, a=0.0, b=0.0,
                                  error_bounds=(np.nan, np.nan), uncertainty_bounds=(np.nan, np.nan))

    def kept(t: float) -> int:
        q = assign_quadrants(e, u, t)[0]
        return int(np.isin(q, ("Q2", "Q4")).sum())

    if kept(MAX_BAND) <= target:
        t = MAX_BAND
    else:
        lo, hi = 0.0, MAX_BAND
        for _ in range(BISECTION_STEPS):
            mid = (lo + hi) / 2
            if kept(mid) <= target:
                lo = mid
            else:
                hi = mid
        t = lo
    quadrant, e_bounds, u_bounds = assign_quadrants(e, u, t)
    keep_mask = np.isin(quadrant, ("Q2", "Q4"))
    disagreement = np.abs(_minmax(e) - _minmax(u))  # max(P - H, H - P)
    if keep_mask.sum() > target:  # only through ties at t = 0: keep the most Q2/Q4-like of them
        rows = np.flatnonzero(keep_mask)
        keep_mask = empty.copy()
        keep_mask[rows[np.lexsort((rows, -disagreement[rows]))][:target]] = True
    topped = empty.copy()
    missing = target - int(keep_mask.sum())
    if missing > 0:
        for pool in (np.isin(quadrant, ("Q1", "Q3")), quadrant == "unassigned", np.isin(quadrant, ("Q2", "Q4"))):
            rows = np.flatnonzero(pool & ~keep_mask)
            order = rows[np.lexsort((rows, -disagreement[rows]))][:missing]
            keep_mask[order] = True
            topped[order] = ~np.isin(quadrant[order], ("Q2", "Q4"))
            missing -= len(order)
            if missing <= 0:
                break
    return QuadrantAssignment(quadrant=quadrant, keep=keep_mask, topped_up=topped, a=t, b=t, error_bounds=e_bounds, uncertainty_bounds=u_bounds)


class Quadrants(Policy):
    """Keep Q2 (misconception) + Q4 (calibration) samples of the EU plane within a `keep` budget.

    Designed for prompt/response data (error = response perplexity, uncertainty = mean token entropy
    under the reference LM). On classification data error (cross-entropy) and uncertainty (entropy)
    are strongly correlated, Q2 and Q4 are nearly empty, and most of the budget is topped up from
    Q1 ("harmful noise"); the policy then logs a warning and records the shortfall.

    Audit columns: `quadrant` (each candidate's quadrant, null for rows that were not candidates),
    `quadrant_topped_up` (true for rows kept from Q1 / Q3 / unassigned to meet the budget, null for
    non-candidates), and, when the scorer produced a token-pruned response, the pruned text of the
    kept Q2 rows in `q2_pruned_response`. `report()` gives the populations and the shortfall.

    Parameters
    ----------
    keep | keep_total | keep_n :
        The budget (exactly one): a fraction of the candidates, of the whole dataset, or a row count.
    error, uncertainty : str, default "eu_error", "eu_uncertainty"
        The error and uncertainty columns (rows where either is NaN are dropped).
    pruned_column : str, default "eu_pruned_response"
        Column of token-pruned responses, used when present (an error when named but absent).
    """

    name = "quadrants"
    budgeted = True
    defaults = {"error": "eu_error", "uncertainty": "eu_uncertainty", "pruned_column": "eu_pruned_response"}
    column_params = ("error", "uncertainty", "pruned_column")
    params_doc = {
        **BUDGET_PARAMS_DOC,
        "error": "error column (default eu_error)",
        "uncertainty": "uncertainty column (default eu_uncertainty)",
        "pruned_column": "column of token-pruned responses (default eu_pruned_response when present)",
    }

    def __init__(self, **params: Any):
        super().__init__(**params)
        self._audit: dict[str, np.ndarray] = {}

    @property
    def score_column(self) -> str | None:
        """The error column: rows missing it are dropped with ``[missing <error>]``."""
        return self.param("error")

    def select(self, scores, candidates, *, context=None):
        """Keep Q2 + Q4 of the candidates with finite error and uncertainty, topped up to the budget."""
        e = self.column(scores, "error")
        u = self.column(scores, "uncertainty")
        rows = np.flatnonzero(candidates & np.isfinite(e) & np.isfinite(u))
        n_keep = min(self.n_keep(candidates), len(rows))
        result = eu_quadrants(e[rows], u[rows], keep=n_keep / len(rows) if len(rows) else 1.0)
        n = len(candidates)
        quadrant = np.full(n, None, dtype=object)
        quadrant[rows] = result.quadrant
        topped = np.full(n, None, dtype=object)
        topped[rows] = result.topped_up.tolist()
        mask = np.zeros(n, dtype=bool)
        mask[rows[result.keep]] = True
        self._audit = {"quadrant": quadrant, "quadrant_topped_up": topped}
        self.report_ = quadrant_report(result)
        if self.report_["shortfall"]:
            log.warning(
                "quadrants: Q2 + Q4 hold %d rows, fewer than the budget of %d; %d rows were topped up from Q1/Q3/unassigned "
                "(the quadrant method is designed for prompt/response data, see docs/selection.md)",
                self.report_["q2_q4_rows"], self.report_["budget"], self.report_["topped_up"],
            )
        pruned_col = self.param("pruned_column")
        if pruned_col in scores:
            pruned = np.full(n, None, dtype=object)
            q2 = rows[result.keep & (result.quadrant == "Q2")]
            pruned[q2] = np.asarray(scores[pruned_col], dtype=object)[q2]
            self._audit["q2_pruned_response"] = pruned
        elif "pruned_column" in self.params:
            raise ConfigError(self.key("pruned_column"), pruned_col, f"a column produced by a scorer: {sorted(scores)}")
        self.result_ = result
        return mask

    def audit_columns(self) -> dict[str, np.ndarray]:
        """`quadrant` and `quadrant_topped_up` per row (and `q2_pruned_response` when the scorer pruned tokens), after `select`."""
        return dict(self._audit)


def quadrant_report(result: QuadrantAssignment) -> dict[str, Any]:
    """Populations of one quadrant assignment and whether Q2 + Q4 could meet the budget.

    Returns
    -------
    dict with ``populations`` (rows per quadrant), ``kept_by_quadrant``, ``budget`` (rows kept),
    ``q2_q4_rows``, ``topped_up`` (rows kept from outside Q2 + Q4), ``shortfall`` (True when
    Q2 + Q4 held fewer rows than the budget) and the band width ``a``.
    """
    kept_q = result.quadrant[result.keep]
    counts = result.counts()
    q2q4 = counts["Q2"] + counts["Q4"]
    budget = int(result.keep.sum())
    return {
        "populations": counts,
        "kept_by_quadrant": {q: int((kept_q == q).sum()) for q in QUADRANTS},
        "budget": budget,
        "q2_q4_rows": int(q2q4),
        "topped_up": int(result.topped_up.sum()),
        "shortfall": bool(q2q4 < budget),
        "a": float(result.a),
    }
