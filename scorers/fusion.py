"""B5. Fused lexical + dense ranking of units: the features, reciprocal rank fusion, the learned
logistic fusion and the budget-free MMR order (pure functions over arrays).

For one request with units u (each in a passage p(u)) the four rankings are

* ``bm25_unit``: Okapi BM25 of the unit against the query (k1 = 1.5, b = 0.75, IDF over the
  request's units; :class:`datapruner.scorers.bm25.BM25Index`, one tokenisation for query and units);
* ``dense_unit``: ``cos(e_u, q)`` with the bundled MiniLM;
* ``bm25_passage``: BM25 of the unit's passage against the query (IDF over the request's passages);
* ``dense_passage``: ``cos(e_p, q)`` where ``e_p`` is the normalised mean of the passage's unit
  embeddings (derived, so no passage text is embedded a second time).

Every unit inherits its passage's value of the passage features. ``RRF(u) = sum_m w_m / (k + rank_m(u))``
with k = 60 and w_m = 1 (Cormack et al. 2009); ranks start at 1, ties share the best rank. The
learned variant is ``sigmoid(b + sum_m c_m z_m(u))`` over per-request z-normalised features
(:func:`znormalise`), with ``c`` fitted by ``datapruner fit-fusion``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from datapruner.errors import ConfigError

FEATURES = ("bm25_unit", "dense_unit", "bm25_passage", "dense_passage")
RRF_K = 60.0


def competition_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks by decreasing value; equal values share the best rank; NaN ranks last."""
    v = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=-np.inf)
    ranks = np.empty(len(v))
    order = np.argsort(-v, kind="stable")
    sorted_v = v[order]
    first = np.r_[True, sorted_v[1:] != sorted_v[:-1]]
    start = np.maximum.accumulate(np.where(first, np.arange(len(v)), 0))
    ranks[order] = start + 1
    return ranks


def rrf(features: np.ndarray, *, k: float = RRF_K, weights: np.ndarray | None = None) -> np.ndarray:
    """Reciprocal rank fusion of the columns of `features` ((n, m), higher = better per column).

    Returns (n,) float64, higher = better."""
    f = np.asarray(features, dtype=np.float64)
    w = np.ones(f.shape[1]) if weights is None else np.asarray(weights, dtype=np.float64)
    return sum(w[j] / (k + competition_ranks(f[:, j])) for j in range(f.shape[1])) if len(f) else np.zeros(0)


def znormalise(features: np.ndarray) -> np.ndarray:
    """Per-request z-scores of each column (a constant column becomes 0)."""
    f = np.asarray(features, dtype=np.float64)
    if len(f) == 0:
        return f
    sd = f.std(axis=0)
    return (f - f.mean(axis=0)) / np.where(sd > 1e-12, sd, 1.0)


def passage_vectors(unit_embeddings: np.ndarray, passage: np.ndarray, n_passages: int,
                    available: np.ndarray | None = None) -> np.ndarray:
    """(n_passages, d) normalised mean of each passage's (available) unit embeddings; zero rows for
    passages without one."""
    e = np.asarray(unit_embeddings, dtype=np.float64)
    mask = np.ones(len(e), dtype=bool) if available is None else np.asarray(available, dtype=bool)
    out = np.zeros((n_passages, e.shape[1]))
    np.add.at(out, passage[mask], e[mask])
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms > 0, norms, 1.0)


def mmr_order(fused: np.ndarray, unit_embeddings: np.ndarray, *, redundancy: float,
              preselected: np.ndarray | None = None, available: np.ndarray | None = None) -> np.ndarray:
    """Budget-free MMR order: repeatedly take the unit with the best
    ``fused01(u) - redundancy * max_{v taken} cos(e_u, e_v)``, where ``fused01`` is `fused`
    min-max scaled to [0, 1] over the request (so `redundancy` means the same at any scale).

    Units without an embedding (``available`` False, the cascade's unencoded units) have no
    redundancy term and come after every available unit, by fused score. With ``redundancy`` 0
    the order is by fused score (ties: earlier unit first).

    Returns
    -------
    int array of the units not preselected, in the order they are taken.
    """
    f = np.asarray(fused, dtype=np.float64)
    n = len(f)
    pre = np.zeros(n, dtype=bool) if preselected is None else np.asarray(preselected, dtype=bool)
    avail = np.ones(n, dtype=bool) if available is None else np.asarray(available, dtype=bool)
    span = f.max() - f.min() if n else 0.0
    f01 = (f - f.min()) / span if span > 0 else np.zeros(n)
    by_score = [int(i) for i in np.lexsort((np.arange(n), -f01)) if not pre[i]]
    rest = [i for i in by_score if not avail[i]]
    cand = [i for i in by_score if avail[i]]
    if redundancy == 0 or not cand:
        return np.array(cand + rest, dtype=np.int64)
    e = np.asarray(unit_embeddings, dtype=np.float64)
    cand_arr = np.array(cand)
    seen = np.flatnonzero(pre & avail)
    red = (e[cand_arr] @ e[seen].T).max(axis=1) if len(seen) else np.zeros(len(cand_arr))
    alive = np.ones(len(cand_arr), dtype=bool)
    order = []
    for _ in range(len(cand_arr)):
        value = np.where(alive, f01[cand_arr] - redundancy * red, -np.inf)
        j = int(np.argmax(value))  # first maximum: ties go to the better-fused, earlier unit
        alive[j] = False
        order.append(int(cand_arr[j]))
        red = np.maximum(red, e[cand_arr] @ e[cand_arr[j]])
    return np.array(order + rest, dtype=np.int64)


