"""A7. Confident learning (Northcutt et al. 2021) through `cleanlab`, never reimplemented.

Needs out-of-sample `pred_probs`: the `confident_learning` step trains the proxy classifier with
K-fold cross-validation (default 5 folds, averaged over S seeds), or reads a user column of
logits/probabilities (which must then be out-of-sample too). Per row it writes the cleanlab
label-quality score (lower = more suspicious), the issue flag (`cleanlab.filter.find_label_issues`,
default `prune_by_noise_rate`) and the suggested label (argmax of `pred_probs`).

The better detector (issue 11), still cleanlab end to end: ``text_features: true`` blends the
embedding proxy's out-of-sample probabilities (weight 0.5) with two TF-IDF logistic models (word
1-2-grams and character 2-5-grams, out-of-sample on the same folds), and
``filter_by: low_self_confidence`` flags cleanlab's estimate of the number of label issues
(`cleanlab.count.num_label_issues`) with the lowest self-confidence, instead of the larger set
`prune_by_noise_rate` returns. Neither needs the noise rate. Measured in
benchmarks/noise_detection.py (docs/training-scores.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from datapruner.curation.dataset import Batch
from datapruner.errors import ConfigError, InputDataError
from datapruner.curation.prediction_checks import check_pred_probs
from datapruner.curation.proxy import blend_text_pred_probs, text_pred_probs
from datapruner.curation.step_predictions import (
    COLUMN_PARAMS_DOC, PROXY_PARAMS_DOC, check_pred_probs_params, fit_proxy_on_view, scorable_rows, view_pred_probs,
)
from datapruner.curation.steps import ScoreStep
from datapruner.validation import check_choice

FILTERS = ("prune_by_noise_rate", "prune_by_class", "both", "confident_learning", "predicted_neq_given",
           "low_self_confidence", "low_normalized_margin")
QUALITY_METHODS = ("self_confidence", "normalized_margin", "confidence_weighted_entropy")


@dataclass(frozen=True, kw_only=True)
class LabelQuality:
    """Per-row results of `label_quality`, each of shape (N,).

    label_quality : float in [0, 1]; lower = more likely mislabeled.
    is_label_issue : bool; True = cleanlab flags the given label as wrong.
    suggested_label : int; argmax of `pred_probs` (the class the model believes).
    """

    label_quality: np.ndarray
    is_label_issue: np.ndarray
    suggested_label: np.ndarray


def label_quality(
    labels: Any,
    pred_probs: Any,
    *,
    filter_by: str = "prune_by_noise_rate",
    method: str = "self_confidence",
) -> LabelQuality:
    """Score every given label with cleanlab and flag likely label errors.

    Parameters
    ----------
    labels : (N,) int class indices in ``0 .. K-1``; at least two classes present.
    pred_probs : (N, K) out-of-sample predicted probabilities (cross-validated), rows sum to 1.
    filter_by : cleanlab `find_label_issues` rule, default ``"prune_by_noise_rate"``; ``"low_self_confidence"``
        flags the `num_label_issues` estimate of rows with the lowest self-confidence.
    method : cleanlab `get_label_quality_scores` method, default ``"self_confidence"``.

    Returns
    -------
    LabelQuality with `label_quality` (lower = more suspicious), `is_label_issue` (True = suspicious)
    and `suggested_label`.
    """
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    check_choice("filter_by", filter_by, FILTERS)
    check_choice("method", method, QUALITY_METHODS)
    p = check_pred_probs(pred_probs, labels=labels)
    if p.ndim != 2:
        raise ConfigError("pred_probs", f"shape {p.shape}", "shape (N, K): average the runs' out-of-sample probabilities first")
    y = np.asarray(labels, dtype=np.int64)
    if np.unique(y).size < 2:
        raise InputDataError(f"labels contain a single class ({int(y[0])}); confident learning needs at least two classes")
    issues = find_label_issues(y, p, filter_by=filter_by, n_jobs=1)
    quality = get_label_quality_scores(y, p, method=method)
    return LabelQuality(
        label_quality=np.asarray(quality, dtype=np.float64),
        is_label_issue=np.asarray(issues, dtype=bool),
        suggested_label=p.argmax(1).astype(np.int64),
    )


class ConfidentLearningStep(ScoreStep):
    """Adds `label_quality`, `is_label_issue` and `suggested_label` from cleanlab on out-of-sample pred_probs."""

    name = "confident_learning"
    needs = frozenset({"text", "labels", "embeddings"})
    columns = {
        "label_quality": "cleanlab label quality score in [0, 1]; lower = more likely mislabeled",
        "is_label_issue": "true when cleanlab's find_label_issues flags the given label",
        "suggested_label": "the label the out-of-sample model predicts (argmax of pred_probs), in the input's label values",
    }
    params_doc = {
        **PROXY_PARAMS_DOC,
        **COLUMN_PARAMS_DOC,
        "filter_by": f"cleanlab find_label_issues rule, one of {list(FILTERS)} (default prune_by_noise_rate)",
        "method": f"cleanlab label quality method, one of {list(QUALITY_METHODS)} (default self_confidence)",
        "text_features": "true blends TF-IDF word and character logistic models (out-of-sample, same folds) into the proxy's "
        "pred_probs, weight 0.5 (default false)",
    }

    def __init__(self, **params: Any):
        super().__init__(**params)
        where = f"scorers[{self.name}].params"
        check_choice(f"{where}.filter_by", params.get("filter_by", "prune_by_noise_rate"), FILTERS)
        check_choice(f"{where}.method", params.get("method", "self_confidence"), QUALITY_METHODS)
        self.text_features = params.get("text_features", False)
        if not isinstance(self.text_features, bool):
            raise ConfigError(f"{where}.text_features", self.text_features, "true or false")
        if check_pred_probs_params(params, where=where, sample="cross_val") is None:
            if self.text_features:
                raise ConfigError(f"{where}.text_features", True, "false when logits_column / probs_column replaces the proxy")
            self.needs = frozenset({"text", "labels"})

    def fit(self, view) -> None:
        """Run cleanlab once on the out-of-sample pred_probs of every labelled, valid row."""
        n = view.n_rows
        self.quality = np.full(n, np.nan)
        self.issue = np.full(n, None, dtype=object)
        self.suggested = np.full(n, None, dtype=object)
        where = f"scorers[{self.name}].params"
        probs = view_pred_probs(view, self.params, where=where, sample="cross_val")
        if self.text_features:
            probs = self.blend_text(view, probs, where)
        rows = scorable_rows(view.labels, probs)
        if rows.size == 0:
            return
        result = label_quality(
            view.labels[rows], probs[0, rows],
            filter_by=self.params.get("filter_by", "prune_by_noise_rate"),
            method=self.params.get("method", "self_confidence"),
        )
        names = view.info.label_names
        self.quality[rows] = result.label_quality
        self.issue[rows] = result.is_label_issue.tolist()
        self.suggested[rows] = [names[i] if names is not None and i < len(names) else int(i) for i in result.suggested_label]
        self.n_issues = int(result.is_label_issue.sum())

    def blend_text(self, view, probs: np.ndarray, where: str) -> np.ndarray:
        """`probs` (1, N, K) with the proxy's rows blended with the TF-IDF models' out-of-sample probabilities."""
        proxy = check_pred_probs_params(self.params, where=where, sample="cross_val", random_state=view.random_state)
        proxy, rows = fit_proxy_on_view(view, proxy)  # the fit `view_pred_probs` just made (cached on the view)
        texts = [t for batch in view.batches() for t in batch.texts]
        text = text_pred_probs([texts[i] for i in rows], view.labels[rows], n_classes=proxy.n_classes_, folds=proxy.folds_)
        out = probs.copy()
        out[0, rows] = blend_text_pred_probs(probs[0, rows], text)
        return out

    def score_batch(self, batch: Batch) -> dict[str, np.ndarray]:
        """The batch's slice of the fitted columns."""
        s = slice(batch.start, batch.start + len(batch))
        return {"label_quality": self.quality[s].copy(), "is_label_issue": self.issue[s].copy(), "suggested_label": self.suggested[s].copy()}

    def write_report(self, out_dir: Path, scores: dict[str, np.ndarray]) -> dict[str, Any]:
        """Manifest entry: rows flagged and rows checked."""
        flags = scores.get("is_label_issue")
        if flags is None:
            return {}
        return {"label_issues": int(sum(1 for v in flags if v is True)), "rows_checked": int(sum(1 for v in flags if v is not None))}
