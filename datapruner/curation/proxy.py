"""Proxy classifier on frozen embeddings: predicted probabilities for labelled data without a model.

When a labelled dataset comes without a model of its own, EL2N (METHODS.md A1), GraNd (A2),
confident learning (A7) and the classification EU plane (A8) all need predicted probabilities.
`ProxyClassifier` trains a small MLP (or, with ``hidden=0``, a logistic layer) on the cached
sentence embeddings, in torch, for `n_seeds` independent initialisations of `epochs` epochs each:

- ``seed_pred_probs_`` (S, N, K): each seed's model trained on every labelled row and scored on the
  same rows after `epochs` epochs (in-sample, as the Data Diet paper scores EL2N);
- ``pred_probs_`` (N, K): out-of-sample probabilities from stratified `n_folds`-fold
  cross-validation, one model per fold (what confident learning needs; `cv_seeds` > 1 averages
  several independently initialised sets of fold models).

All S + `cv_seeds` x `n_folds` runs train together in one step loop as stacked models
(`datapruner.curation.stacked_training.train_stacked`), each exactly as if it trained alone (its own
initialisation, data order and AdamW updates) up to float rounding.

Everything is deterministic for a fixed `random_state` (seeds derive from it through
`numpy.random.SeedSequence`; data order and initialisation use private generators). How a run's
steps get their probabilities (this proxy or a column of the input) is
`datapruner.curation.step_predictions`.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from datapruner.curation.prediction_checks import check_labels
from datapruner.curation.stacked_training import PRECISIONS, native_bf16, train_stacked
from datapruner.errors import ConfigError, InputDataError, NotFittedError
from datapruner.validation import check_choice, check_number, check_positive_int


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
    """Train one proxy network in place with AdamW + cross-entropy; returns it (in eval mode).

    One model through `datapruner.curation.stacked_training.train_stacked` (the proxy's trainer).

    Parameters
    ----------
    model : a `make_proxy_model` network mapping (n, d) float32 features to (n, K) logits.
    X : (N, d) features. y : (N,) int class indices.
    epochs : passes over the data (0 leaves the model at its initialisation).
    lr, weight_decay : AdamW settings. batch_size : mini-batch size.
    random_state : torch seed of the data order.
    """
    train_stacked([model], X, y, [np.arange(len(y))], [random_state], epochs=epochs, lr=lr, weight_decay=weight_decay, batch_size=batch_size)
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
    cv_seeds : int, default 1
        Independently initialised sets of fold models whose out-of-fold probabilities `pred_probs_`
        averages. 1 (default) trains one model per fold, as cleanlab's cross-validation does; five
        sets barely move confident learning's flags and train 30 runs instead of 10
        (``benchmarks/proxy_cv_seeds.py``, docs/training-scores.md).
    lr, weight_decay, batch_size : AdamW learning rate, weight decay and mini-batch size.
    random_state : int, default 0
        Seeds every initialisation, data order and fold split.
    precision : str, default "auto"
        Precision of the training's matrix products: ``"fp32"``, ``"bf16"`` (bfloat16 products with
        float32 weights, loss and AdamW; see `datapruner.curation.stacked_training.train_stacked`) or
        ``"auto"``: bf16 on a CPU with native bfloat16 (`native_bf16`), else fp32. Time and agreement
        with fp32 are measured by ``benchmarks/proxy_precision.py``.

    Attributes (after `fit`)
    ------------------------
    n_classes_ : int
    n_features_in_ : int
    models_ : list of S torch modules trained on all rows
    seed_pred_probs_ : (S, N, K) in-sample probabilities of each run after E epochs
    pred_probs_ : (N, K) out-of-sample K-fold probabilities, averaged over the `cv_seeds` sets of fold
        models (None when n_folds=0)
    folds_ : (N,) fold index of each row (None when n_folds=0)
    """

    def __init__(
        self,
        *,
        hidden: int = 0,
        n_seeds: int = 5,
        epochs: int = 10,
        n_folds: int = 5,
        cv_seeds: int = 1,
        lr: float = 1e-2,
        weight_decay: float = 1e-4,
        batch_size: int = 64,
        random_state: int = 0,
        precision: str = "auto",
    ):
        self.hidden = hidden
        self.n_seeds = n_seeds
        self.epochs = epochs
        self.n_folds = n_folds
        self.cv_seeds = cv_seeds
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.random_state = random_state
        self.precision = precision

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters, by name (scikit-learn style)."""
        names = ("hidden", "n_seeds", "epochs", "n_folds", "cv_seeds", "lr", "weight_decay", "batch_size", "random_state", "precision")
        return {k: getattr(self, k) for k in names}

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

        for k, low in (("hidden", 0), ("n_seeds", 1), ("epochs", 0), ("batch_size", 1), ("n_folds", 0), ("cv_seeds", 1)):
            check_positive_int(key(k), getattr(self, k), minimum=low)
        if self.n_folds == 1:
            raise ConfigError(key("n_folds"), 1, "0 (no cross-validation) or an integer >= 2")
        check_number(key("lr"), self.lr, low=0.0, low_open=True)
        check_number(key("weight_decay"), self.weight_decay, low=0.0)
        rs = int(self.random_state) if isinstance(self.random_state, np.integer) else self.random_state
        check_positive_int(key("random_state"), rs, minimum=0, hint=" (a seed)")
        check_choice(key("precision"), self.precision, ("auto", *PRECISIONS))
        return self

    def resolved_precision(self) -> str:
        """``"fp32"`` or ``"bf16"``: the `precision` parameter with ``"auto"`` decided for this CPU."""
        if self.precision == "auto":
            return "bf16" if native_bf16() else "fp32"
        return self.precision

    def fit(self, embeddings: Any, labels: Any, *, n_classes: int | None = None, train_mask: Any = None) -> "ProxyClassifier":
        """Train S runs on all rows (in-sample scores) and `cv_seeds` x K fold models (out-of-sample scores).

        Parameters
        ----------
        embeddings : (N, d) float array of frozen features (L2-normalised sentence embeddings).
        labels : (N,) int class indices in 0..K-1.
        n_classes : K; default max(labels) + 1. Classes with no row still get a column.
        train_mask : optional (N,) bool; only these rows are trained on, but every row is still scored
            (out-of-sample by the fold models that did not hold it). The folds do not depend on it.
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
        d = X.shape[1]
        trainable = np.ones(len(y), dtype=bool) if train_mask is None else np.asarray(train_mask, dtype=bool)
        if trainable.shape != y.shape:
            raise InputDataError(f"train_mask has shape {trainable.shape}; pass one bool per label ({len(y)})")
        everything = np.flatnonzero(trainable)
        models = [make_proxy_model(d, k, hidden=self.hidden, random_state=seed_for(self.random_state, s, 0)) for s in range(self.n_seeds)]
        rows = [everything] * self.n_seeds
        order_seeds = [seed_for(self.random_state, s, 1) for s in range(self.n_seeds)]
        self.folds_ = self._folds(y) if self.n_folds else None
        fold_runs = [(s, f) for s in range(self.cv_seeds) for f in range(self.n_folds)]
        for s, f in fold_runs:
            models.append(make_proxy_model(d, k, hidden=self.hidden, random_state=seed_for(self.random_state, s, 2, f)))
            rows.append(np.flatnonzero((self.folds_ != f) & trainable))
            order_seeds.append(seed_for(self.random_state, s, 3, f))
        # every run (S on all rows, cv_seeds x n_folds on the other folds' rows) trains in one stacked loop
        train_stacked(models, X, y, rows, order_seeds, epochs=self.epochs, lr=float(self.lr), weight_decay=float(self.weight_decay),
                      batch_size=int(self.batch_size), precision=self.resolved_precision())
        self.models_ = models[: self.n_seeds]
        self.seed_pred_probs_ = np.stack([predict_proxy_model(m, X) for m in self.models_])
        self.n_classes_ = k
        self.n_features_in_ = d
        self.pred_probs_ = None
        if self.n_folds:
            oof = np.zeros((len(y), k))
            for (s, f), model in zip(fold_runs, models[self.n_seeds :]):
                test = self.folds_ == f
                oof[test] += predict_proxy_model(model, X[test])
            self.pred_probs_ = oof / self.cv_seeds
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


#: Weight of the embedding proxy when `text_pred_probs` are blended in (the rest is split between the
#: word and character TF-IDF models); see `blend_text_pred_probs`.
EMBEDDING_WEIGHT = 0.5


def text_pred_probs(texts: list[str], labels: Any, *, n_classes: int, folds: np.ndarray, C: float = 1.0,
                    train_mask: Any = None) -> np.ndarray:
    """Out-of-sample (N, 2, K) probabilities of two TF-IDF logistic models: word 1-2-grams and character 2-5-grams.

    A second view of the text that the sentence embedding misses (sentiment words, product names);
    its errors are only partly shared with the embedding proxy, so the blend ranks label errors
    better (docs/training-scores.md). scikit-learn, deterministic (lbfgs).

    Parameters
    ----------
    texts : N strings. labels : (N,) int class indices.
    n_classes : K. folds : (N,) fold index of each row (the embedding proxy's `folds_`, so every row
        is scored by models that never saw it). C : inverse L2 strength of the logistic models.
    train_mask : optional (N,) bool; the models train only on these rows (every row is still scored).

    Returns
    -------
    (N, 2, K) float64 probabilities [word, char], rows summing to 1.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    y = check_labels(labels, n_classes=n_classes)
    if len(texts) != len(y):
        raise InputDataError(f"texts has {len(texts)} rows but labels has {len(y)}")
    trainable = np.ones(len(y), dtype=bool) if train_mask is None else np.asarray(train_mask, dtype=bool)
    out = np.zeros((len(y), 2, n_classes))
    vectorizers = (TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2),
                   TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2))
    for v, vectorizer in enumerate(vectorizers):
        X = vectorizer.fit_transform(texts)
        for f in np.unique(folds):
            test = folds == f
            train = ~test & trainable
            if np.unique(y[train]).size < 2:
                out[test, v] = 1.0 / n_classes
                continue
            model = LogisticRegression(C=C, max_iter=300).fit(X[train], y[train])
            out[np.ix_(np.flatnonzero(test), [v], model.classes_)] = model.predict_proba(X[test])[:, None, :]
    out += 1e-6
    return out / out.sum(-1, keepdims=True)


def blend_text_pred_probs(embedding_probs: np.ndarray, text_probs: np.ndarray, *, embedding_weight: float = EMBEDDING_WEIGHT) -> np.ndarray:
    """(N, K) blend: `embedding_weight` x the embedding proxy + the rest split equally over the text models."""
    w = float(embedding_weight)
    return w * embedding_probs + (1.0 - w) * text_probs.mean(1)