class LearnedFusion:
    """A logistic model over the per-request z-normalised :data:`FEATURES`.

    Attributes
    ----------
    features : the feature names, in column order.
    coef : (m,) coefficients; intercept : float.
    meta : how the weights were fitted (data, split, command, random_state).
    """

    def __init__(self, features, coef, intercept, meta=None):
        self.features = tuple(features)
        self.coef = np.asarray(coef, dtype=np.float64)
        self.intercept = float(intercept)
        self.meta = dict(meta or {})
        if self.features != FEATURES or self.coef.shape != (len(FEATURES),):
            raise ConfigError("fusion weights", list(self.features),
                              f"weights for the features {list(FEATURES)} (refit with `datapruner fit-fusion`)")

    def score(self, features: np.ndarray) -> np.ndarray:
        """(n,) probability that each unit is evidence (higher = keep first)."""
        z = znormalise(features) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    def to_dict(self) -> dict:
        return {"features": list(self.features), "coef": [float(c) for c in self.coef],
                "intercept": self.intercept, "meta": self.meta}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> "LearnedFusion":
        """Read weights written by :meth:`save` (``datapruner fit-fusion``)."""
        path = Path(path)
        try:
            d = json.loads(path.read_text())
            return cls(d["features"], d["coef"], d["intercept"], d.get("meta"))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError("params.weights", str(path),
                              f"a fusion weights JSON written by `datapruner fit-fusion` ({type(exc).__name__}: {exc})") from None


def bundled_weights_path() -> Path:
    """The shipped fusion weights (``datapruner/assets/fusion/fusion_weights.json``)."""
    from importlib.resources import files

    return Path(str(files("datapruner.assets.fusion") / "fusion_weights.json"))


def lexical_features(query: str, texts: list[str], passage: np.ndarray, passages: list[str], *,
                     k1: float = 1.5, b: float = 0.75) -> tuple[np.ndarray, np.ndarray]:
    """(n,) BM25 of each unit (IDF over the units) and (n,) BM25 of each unit's passage (IDF over
    the passages), both against `query` with the same tokenisation."""
    from datapruner.scorers.bm25 import BM25Index

    unit = BM25Index(texts, k1=k1, b=b).scores(query) if texts else np.zeros(0)
    per_passage = BM25Index(passages, k1=k1, b=b).scores(query) if passages else np.zeros(0)
    return unit, per_passage[passage] if len(passage) else np.zeros(0)


def request_features(unit_embeddings: np.ndarray, query_embedding: np.ndarray, passage: np.ndarray,
                     n_passages: int, bm25_unit: np.ndarray, bm25_passage: np.ndarray,
                     available: np.ndarray | None = None) -> np.ndarray:
    """(n, 4) columns :data:`FEATURES` of one request. Units without an embedding (``available``
    False) get the lowest dense value of the request (they rank last on ``dense_unit``)."""
    e = np.asarray(unit_embeddings, dtype=np.float64)
    q = np.asarray(query_embedding, dtype=np.float64)
    avail = np.ones(len(e), dtype=bool) if available is None else np.asarray(available, dtype=bool)
    dense = e @ q
    if (~avail).any():
        dense = np.where(avail, dense, (dense[avail].min() if avail.any() else 0.0) - 1.0)
    pv = passage_vectors(e, passage, n_passages, avail)
    return np.column_stack([bm25_unit, dense, bm25_passage, (pv @ q)[passage]]) if len(e) else np.zeros((0, 4))
