"""A7. Confident learning (Northcutt et al. 2021) through `cleanlab`, never reimplemented.

Needs out-of-sample `pred_probs`: the `confident_learning` step trains the proxy classifier with
K-fold cross-validation (default 5 folds, averaged over S seeds), or reads a user column of
logits/probabilities (which must then be out-of-sample too). Per row it writes the cleanlab
label-quality score (lower = more suspicious), the issue flag (`cleanlab.filter.find_label_issues`,
default `prune_by_noise_rate`) and the suggested label (argmax of `pred_probs`).

The better detector (issue 11), still cleanlab end to end: ``text_features: true`` blends the
embedding proxy's out-of-sample probabilities (weight 0.5) with two TF-IDF logistic models (word
1-2-grams and character 2-5-grams, out-of-sample on the same folds);
``filter_by: low_self_confidence`` flags the rows with the lowest self-confidence, as many as
cleanlab estimates there are label issues (`cleanlab.count.num_label_issues`; ``issue_count``
chooses its estimator); ``refit_clean: true`` then trains every model again without the rows that
first pass flagged (each row still scored by models that never saw it) and detects again on those
cleaner probabilities. None of it needs the noise rate. Measured in benchmarks/noise_detection.py
(docs/training-scores.md).
"""

from __future__ import annotations

from dataclasses import dataclass
import logging
import warnings
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

log = logging.getLogger(__name__)

FILTERS = ("prune_by_noise_rate", "prune_by_class", "both", "confident_learning", "predicted_neq_given",
           "low_self_confidence", "low_normalized_margin")
QUALITY_METHODS = ("self_confidence", "normalized_margin", "confidence_weighted_entropy")
#: How many rows the ``low_*`` filters flag: cleanlab's two estimators of the number of label issues,
#: or their mean. ``off_diagonal`` (cleanlab's default) undercounts with many classes, where a
#: flipped row often clears no class's confidence threshold; ``off_diagonal_calibrated`` overcounts
#: on two classes (docs/training-scores.md).
ISSUE_COUNTS = ("off_diagonal", "off_diagonal_calibrated", "mean")
RANKED_FILTERS = ("low_self_confidence", "low_normalized_margin")


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
    issue_count: str = "off_diagonal",
) -> LabelQuality:
    """Score every given label with cleanlab and flag likely label errors.

    Parameters
    ----------
    labels : (N,) int class indices in ``0 .. K-1``; at least two classes present.
    pred_probs : (N, K) out-of-sample predicted probabilities (cross-validated), rows sum to 1.
    filter_by : cleanlab `find_label_issues` rule, default ``"prune_by_noise_rate"``; ``"low_self_confidence"``
        flags the `num_label_issues` estimate of rows with the lowest self-confidence.
    method : cleanlab `get_label_quality_scores` method, default ``"self_confidence"``.
    issue_count : the `num_label_issues` estimator behind the ``low_*`` filters, one of `ISSUE_COUNTS`
        (default ``"off_diagonal"``, cleanlab's own); only those filters take another value.

    Returns
    -------
    LabelQuality with `label_quality` (lower = more suspicious), `is_label_issue` (True = suspicious)
    and `suggested_label`.
    """
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    check_choice("filter_by", filter_by, FILTERS)
    check_choice("method", method, QUALITY_METHODS)
    check_issue_count("issue_count", issue_count, filter_by)
    p = check_pred_probs(pred_probs, labels=labels)
    if p.ndim != 2:
        raise ConfigError("pred_probs", f"shape {p.shape}", "shape (N, K): average the runs' out-of-sample probabilities first")
    y = np.asarray(labels, dtype=np.int64)
    if np.unique(y).size < 2:
        raise InputDataError(f"labels contain a single class ({int(y[0])}); confident learning needs at least two classes")
    if issue_count == "off_diagonal":
        singletons = [int(c) for c, n in zip(*np.unique(y, return_counts=True)) if n == 1]
        if singletons:  # said once, in our words, instead of cleanlab's warning per class
            log.warning("confident learning cannot flag the only row of a class: classes %s have a single labelled row",
                        singletons)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="May not flag all label issues in class", category=UserWarning)
            issues = find_label_issues(y, p, filter_by=filter_by, n_jobs=1)
    else:
        issues = lowest_ranked(get_label_quality_scores(y, p, method=filter_by[4:]), count_label_issues(y, p, issue_count))
    quality = get_label_quality_scores(y, p, method=method)
    return LabelQuality(
        label_quality=np.asarray(quality, dtype=np.float64),
        is_label_issue=np.asarray(issues, dtype=bool),
        suggested_label=p.argmax(1).astype(np.int64),
    )


def check_issue_count(where: str, issue_count: Any, filter_by: Any) -> None:
    """ConfigError unless `issue_count` is one of `ISSUE_COUNTS` and, when not cleanlab's default, `filter_by` ranks rows."""
    check_choice(where, issue_count, ISSUE_COUNTS)
    if issue_count != "off_diagonal" and filter_by not in RANKED_FILTERS:
        raise ConfigError(where, issue_count, f"off_diagonal, or set filter_by to one of {list(RANKED_FILTERS)} (the filters that flag a count)")


