"""Where a scoring step's predicted probabilities come from in a run: the proxy or a column.

The proxy-backed steps (el2n, grand, confident_learning, eu_quadrants) share the parameters below,
check them when they are built (`check_pred_probs_params`), and get (S, N, K) probabilities from
`view_pred_probs` at fit time: the user's logits/probabilities column, or the `ProxyClassifier`
fitted once per run on the view's labelled rows (`fit_proxy_on_view`, kept in `view.fitted`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from datapruner.curation.prediction_checks import check_pred_probs, softmax
from datapruner.curation.proxy import ProxyClassifier
from datapruner.errors import ConfigError, InputDataError
from datapruner.validation import check_choice

if TYPE_CHECKING:
    from datapruner.curation.dataset import DatasetView

log = logging.getLogger(__name__)

#: Parameters every proxy-backed step accepts (merged into each step's `params_doc`).
PROXY_PARAMS_DOC = {
    "hidden": "proxy MLP hidden width; 0 = logistic layer (default 0)",
    "n_seeds": "independently initialised proxy runs S, scores averaged over them (default 5)",
    "epochs": "proxy training epochs E per run (default 10)",
    "n_folds": "cross-validation folds for out-of-sample pred_probs (default 5)",
    "cv_seeds": "independently initialised sets of fold models averaged for out-of-sample pred_probs (default 1: one model per fold)",
    "lr": "proxy learning rate, AdamW (default 0.01)",
    "weight_decay": "proxy weight decay, AdamW (default 0.0001)",
    "proxy_batch_size": "proxy mini-batch size (default 64)",
    "proxy_precision": "proxy matrix products: 'auto' (default: bf16 on a CPU with native bfloat16, else fp32), 'fp32' or 'bf16'",
}

#: Parameters of steps that can read the user's own model outputs instead of training a proxy.
COLUMN_PARAMS_DOC = {
    "logits_column": "input column of per-row logits (list of K floats); replaces the proxy",
    "probs_column": "input column of per-row class probabilities (list of K floats, rows sum to 1); replaces the proxy",
}



#: step param name -> ProxyClassifier parameter
_PROXY_KEYS = {"hidden": "hidden", "n_seeds": "n_seeds", "epochs": "epochs", "n_folds": "n_folds", "cv_seeds": "cv_seeds", "lr": "lr",
               "weight_decay": "weight_decay", "proxy_batch_size": "batch_size",
               "proxy_precision": "precision"}
PRED_PROBS = ("in_sample", "cross_val")


def proxy_from_params(params: Mapping[str, Any], random_state: int = 0, *, where: str = "proxy", **defaults: Any) -> ProxyClassifier:
    """A checked `ProxyClassifier` from a step's params (keys of `PROXY_PARAMS_DOC`), over step-specific defaults.

    Parameters
    ----------
    params : the step's params; keys that are not proxy parameters are ignored.
    random_state : the run's seed.
    where : the config key of the params (``scorers[el2n].params``), named in errors.
    **defaults : proxy parameters the step sets differently from `ProxyClassifier`'s defaults.

    Raises
    ------
    ConfigError
        Naming ``<where>.<param>`` for the first bad value.
    """
    kwargs = dict(defaults)
    kwargs.update({_PROXY_KEYS[k]: v for k, v in params.items() if k in _PROXY_KEYS})
    proxy = ProxyClassifier(random_state=random_state, **kwargs)
    return proxy.check_params(prefix=f"{where}.", names={v: k for k, v in _PROXY_KEYS.items()})


def fit_proxy_on_view(view: "DatasetView", proxy: ProxyClassifier) -> tuple[ProxyClassifier, np.ndarray]:
    """Fit `proxy` on the view's valid, labelled rows; returns (fitted proxy, the (M,) row indices it saw).

    Several steps of one run (el2n, confident_learning, eu_quadrants) share one fit: it is kept in
    `view.fitted` under the proxy's parameters, so it lives as long as the run and no longer (a
    second run, e.g. a determinism check, trains again).
    """
    if view.labels is None:
        raise InputDataError("the proxy classifier needs labels; map the label column with input.columns.label (--label-column)")
    key = ("proxy", tuple(sorted(proxy.get_params().items())))
    if key in view.fitted:
        return view.fitted[key]
    rows = np.flatnonzero(view.valid & (view.labels >= 0))
    embeddings = np.asarray(view.embeddings()[rows], dtype=np.float32)
    log.info("training proxy: %d rows, %d classes, %s", len(rows), view.n_classes, proxy.get_params())
    proxy.fit(embeddings, view.labels[rows], n_classes=view.n_classes)
    view.fitted[key] = (proxy, rows)
    return proxy, rows


def scorable_rows(labels: np.ndarray | None, pred_probs: np.ndarray) -> np.ndarray:
    """Rows that have a label (when labels are given) and finite predicted probabilities in every run.

    Parameters
    ----------
    labels : (N,) int, -1 where missing; or None.
    pred_probs : (S, N, K) with NaN rows where a row cannot be scored (as `view_pred_probs` returns).

    Returns
    -------
    (M,) int64 row indices, ascending.
    """
    ok = np.all(np.isfinite(pred_probs), axis=(0, 2))
    if labels is not None:
        ok &= np.asarray(labels) >= 0
    return np.flatnonzero(ok)


def pred_probs_from_column(view: "DatasetView", column: str, *, kind: str) -> np.ndarray:
    """Read a per-row list column of logits (`kind="logits"`) or probabilities (`"probs"`) into (N, K).

    Rows with invalid text or a null value come back as NaN rows. Every other row is validated
    (finite; probabilities in [0, 1] summing to 1; one width K for all rows).
    """
    import pyarrow as pa

    if kind not in ("logits", "probs"):
        raise ValueError(f"kind must be 'logits' or 'probs', not {kind!r}")
    names = view.info.schema.names
    if column not in names:
        raise InputDataError(f"input has no column {column!r} ({kind}); columns are {names}")
    blocks: list[list[Any]] = []
    for batch in view.batches():
        col = batch.record_batch.column(column)
        if not (pa.types.is_list(col.type) or pa.types.is_large_list(col.type) or pa.types.is_fixed_size_list(col.type)):
            raise InputDataError(f"column {column!r} has type {col.type}; expected a list of K numbers per row ({kind})")
        blocks.append(col.to_pylist())
    values = [v for block in blocks for v in block]
    widths = {len(v) for i, v in enumerate(values) if v is not None and view.valid[i]}
    if not widths:
        raise InputDataError(f"column {column!r} has no values on valid rows")
    if len(widths) > 1:
        raise InputDataError(f"column {column!r} has rows of different lengths {sorted(widths)}; expected K numbers in every row")
    k = widths.pop()
    out = np.full((len(values), k), np.nan)
    present = np.array([v is not None and all(x is not None for x in v) for v in values]) & view.valid
    if present.any():
        raw = np.array([values[i] for i in np.flatnonzero(present)], dtype=np.float64)
        where = f"column {column!r}"
        out[present] = softmax(raw, name=where) if kind == "logits" else check_pred_probs(raw, name=where)
    if view.n_classes is not None and k != view.n_classes and view.labels is not None and view.labels.max() >= k:
        raise InputDataError(
            f"column {column!r} has {k} values per row but the label column has class index {int(view.labels.max())}; "
            f"expected one value per class"
        )
    return out


def column_source(params: dict[str, Any], where: str) -> tuple[str, str] | None:
    """(column, kind) when a step's params name a logits/probs column, else None (use the proxy)."""
    logits, probs = params.get("logits_column"), params.get("probs_column")
    if logits and probs:
        raise ConfigError(f"{where}.probs_column", probs, "either logits_column or probs_column, not both")
    if logits:
        return str(logits), "logits"
    if probs:
        return str(probs), "probs"
    return None


