"""A1. EL2N (Paul et al. 2021, "Deep Learning on a Data Diet").

``el2n_i = || softmax(f(x_i)) - onehot(y_i) ||_2``, averaged over S independently initialised runs,
each scored after E early epochs. High = hard / informative (and, at the very top, often
mislabeled: the `top_fraction` policy's `offset` skips that top slice).

Sources of `f` for the `el2n` step:
1. the proxy classifier on frozen embeddings (default; `datapruner.curation.proxy.ProxyClassifier`, S runs
   trained on every labelled row and scored in-sample after E epochs, as the paper does);
2. the user's model through `datapruner.pipelines.training_hooks` (`scores_file`: a Parquet file written by the
   plain helper or the `TrainerCallback`);
3. a column of precomputed logits or probabilities (`logits_column` / `probs_column`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from datapruner.curation.dataset import Batch
from datapruner.curation.prediction_checks import check_pred_probs
from datapruner.curation.recorded_scores import recorded_params_doc, recorded_scores_for_step
from datapruner.curation.step_predictions import COLUMN_PARAMS_DOC, PROXY_PARAMS_DOC, check_pred_probs_params, scorable_rows, view_pred_probs
from datapruner.curation.steps import ScoreStep


def el2n_scores(labels: Any, pred_probs: Any) -> np.ndarray:
    """EL2N score of every example: the L2 norm of the error vector ``p - onehot(y)``.

    Parameters
    ----------
    labels : array of shape (N,)
        Given class indices in ``0 .. K-1``.
    pred_probs : array of shape (N, K), or (S, N, K) for S independently initialised runs
        Predicted class probabilities; every row sums to 1.

    Returns
    -------
    (N,) float64 in ``[0, sqrt(2)]``; with S runs, the mean of the S per-run norms.
    Higher = harder / more informative (and, at the extreme, more likely mislabeled).
    """
    p = check_pred_probs(pred_probs, labels=labels)
    y = np.asarray(labels, dtype=np.int64)
    err = p.copy()
    rows = np.arange(len(y))
    err[..., rows, y] -= 1.0
    norms = np.sqrt((err**2).sum(-1))
    return norms.mean(0) if norms.ndim == 2 else norms


class EL2NStep(ScoreStep):
    """Adds `el2n`: mean over S proxy runs (or the user's model) of ||p - onehot(y)||_2; higher = harder."""

    name = "el2n"
    needs = frozenset({"text", "labels", "embeddings"})
    columns = {"el2n": "||softmax(f(x)) - onehot(y)||_2 averaged over runs; higher = harder / more informative, extreme = likely mislabeled"}
    params_doc = {
        **PROXY_PARAMS_DOC,
        **COLUMN_PARAMS_DOC,
        "pred_probs": "'in_sample' (default; the paper: runs trained on all rows, scored after E epochs) or 'cross_val' (out-of-sample)",
        **recorded_params_doc("el2n"),
    }

    def __init__(self, **params: Any):
        super().__init__(**params)
        where = f"scorers[{self.name}].params"
        if params.get("scores_file"):
            self.needs = frozenset({"text"})
        elif check_pred_probs_params(params, where=where, sample=params.get("pred_probs", "in_sample")) is None:
            self.needs = frozenset({"text", "labels"})

    def fit(self, view) -> None:
        """Compute every row's EL2N once: recorded scores, a logits/probs column, or the proxy runs."""
        recorded = recorded_scores_for_step(self, view, "el2n")
        if recorded is not None:
            self.values = recorded
            return
        self.values = np.full(view.n_rows, np.nan)
        probs = view_pred_probs(view, self.params, where=f"scorers[{self.name}].params", sample=self.params.get("pred_probs", "in_sample"))
        rows = scorable_rows(view.labels, probs)
        if rows.size:
            self.values[rows] = el2n_scores(view.labels[rows], probs[:, rows])

    def score_batch(self, batch: Batch) -> dict[str, np.ndarray]:
        """The batch's slice of the fitted `el2n` column."""
        return {"el2n": self.values[batch.start : batch.start + len(batch)].copy()}