def count_label_issues(labels: np.ndarray, pred_probs: np.ndarray, issue_count: str) -> int:
    """cleanlab's estimate of the number of label issues; ``"mean"`` averages its two estimators (rounded down)."""
    from cleanlab.count import num_label_issues

    if issue_count != "mean":
        return int(num_label_issues(labels, pred_probs, estimation_method=issue_count))
    both = [num_label_issues(labels, pred_probs, estimation_method=m) for m in ("off_diagonal", "off_diagonal_calibrated")]
    return int(sum(both) // 2)


def lowest_ranked(scores: np.ndarray, count: int) -> np.ndarray:
    """(N,) bool: True on the `count` rows with the lowest scores (ties by row order)."""
    flags = np.zeros(len(scores), dtype=bool)
    flags[np.argsort(scores, kind="stable")[:count]] = True
    return flags


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
        "issue_count": f"estimator of the number of rows the low_* filters flag, one of {list(ISSUE_COUNTS)} (default off_diagonal)",
        "refit_clean": "true trains the proxy (and the text models) again without the rows the first pass flags, and "
        "detects again on those probabilities (default false)",
    }

    def __init__(self, **params: Any):
        super().__init__(**params)
        where = f"scorers[{self.name}].params"
        check_choice(f"{where}.filter_by", params.get("filter_by", "prune_by_noise_rate"), FILTERS)
        check_choice(f"{where}.method", params.get("method", "self_confidence"), QUALITY_METHODS)
        check_issue_count(f"{where}.issue_count", params.get("issue_count", "off_diagonal"), params.get("filter_by", "prune_by_noise_rate"))
        for flag in ("text_features", "refit_clean"):
            if not isinstance(params.get(flag, False), bool):
                raise ConfigError(f"{where}.{flag}", params[flag], "true or false")
        self.text_features = params.get("text_features", False)
        self.refit_clean = params.get("refit_clean", False)
        if check_pred_probs_params(params, where=where, sample="cross_val") is None:
            for flag in ("text_features", "refit_clean"):
                if params.get(flag, False):
                    raise ConfigError(f"{where}.{flag}", True, "false when logits_column / probs_column replaces the proxy")
            self.needs = frozenset({"text", "labels"})

    def fit(self, view) -> None:
        """Run cleanlab on the out-of-sample pred_probs of every labelled, valid row (twice with `refit_clean`)."""
        n = view.n_rows
        self.quality = np.full(n, np.nan)
        self.issue = np.full(n, None, dtype=object)
        self.suggested = np.full(n, None, dtype=object)
        where = f"scorers[{self.name}].params"
        texts = [t for batch in view.batches() for t in batch.texts] if self.text_features else None
        probs = view_pred_probs(view, self.params, where=where, sample="cross_val")
        if self.text_features:
            probs = self.blend_text(view, probs, texts, where)
        rows = scorable_rows(view.labels, probs)
        if rows.size == 0:
            return
        result = self.detect(view.labels[rows], probs[0, rows])
        if self.refit_clean:
            flagged = np.zeros(n, dtype=bool)
            flagged[rows] = result.is_label_issue
            probs = self.refit_without(view, flagged, texts, where)
            result = self.detect(view.labels[rows], probs[0, rows])
        names = view.info.label_names
        self.quality[rows] = result.label_quality
        self.issue[rows] = result.is_label_issue.tolist()
        self.suggested[rows] = [names[i] if names is not None and i < len(names) else int(i) for i in result.suggested_label]
        self.n_issues = int(result.is_label_issue.sum())

    def detect(self, labels: np.ndarray, probs: np.ndarray) -> LabelQuality:
        """`label_quality` with this step's filter, method and issue count."""
        return label_quality(
            labels, probs,
            filter_by=self.params.get("filter_by", "prune_by_noise_rate"),
            method=self.params.get("method", "self_confidence"),
            issue_count=self.params.get("issue_count", "off_diagonal"),
        )

    def blend_text(self, view, probs: np.ndarray, texts: list[str], where: str, train_mask: np.ndarray | None = None) -> np.ndarray:
        """`probs` (1, N, K) with the proxy's rows blended with the TF-IDF models' out-of-sample probabilities.

        The text models use the folds of the proxy `view_pred_probs` fitted (cached on the view) and
        train only on `train_mask` (over the proxy's rows) when it is given."""
        proxy = check_pred_probs_params(self.params, where=where, sample="cross_val", random_state=view.random_state)
        proxy, rows = fit_proxy_on_view(view, proxy)
        text = text_pred_probs([texts[i] for i in rows], view.labels[rows], n_classes=proxy.n_classes_, folds=proxy.folds_,
                               train_mask=train_mask)
        out = probs.copy()
        out[0, rows] = blend_text_pred_probs(probs[0, rows], text)
        return out

    def refit_without(self, view, flagged: np.ndarray, texts: list[str] | None, where: str) -> np.ndarray:
        """(1, N, K) out-of-sample probabilities of a proxy (and text models) trained without the `flagged` rows.

        Same parameters and folds as the first pass, so every row is still scored by models that never saw it."""
        def fresh():
            return check_pred_probs_params(self.params, where=where, sample="cross_val", random_state=view.random_state)

        _, rows = fit_proxy_on_view(view, fresh())  # the first pass's rows (its fit is cached on the view)
        proxy = fresh()  # a new instance: the cached first-pass fit stays as it is
        keep = ~flagged[rows]
        log.info("confident_learning refit_clean: training again without %d flagged rows", int((~keep).sum()))
        proxy.fit(np.asarray(view.embeddings()[rows], dtype=np.float32), view.labels[rows], n_classes=view.n_classes,
                  train_mask=keep)
        out = np.full((1, view.n_rows, proxy.n_classes_), np.nan)
        out[0, rows] = proxy.pred_probs_
        return self.blend_text(view, out, texts, where, train_mask=keep) if self.text_features else out

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
