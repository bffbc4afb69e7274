"""Proxy classifier on frozen embeddings, and the input checks shared by the training-example scorers.

When a labelled dataset comes without a model of its own, EL2N (METHODS.md A1), GraNd (A2),
confident learning (A7) and the classification EU plane (A8) all need predicted probabilities.
`ProxyClassifier` trains a small MLP (or, with ``hidden=0``, a logistic layer) on the cached
sentence embeddings, in torch, for `n_seeds` independent initialisations of `epochs` epochs each:

- ``seed_pred_probs_`` (S, N, K): each seed's model trained on every labelled row and scored on the
  same rows after `epochs` epochs (in-sample, as the Data Diet paper scores EL2N);
- ``pred_probs_`` (N, K): out-of-sample probabilities from stratified `n_folds`-fold
  cross-validation, averaged over the seeds (what confident learning needs).

Everything is deterministic for a fixed `random_state` (seeds derive from it through
`numpy.random.SeedSequence`; data order and initialisation use private generators).

The checks `check_labels`, `check_pred_probs` and `softmax` are shared by every scorer that takes
`labels` / `pred_probs` arrays, so every scorer fails the same way on the same bad input.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from datapruner.errors import ConfigError, InputDataError, NotFittedError
from datapruner.validation import check_choice, check_number, check_positive_int

if TYPE_CHECKING:
    from datapruner.curation.dataset import DatasetView

log = logging.getLogger(__name__)

#: Row sums of `pred_probs` may differ from 1 by at most this much.
SUM_TOLERANCE = 1e-3

#: Parameters every proxy-backed step accepts (merged into each step's `params_doc`).
PROXY_PARAMS_DOC = {
    "hidden": "proxy MLP hidden width; 0 = logistic layer (default 0)",
    "n_seeds": "independently initialised proxy runs S, scores averaged over them (default 5)",
    "epochs": "proxy training epochs E per run (default 10)",
    "n_folds": "cross-validation folds for out-of-sample pred_probs (default 5)",
    "lr": "proxy learning rate, AdamW (default 0.01)",
    "weight_decay": "proxy weight decay, AdamW (default 0.0001)",
    "proxy_batch_size": "proxy mini-batch size (default 64)",
}

#: Parameters of steps that can read the user's own model outputs instead of training a proxy.
COLUMN_PARAMS_DOC = {
    "logits_column": "input column of per-row logits (list of K floats); replaces the proxy",
    "probs_column": "input column of per-row class probabilities (list of K floats, rows sum to 1); replaces the proxy",
}


# ---- input checks ----------------------------------------------------------------------------
def check_labels(labels: Any, *, n_classes: int | None = None, name: str = "labels") -> np.ndarray:
    """Validate class indices; returns them as a (N,) int64 array.

    Parameters
    ----------
    labels : array-like of shape (N,)
        Integer class indices in ``0 .. n_classes - 1``.
    n_classes : int, optional
        Number of classes K (the width of `pred_probs`). Without it, K = max(labels) + 1.
    """
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise InputDataError(f"{name} must be a 1-D array of class indices; given shape {arr.shape}. Pass one integer per row")
    if arr.size == 0:
        raise InputDataError(f"{name} is empty; pass at least two rows")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise InputDataError(
                f"{name} must be integer class indices; given non-integer values (e.g. {arr[arr != np.round(arr)][:1].tolist()}). "
                f"Map each class to an index 0..K-1"
            )
    elif arr.dtype.kind not in "iub":
        raise InputDataError(f"{name} must be integer class indices; given dtype {arr.dtype}. Map each class to an index 0..K-1")
    arr = arr.astype(np.int64)
    k = n_classes if n_classes is not None else int(arr.max()) + 1
    bad = (arr < 0) | (arr >= k)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputDataError(
            f"{name}[{i}] = {int(arr[i])} is out of range; expected class indices in 0..{k - 1} "
            f"(pred_probs has {k} columns). Fix the label or pass pred_probs with one column per class"
        )
    return arr


def check_pred_probs(pred_probs: Any, *, labels: np.ndarray | None = None, name: str = "pred_probs") -> np.ndarray:
    """Validate predicted probabilities; returns them as float64, shape (N, K) or (S, N, K).

    Every row must be finite, in [0, 1], and sum to 1 within `SUM_TOLERANCE`. With `labels`, their
    length must equal N and every label must index a column.
    """
    p = np.asarray(pred_probs, dtype=np.float64)
    if p.ndim not in (2, 3):
        raise InputDataError(
            f"{name} must have shape (N, K) (or (S, N, K) for S runs); given shape {p.shape}. "
            f"Pass one row of K class probabilities per example"
        )
    if p.shape[-1] < 2:
        raise InputDataError(f"{name} has {p.shape[-1]} column; expected K >= 2 classes (one column per class)")
    if not np.all(np.isfinite(p)):
        idx = np.argwhere(~np.isfinite(p))[0].tolist()
        raise InputDataError(f"{name} has a non-finite value (NaN or inf) at index {idx}; expected finite probabilities. Remove or fix that row")
    if p.min() < 0 or p.max() > 1:
        raise InputDataError(
            f"{name} has values outside [0, 1] (min {p.min():.4g}, max {p.max():.4g}); expected probabilities. "
            f"If these are logits, convert them with softmax (or use logits_column)"
        )
    sums = p.sum(-1)
    off = np.abs(sums - 1.0) > SUM_TOLERANCE
    if off.any():
        idx = np.argwhere(off)[0].tolist()
        raise InputDataError(
            f"rows of {name} must sum to 1; row {idx} sums to {float(sums[tuple(idx)]):.6g}. "
            f"Normalise each row (or pass logits through softmax)"
        )
    if labels is not None:
        if len(labels) != p.shape[-2]:
            raise InputDataError(f"labels has {len(labels)} rows but {name} has {p.shape[-2]}; pass one label per row of {name}")
        check_labels(labels, n_classes=p.shape[-1])
    return p


def softmax(logits: Any, *, name: str = "logits") -> np.ndarray:
    """Row-wise softmax of (…, K) logits, numerically stable; rejects NaN/inf with a clear error."""
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim < 2 or z.shape[-1] < 2:
        raise InputDataError(f"{name} must have shape (N, K) with K >= 2; given shape {z.shape}")
    if not np.all(np.isfinite(z)):
        idx = np.argwhere(~np.isfinite(z))[0].tolist()
        raise InputDataError(f"{name} has a non-finite value (NaN or inf) at index {idx}; expected finite logits. Fix or drop that row")
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


# ---- the proxy model -------------------------------------------------------------------------
def seed_for(random_state: int, *keys: int) -> int:
    """A 63-bit torch seed derived from `random_state` and sub-keys (run index, fold index)."""
    return int(np.random.SeedSequence([int(random_state), *map(int, keys)]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def make_proxy_model(n_features: int, n_classes: int, *, hidden: int = 0, random_state: int = 0):
    """A fresh proxy network, initialised from `random_state` without touching torch's global generator.

    Parameters
    ----------
    n_features, n_classes : input and output widths.
    hidden : hidden width of a one-hidden-layer MLP; 0 = a logistic (linear softmax) layer.
    random_state : torch seed of the initialisation (e.g. from `seed_for`).

    Returns
    -------
    torch.nn.Sequential
    """
    import torch
    from torch import nn

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(random_state)
        if hidden and hidden > 0:
            return nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))
        return nn.Sequential(nn.Linear(n_features, n_classes))


def train_proxy_model(model, X, y, *, epochs: int, lr: float, weight_decay: float, batch_size: int, random_state: int):
    """Train `model` in place with AdamW + cross-entropy; returns it (in eval mode).

    Parameters
    ----------
    model : torch.nn.Module mapping (n, d) float32 features to (n, K) logits.
    X : (N, d) features. y : (N,) int class indices.
    epochs : passes over the data (0 leaves the model at its initialisation).
    lr, weight_decay : AdamW settings. batch_size : mini-batch size.
    random_state : torch seed of the data order.
    """
    import torch
    import torch.nn.functional as F

    if epochs <= 0:
        return model
    X = torch.as_tensor(X, dtype=torch.float32)
    y = torch.as_tensor(y, dtype=torch.long)
    gen = torch.Generator().manual_seed(random_state)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    model.train()
    n = len(y)
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(X[idx]), y[idx]).backward()
            opt.step()
    model.eval()
    return model


def predict_proxy_model(model, X) -> np.ndarray:
    """(N, K) float64 softmax probabilities of a proxy network on features `X`."""
    import torch

    with torch.inference_mode():
        return torch.softmax(model(torch.as_tensor(X, dtype=torch.float32)), dim=-1).double().numpy()


class ProxyClassifier:
    """Small MLP (or logistic layer) on frozen embeddings: S seeds x E epochs, K-fold out-of-sample probabilities.

    Parameters
    ----------
    hidden : int, default 0
        Hidden width of a one-hidden-layer MLP; 0 (default) trains a logistic (linear softmax) layer,
        which detected injected label noise best on the SST-2 and Banking77 samples
        (docs/training-scores.md).
    n_seeds : int, default 5
        Independent initialisations S (the Data Diet paper recommends >= 10; 5 is the proxy default).
    epochs : int, default 10
        Training epochs E of every run (EL2N is scored early in training, not at convergence).
    n_folds : int, default 5
        Stratified cross-validation folds for the out-of-sample `pred_probs_`; 0 skips cross-validation.
    lr, weight_decay, batch_size : AdamW learning rate, weight decay and mini-batch size.
    random_state : int, default 0
        Seeds every initialisation, data order and fold split.

    Attributes (after `fit`)
    ------------------------
    n_classes_ : int
    n_features_in_ : int
    models_ : list of S torch modules trained on all rows
    seed_pred_probs_ : (S, N, K) in-sample probabilities of each run after E epochs
    pred_probs_ : (N, K) out-of-sample K-fold probabilities averaged over runs (None when n_folds=0)
    folds_ : (N,) fold index of each row (None when n_folds=0)
    """

    def __init__(
        self,
        *,
        hidden: int = 0,
        n_seeds: int = 5,
        epochs: int = 10,
        n_folds: int = 5,
        lr: float = 1e-2,
        weight_decay: float = 1e-4,
        batch_size: int = 64,
        random_state: int = 0,
    ):
        self.hidden = hidden
        self.n_seeds = n_seeds
        self.epochs = epochs
        self.n_folds = n_folds
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.random_state = random_state

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters, by name (scikit-learn style)."""
        return {k: getattr(self, k) for k in ("hidden", "n_seeds", "epochs", "n_folds", "lr", "weight_decay", "batch_size", "random_state")}

    def check_params(self, *, prefix: str = "proxy.", names: Mapping[str, str] | None = None) -> "ProxyClassifier":
        """Raise a `ConfigError` for the first bad parameter; `fit` calls it first.

        Parameters
        ----------
        prefix : prepended to the parameter name in the error's key.
        names : parameter name -> the name the user wrote (e.g. ``batch_size`` -> ``proxy_batch_size``).
        """
        names = names or {}

        def key(k: str) -> str:
            return f"{prefix}{names.get(k, k)}"

        for k, low in (("hidden", 0), ("n_seeds", 1), ("epochs", 0), ("batch_size", 1), ("n_folds", 0)):
            check_positive_int(key(k), getattr(self, k), minimum=low)
        if self.n_folds == 1:
            raise ConfigError(key("n_folds"), 1, "0 (no cross-validation) or an integer >= 2")
        check_number(key("lr"), self.lr, low=0.0, low_open=True)
        check_number(key("weight_decay"), self.weight_decay, low=0.0)
        rs = int(self.random_state) if isinstance(self.random_state, np.integer) else self.random_state
        check_positive_int(key("random_state"), rs, minimum=0, hint=" (a seed)")
        return self

    def fit(self, embeddings: Any, labels: Any, *, n_classes: int | None = None) -> "ProxyClassifier":
        """Train S runs on all rows (in-sample scores) and S x K fold models (out-of-sample scores).

        Parameters
        ----------
        embeddings : (N, d) float array of frozen features (L2-normalised sentence embeddings).
        labels : (N,) int class indices in 0..K-1.
        n_classes : K; default max(labels) + 1. Classes with no row still get a column.
        """
        self.check_params()
        X = np.asarray(embeddings, dtype=np.float32)
        if X.ndim != 2:
            raise InputDataError(f"embeddings must have shape (N, d); given {X.shape}")
        if not np.all(np.isfinite(X)):
            raise InputDataError("embeddings contain NaN or inf; re-embed the dataset (delete the embedding cache)")
        y = check_labels(labels, n_classes=n_classes)
        if len(y) != len(X):
            raise InputDataError(f"labels has {len(y)} rows but embeddings has {len(X)}; pass one label per embedding row")
        k = int(n_classes) if n_classes is not None else int(y.max()) + 1
        present = np.unique(y)
        if present.size < 2:
            raise InputDataError(
                f"labels contain a single class ({int(present[0])}); a classifier needs at least two classes. "
                f"Check the label column mapping"
            )
        if self.n_folds and len(y) < self.n_folds:
            raise InputDataError(
                f"{len(y)} labelled rows is fewer than n_folds={self.n_folds}; "
                f"lower n_folds (>= 2) or provide at least {self.n_folds} labelled rows"
            )
        fit_kw = dict(epochs=self.epochs, lr=float(self.lr), weight_decay=float(self.weight_decay), batch_size=int(self.batch_size))
        models, seed_probs = [], []
        for s in range(self.n_seeds):
            model = make_proxy_model(X.shape[1], k, hidden=self.hidden, random_state=seed_for(self.random_state, s, 0))
            train_proxy_model(model, X, y, random_state=seed_for(self.random_state, s, 1), **fit_kw)
            models.append(model)
            seed_probs.append(predict_proxy_model(model, X))
        self.models_ = models
        self.seed_pred_probs_ = np.stack(seed_probs)
        self.n_classes_ = k
        self.n_features_in_ = X.shape[1]
        self.pred_probs_ = None
        self.folds_ = None
        if self.n_folds:
            self.folds_ = self._folds(y)
            oof = np.zeros((len(y), k))
            for s in range(self.n_seeds):
                for f in range(self.n_folds):
                    test = self.folds_ == f
                    model = make_proxy_model(X.shape[1], k, hidden=self.hidden, random_state=seed_for(self.random_state, s, 2, f))
                    train_proxy_model(model, X[~test], y[~test], random_state=seed_for(self.random_state, s, 3, f), **fit_kw)
                    oof[test] += predict_proxy_model(model, X[test])
            self.pred_probs_ = oof / self.n_seeds
        return self

    def _folds(self, y: np.ndarray) -> np.ndarray:
        """Stratified fold index per row; classes rarer than n_folds are spread round-robin."""
        rng = np.random.default_rng(seed_for(self.random_state, 9))
        folds = np.empty(len(y), dtype=np.int64)
        offset = 0
        for c in np.unique(y):
            rows = np.flatnonzero(y == c)
            rows = rows[rng.permutation(len(rows))]
            folds[rows] = (np.arange(len(rows)) + offset) % self.n_folds
            offset += len(rows)
        return folds

    def predict_proba(self, embeddings: Any) -> np.ndarray:
        """(N, K) probabilities averaged over the S runs trained on all rows."""
        if not hasattr(self, "models_"):
            raise NotFittedError("ProxyClassifier is not fitted; call fit(embeddings, labels) first")
        X = np.asarray(embeddings, dtype=np.float32)
        return np.mean([predict_proxy_model(m, X) for m in self.models_], axis=0)


# ---- the proxy inside a curation run ---------------------------------------------------------
#: step param name -> ProxyClassifier parameter
_PROXY_KEYS = {"hidden": "hidden", "n_seeds": "n_seeds", "epochs": "epochs", "n_folds": "n_folds", "lr": "lr",
               "weight_decay": "weight_decay", "proxy_batch_size": "batch_size"}
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
        ``"cross_val"`` the out-of-sample K-fold probabilities averaged over runs (S = 1).
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
