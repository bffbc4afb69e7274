"""A8. Error-Uncertainty plane (Q-Tuning, "Winning the Pruning Gamble", 2025): the scores.

Per sample, under a model:
- classification (labels, proxy or user pred_probs): error = cross-entropy of the given label,
  uncertainty = entropy of `pred_probs`;
- text generation (prompt/response columns, the reference LM): error = response perplexity
  ``exp(mean NLL over response tokens)``, uncertainty = mean full-vocabulary predictive entropy
  over the same tokens.

The decision (quantile bisection, quadrants Q1..Q4, top-up) is a selection policy:
`datapruner.selection.quadrants` (`policy: quadrants`, pure function `eu_quadrants`); this module
computes scores only and does not import it. For text-generation data this step also computes the
Q2 token pruning of every response (`prune_tokens`): the policy attaches the pruned text to the
rows it keeps as Q2.

Deviation from the paper: Q-Tuning re-scores and prunes every mini-batch during training with the
model being trained; the pipeline applies the same rules once, offline, under a fixed model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from datapruner.curation.dataset import Batch
from datapruner.curation.prediction_checks import check_pred_probs
from datapruner.curation.step_predictions import COLUMN_PARAMS_DOC, PROXY_PARAMS_DOC, check_pred_probs_params, scorable_rows, view_pred_probs
from datapruner.curation.steps import ScoreStep
from datapruner.errors import InputDataError
from datapruner.selection.quadrants import QUADRANTS
from datapruner.validation import check_choice, check_fraction, check_number

__all__ = ["EUQuadrantsStep", "error_uncertainty", "lm_error_uncertainty", "plot_eu_plane", "prune_tokens"]

_EPS = 1e-12
TASKS = ("auto", "classification", "generation")


def error_uncertainty(labels: Any, pred_probs: Any) -> tuple[np.ndarray, np.ndarray]:
    """Classification error and uncertainty of every example.

    Parameters
    ----------
    labels : (N,) int class indices in ``0 .. K-1``.
    pred_probs : (N, K), or (S, N, K) for S runs (both scores are then averaged over runs).

    Returns
    -------
    error : (N,) cross-entropy ``-log p[y]`` in nats; higher = the given label is more surprising.
    uncertainty : (N,) entropy ``-sum_k p_k log p_k`` in nats; higher = the model is less sure.
    """
    p = check_pred_probs(pred_probs, labels=labels)
    y = np.asarray(labels, dtype=np.int64)
    rows = np.arange(len(y))
    error = -np.log(np.clip(p[..., rows, y], _EPS, 1.0))
    uncertainty = -(p * np.log(np.clip(p, _EPS, 1.0))).sum(-1)
    if p.ndim == 3:
        error, uncertainty = error.mean(0), uncertainty.mean(0)
    return error, uncertainty


def lm_error_uncertainty(stats: list) -> tuple[np.ndarray, np.ndarray]:
    """Text-generation error and uncertainty from reference-LM token statistics.

    Parameters
    ----------
    stats : list of N `datapruner.models.TokenStats` computed with ``entropy=True`` over the
        response tokens (``CausalLM.token_stats(responses, prompts=prompts, entropy=True)``).

    Returns
    -------
    error : (N,) response perplexity ``exp(mean NLL)``; higher = more surprising. NaN without tokens.
    uncertainty : (N,) mean full-vocabulary entropy (nats) over the response tokens; higher = less sure.
    """
    error = np.full(len(stats), np.nan)
    uncertainty = np.full(len(stats), np.nan)
    for i, s in enumerate(stats):
        if s.entropy is None:
            raise InputDataError("token stats were computed without entropy; call token_stats(..., entropy=True)")
        if s.nll.size:
            error[i] = float(np.exp(np.mean(s.nll, dtype=np.float64)))
            uncertainty[i] = float(np.mean(s.entropy, dtype=np.float64))
    return error, uncertainty


def prune_tokens(nll: Any, *, lam: float = 0.5, r_token: float = 0.7) -> np.ndarray:
    """Q2 token pruning: which response tokens to keep.

    Each token's score is ``s_t = (1 - lam) PPL_t + lam (PPL_{t-1} + PPL_{t+1})`` with
    ``PPL_t = exp(nll_t)``; at the two ends the missing neighbour is replaced by the token itself
    (the project's choice). The lowest-scoring ``r_token`` fraction is kept (rounded half up, at
    least one token), ties broken by position.

    Parameters
    ----------
    nll : (T,) per-token negative log-likelihood of the response, in nats.
    lam : neighbour weight in [0, 1], default 0.5.
    r_token : fraction of tokens kept, in (0, 1], default 0.7.

    Returns
    -------
    (T,) bool mask, True = keep the token.
    """
    x = np.asarray(nll, dtype=np.float64)
    if x.ndim != 1:
        raise InputDataError(f"nll must be a 1-D array of per-token NLL; given shape {x.shape}")
    lam = check_number("lam", lam, low=0.0, high=1.0)
    r_token = check_fraction("r_token", r_token)
    if not np.all(np.isfinite(x)):
        raise InputDataError("nll has NaN or inf values; expected finite per-token NLL")
    t = len(x)
    if t == 0:
        return np.zeros(0, dtype=bool)
    ppl = np.exp(x)
    prev = np.concatenate([ppl[:1], ppl[:-1]])
    nxt = np.concatenate([ppl[1:], ppl[-1:]])
    score = (1 - lam) * ppl + lam * (prev + nxt)
    n_keep = min(t, max(1, int(np.floor(r_token * t + 0.5))))
    order = np.lexsort((np.arange(t), score))
    mask = np.zeros(t, dtype=bool)
    mask[order[:n_keep]] = True
    return mask


class EUQuadrantsStep(ScoreStep):
    """Adds `eu_error` and `eu_uncertainty` (and, for prompt/response data, the Q2 token pruning)."""

    name = "eu_quadrants"
    needs = frozenset({"text"})
    columns = {
        "eu_error": "classification: cross-entropy of the given label; generation: response perplexity. Higher = more surprising",
        "eu_uncertainty": "classification: entropy of pred_probs; generation: mean full-vocabulary entropy of response tokens. Higher = less sure",
        "eu_tokens": "generation only: response tokens scored",
        "eu_token_mask": "generation only: per scored response token, true = kept by Q2 token pruning",
        "eu_pruned_response": "generation only: the response with pruned tokens removed (what a Q2 row keeps)",
    }
    params_doc = {
        **PROXY_PARAMS_DOC,
        **COLUMN_PARAMS_DOC,
        "task": "'auto' (default: generation when prompt/response columns are mapped, else classification), 'classification' or 'generation'",
        "pred_probs": "classification: 'in_sample' (default; the proxy trained on the rows it scores, as a model in training) or 'cross_val'",
        "lam": "token pruning neighbour weight lambda in [0, 1] (default 0.5)",
        "r_token": "fraction of response tokens kept in Q2 rows, in (0, 1] (default 0.7)",
    }

    def __init__(self, **params: Any):
        super().__init__(**params)
        where = f"scorers[{self.name}].params"
        task = check_choice(f"{where}.task", params.get("task", "auto"), TASKS)
        self.lam = check_number(f"{where}.lam", params.get("lam", 0.5), low=0.0, high=1.0)
        self.r_token = check_fraction(f"{where}.r_token", params.get("r_token", 0.7))
        proxy = check_pred_probs_params(params, where=where, sample=params.get("pred_probs", "in_sample"))
        if task == "classification":
            self.needs = frozenset({"text", "labels"} | (set() if proxy is None else {"embeddings"}))
        elif task == "generation":
            self.needs = frozenset({"text", "lm", "prompt_response"})

    def fit(self, view) -> None:
        """Pick the task; for classification compute error and uncertainty of every row once."""
        task = self.params.get("task", "auto")
        if task == "auto":
            if view.dataset.columns.response is not None and view.dataset.columns.prompt is not None:
                task = "generation"
            elif view.labels is not None:
                task = "classification"
            else:
                raise InputDataError(
                    "eu_quadrants needs either prompt/response columns (input.columns.prompt/.response) "
                    "or a label column (input.columns.label)"
                )
        self.task = task
        if task == "generation":
            if view.dataset.columns.response is None:
                raise InputDataError("eu_quadrants task=generation needs input.columns.prompt and input.columns.response")
            self.lm = view.lm
            return
        if view.labels is None:
            raise InputDataError("eu_quadrants task=classification needs labels; map input.columns.label (--label-column)")
        probs = view_pred_probs(view, self.params, where=f"scorers[{self.name}].params", sample=self.params.get("pred_probs", "in_sample"))
        self.error = np.full(view.n_rows, np.nan)
        self.uncertainty = np.full(view.n_rows, np.nan)
        rows = scorable_rows(view.labels, probs)
        if rows.size:
            e, u = error_uncertainty(view.labels[rows], probs[:, rows])
            self.error[rows], self.uncertainty[rows] = e, u

    def score_batch(self, batch: Batch) -> dict[str, np.ndarray]:
        """Classification: the fitted slice; generation: LM error, uncertainty and Q2 token pruning of the batch."""
        if self.task == "classification":
            s = slice(batch.start, batch.start + len(batch))
            return {"eu_error": self.error[s].copy(), "eu_uncertainty": self.uncertainty[s].copy()}
        n = len(batch)
        error, uncertainty = np.full(n, np.nan), np.full(n, np.nan)
        tokens = np.zeros(n, dtype=np.int64)
        masks = np.full(n, None, dtype=object)
        pruned = np.full(n, None, dtype=object)
        rows = np.flatnonzero(batch.valid)
        if rows.size:
            responses = [batch.responses[i] for i in rows]
            prompts = [batch.prompts[i] for i in rows]
            stats = self.lm.token_stats(responses, prompts=prompts, entropy=True)
            error[rows], uncertainty[rows] = lm_error_uncertainty(stats)
            ids, first, _ = self.lm.encode(responses, prompts)
            tok = self.lm.tokenizer
            for j, (i, s) in enumerate(zip(rows, stats)):
                t = s.nll.size
                tokens[i] = t
                if t == 0:
                    continue
                mask = prune_tokens(s.nll, lam=self.lam, r_token=self.r_token)
                scored = ids[j][first[j] : first[j] + t]
                masks[i] = mask.tolist()
                kept = [tid for tid, m in zip(scored, mask) if m]
                body = tok(responses[j], add_special_tokens=False)["input_ids"]
                pruned[i] = tok.decode(kept + list(body[t:]), skip_special_tokens=True)
        return {"eu_error": error, "eu_uncertainty": uncertainty, "eu_tokens": tokens, "eu_token_mask": masks, "eu_pruned_response": pruned}

    def write_report(self, out_dir: Path, scores: dict[str, np.ndarray]) -> dict[str, Any]:
        """`eu_plane.png` (error vs uncertainty, coloured by quadrant) and, when the quadrants policy
        ran, its populations and whether Q2 + Q4 met the budget (`quadrant_summary`)."""
        e = np.asarray(scores.get("eu_error"), dtype=np.float64)
        u = np.asarray(scores.get("eu_uncertainty"), dtype=np.float64)
        ok = np.isfinite(e) & np.isfinite(u)
        summary = {"quadrants": quadrant_summary(scores)} if "quadrant" in scores else {}
        if ok.sum() < 2 or not self.draw_plots:
            return summary
        return {**summary, "plots": [plot_eu_plane(e[ok], u[ok], None if "quadrant" not in scores else np.asarray(scores["quadrant"], dtype=object)[ok],
                                        Path(out_dir) / "eu_plane.png", log_error=getattr(self, "task", "") == "generation")]}


def quadrant_summary(scores: dict[str, np.ndarray]) -> dict[str, Any]:
    """The manifest entry of a quadrants selection, from its audit columns.

    Returns
    -------
    dict with ``populations`` (candidates per quadrant), ``topped_up`` (rows kept from outside
    Q2 + Q4 to meet the budget), ``shortfall`` (True when Q2 + Q4 could not meet the budget) and,
    on a shortfall, a ``warning`` text.
    """
    quadrant = np.asarray(scores["quadrant"], dtype=object)
    topped = np.asarray(scores.get("quadrant_topped_up", np.full(len(quadrant), None)), dtype=object)
    populations = {q: int(sum(1 for v in quadrant if v == q)) for q in QUADRANTS}
    n_topped = int(sum(1 for v in topped if v is True))
    out: dict[str, Any] = {"populations": populations, "topped_up": n_topped, "shortfall": n_topped > 0}
    if n_topped:
        out["warning"] = (
            f"Q2 + Q4 hold {populations['Q2'] + populations['Q4']} rows, fewer than the budget; {n_topped} rows were "
            "topped up from Q1/Q3/unassigned. The quadrant method is designed for prompt/response data (docs/selection.md)"
        )
    return out


QUADRANT_COLORS = {"Q1": "tab:red", "Q2": "tab:orange", "Q3": "tab:blue", "Q4": "tab:green", "unassigned": "lightgrey"}


def plot_eu_plane(error: np.ndarray, uncertainty: np.ndarray, quadrant: np.ndarray | None, path: Path, *, log_error: bool = False) -> str:
    """Scatter of the EU plane coloured by the `quadrant` audit column (grey without one).

    Parameters
    ----------
    error, uncertainty : (N,) finite floats.
    quadrant : (N,) object or None
        Each row's quadrant as the quadrants policy recorded it (None for rows that were not
        candidates); each distinct value gets its own colour and legend entry.
    path : the PNG file to write.
    log_error : log scale on the error axis (perplexities).

    Returns
    -------
    The file name written.
    """
    from datapruner.curation.report import pyplot

    plt = pyplot()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 5))
    if quadrant is None:
        ax.scatter(error, uncertainty, s=6, c="tab:grey")
    else:
        names = np.array(["not a candidate" if v is None else str(v) for v in quadrant], dtype=object)
        for q in sorted(set(names.tolist())):
            sel = names == q
            style = {"c": "black", "marker": "x"} if q == "not a candidate" else {"c": QUADRANT_COLORS.get(q, "tab:purple")}
            ax.scatter(error[sel], uncertainty[sel], s=6, label=f"{q} ({int(sel.sum())})", **style)
        ax.legend(fontsize=7, loc="best")
    if log_error:
        ax.set_xscale("log")
    ax.set_xlabel("error (perplexity)" if log_error else "error (cross-entropy of the given label)")
    ax.set_ylabel("uncertainty (entropy)")
    ax.set_title("Error-Uncertainty plane")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path.name