def check_pred_probs_params(
    params: Mapping[str, Any], *, where: str, sample: str, random_state: int = 0, **defaults: Any
) -> ProxyClassifier | None:
    """Check a step's pred_probs params (source columns, `sample`, proxy settings); steps call it in `__init__`.

    Returns
    -------
    The proxy `view_pred_probs` would train (unfitted), or None when a logits/probs column replaces it.

    Raises
    ------
    ConfigError
        Naming ``<where>.<param>``: both columns given, an unknown `sample`, a bad proxy value, or
        ``n_folds: 0`` where out-of-sample probabilities are needed.
    """
    if column_source(params, where) is not None:
        return None
    check_choice(f"{where}.pred_probs", sample, PRED_PROBS)
    if sample == "cross_val" and "n_folds" not in params:
        defaults.setdefault("n_folds", 5)
    proxy = proxy_from_params(params, random_state, where=where, **defaults)
    if sample == "cross_val" and proxy.n_folds == 0:
        raise ConfigError(f"{where}.n_folds", 0, "an integer >= 2 (out-of-sample pred_probs need cross-validation)")
    return proxy


def view_pred_probs(
    view: "DatasetView", params: dict[str, Any], *, where: str, sample: str, **defaults: Any
) -> np.ndarray:
    """Predicted probabilities of every row for a step, as (S, N, K); rows that cannot be scored are NaN.

    sample : ``"in_sample"`` gives the S proxy runs trained on all rows (S = n_seeds);
        ``"cross_val"`` the out-of-sample K-fold probabilities (averaged over `cv_seeds` sets of fold models; S = 1).
        A logits/probs column named in `params` replaces the proxy (S = 1) for either.
    """
    source = column_source(params, where)
    if source is not None:
        return pred_probs_from_column(view, source[0], kind=source[1])[None]
    proxy = check_pred_probs_params(params, where=where, sample=sample, random_state=view.random_state, **defaults)
    proxy, rows = fit_proxy_on_view(view, proxy)
    k = proxy.n_classes_
    if sample == "in_sample":
        out = np.full((proxy.n_seeds, view.n_rows, k), np.nan)
        out[:, rows] = proxy.seed_pred_probs_
    else:
        out = np.full((1, view.n_rows, k), np.nan)
        out[0, rows] = proxy.pred_probs_
    return out
