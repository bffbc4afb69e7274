"""Spherical k-means on FAISS, fitted on a sample and assigned in streaming blocks (METHODS.md Part C).

`SphericalKMeans` is scikit-learn style (`n_clusters`, `random_state`, `max_points_per_centroid`,
`n_iter`; learned state `centroids_`). `fit` trains `faiss.Kmeans(d, k, spherical=True, seed=...)`
on a seeded sample of at most `max_points_per_centroid * n_clusters` rows; `assign` streams every
row (from an in-memory array or the float16 embedding-cache memmap) in `assign_rows` blocks and
returns the nearest centroid and the cosine distance to it. `save` / `load` keep the centroids so a
later run can reuse them or assign new data. The passes over a curation run (resumable shards under
the run's work folder) are `datapruner.curation.clustering`.

Distances are cosine distances `1 - <x, c>` between L2-normalised vectors: 0 = on the centroid,
larger = farther (harder, less prototypical).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from datapruner.errors import ConfigError, InputDataError, NotFittedError
from datapruner.paths import atomic_path
from datapruner.progress import progress_bar
from datapruner.validation import check_positive_int

log = logging.getLogger(__name__)

MAX_DEFAULT_CLUSTERS = 10_000
ASSIGN_ROWS = 16_384  # rows assigned to centroids per streamed block
SIM_BUDGET = 1 << 23  # float32 similarities held at once (32 MB)


def default_n_clusters(n_rows: int, *, n_classes: int | None = None) -> int:
    """Default k of METHODS.md A4: the number of classes when labels exist, else round(sqrt(N)) capped at 10,000.

    Parameters
    ----------
    n_rows : number of rows that will be clustered (valid rows).
    n_classes : number of classes when the data is labelled, else None.

    Returns
    -------
    int >= 1, never more than `n_rows` (when `n_rows` >= 1).
    """
    if n_classes is not None and n_classes >= 1:
        k = int(n_classes)
    else:
        k = min(MAX_DEFAULT_CLUSTERS, int(round(math.sqrt(max(n_rows, 0)))))
    return max(1, min(k, max(n_rows, 1)))


def check_n_clusters(n_clusters: Any, n_rows: int, *, key: str = "n_clusters") -> int:
    """Validate k: an integer in [1, n_rows]. The error names the value and the fix."""
    n_clusters = check_positive_int(key, plain_int(n_clusters), hint=" (or leave it unset for the default)")
    if n_clusters > n_rows:
        raise ConfigError(
            key, int(n_clusters),
            f"at most the number of rows to cluster ({n_rows}); lower {key} or leave it unset "
            f"(default: round(sqrt(N)) or the number of classes)",
        )
    return int(n_clusters)


def normalize_rows(x: np.ndarray, *, offset: int = 0, index: np.ndarray | None = None, where: str = "embeddings") -> np.ndarray:
    """Return `x` as float32 with unit-norm rows, rejecting NaN/inf and zero vectors.

    Parameters
    ----------
    x : (n, d) array (any float dtype, e.g. float16 rows of the embedding cache).
    offset : global index of the first row, used in error messages.
    index : (n,) global index of each row, used in error messages instead of `offset` when given.
    where : name of the array in error messages.

    Raises
    ------
    InputDataError naming the first bad row and the fix.
    """
    x = np.array(x, dtype=np.float32, copy=True)
    if x.ndim != 2:
        raise InputDataError(f"{where} must be a 2-D array (rows, dim); got shape {x.shape}")
    finite = np.isfinite(x).all(axis=1)
    if not finite.all():
        bad = _row_name(int(np.flatnonzero(~finite)[0]), offset, index)
        raise InputDataError(
            f"{where} row {bad} contains NaN or inf; recompute the embeddings (delete the embedding cache "
            f"entry) or mark the row invalid (null/empty text)"
        )
    norms = np.linalg.norm(x, axis=1)
    zero = norms <= 1e-6
    if zero.any():
        bad = _row_name(int(np.flatnonzero(zero)[0]), offset, index)
        raise InputDataError(
            f"{where} row {bad} is a zero vector, which has no direction for cosine similarity; "
            f"drop the row, give it non-empty text, or recompute its embedding"
        )
    x /= norms[:, None]
    return x


def plain_int(value: Any) -> Any:
    """numpy integers as Python ints (other values unchanged), so the validators accept both."""
    return int(value) if isinstance(value, np.integer) else value


def _row_name(position: int, offset: int, index: np.ndarray | None) -> int:
    return int(index[position]) if index is not None else position + offset


def _rows_index(rows: np.ndarray | None, n: int) -> np.ndarray:
    """Sorted int64 row indices from None (all rows), a bool mask (n,) or an index array."""
    if rows is None:
        return np.arange(n, dtype=np.int64)
    rows = np.asarray(rows)
    if rows.dtype == bool:
        if rows.shape != (n,):
            raise InputDataError(f"rows mask has shape {rows.shape}; expected ({n},) like the embeddings")
        return np.flatnonzero(rows).astype(np.int64)
    rows = np.unique(rows.astype(np.int64))
    if rows.size and (rows[0] < 0 or rows[-1] >= n):
        raise InputDataError(f"rows index {int(rows[-1] if rows[-1] >= n else rows[0])} is outside 0..{n - 1}")
    return rows


def read_rows(embeddings: np.ndarray, rows: np.ndarray, *, batch_size: int = 65_536) -> np.ndarray:
    """(len(rows), d) float32 unit-norm copy of `embeddings[rows]` (rows sorted), read in chunks."""
    out = np.empty((len(rows), embeddings.shape[1]), dtype=np.float32)
    for s in range(0, len(rows), batch_size):
        idx = rows[s : s + batch_size]
        out[s : s + len(idx)] = normalize_rows(embeddings[idx], index=idx)
    return out


class SphericalKMeans:
    """Spherical k-means (cosine) on FAISS, trained on a seeded sample, assigned in streaming batches.

    Parameters
    ----------
    n_clusters : k, an integer in [1, rows]. `default_n_clusters` gives the METHODS.md default.
    random_state : seed of the training sample and of FAISS's initialisation.
    max_points_per_centroid : the training sample holds at most this many rows per centroid (256).
    n_iter : k-means iterations (FAISS default 20).

    Attributes
    ----------
    centroids_ : (k, d) float32 unit-norm centroids, after `fit` or `load`.
    n_samples_fit_ : rows in the training sample.
    """

    def __init__(self, n_clusters: int, *, random_state: int = 0, max_points_per_centroid: int = 256, n_iter: int = 20):
        self.n_clusters = check_positive_int("n_clusters", plain_int(n_clusters))
        self.max_points_per_centroid = check_positive_int("max_points_per_centroid", plain_int(max_points_per_centroid), hint=" (default 256)")
        self.n_iter = check_positive_int("n_iter", plain_int(n_iter), hint=" (default 20)")
        self.random_state = check_positive_int("random_state", plain_int(random_state), minimum=0, hint=" (a seed)")

    # ---- fitting ---------------------------------------------------------------------------
    def sample_rows(self, rows: np.ndarray) -> np.ndarray:
        """The sorted training sample drawn (seeded) from candidate `rows`."""
        n_sample = min(len(rows), self.n_clusters * self.max_points_per_centroid)
        if n_sample == len(rows):
            return rows
        rng = np.random.default_rng(self.random_state)
        return np.sort(rng.choice(rows, size=n_sample, replace=False))

    def fit(self, embeddings: np.ndarray, *, rows: np.ndarray | None = None) -> "SphericalKMeans":
        """Train on a seeded sample of `embeddings[rows]`.

        Parameters
        ----------
        embeddings : (N, d) array or float16 memmap; rows are renormalised to unit norm in float32.
        rows : bool mask (N,) or indices of the rows to cluster (default: all rows).
        """
        import faiss

        rows = _rows_index(rows, len(embeddings))
        check_n_clusters(self.n_clusters, len(rows))
        sample = self.sample_rows(rows)
        x = read_rows(embeddings, sample)
        km = faiss.Kmeans(
            x.shape[1], self.n_clusters, niter=self.n_iter, spherical=True, seed=self.random_state % (2**31),
            max_points_per_centroid=self.max_points_per_centroid, min_points_per_centroid=1, verbose=False,
        )
        km.train(x)
        c = np.asarray(km.centroids, dtype=np.float32).reshape(self.n_clusters, x.shape[1])
        norms = np.linalg.norm(c, axis=1, keepdims=True)
        self.centroids_ = c / np.where(norms > 0, norms, 1.0)
        self.n_samples_fit_ = int(len(sample))
        log.info("spherical k-means: %d clusters fitted on %d of %d rows", self.n_clusters, len(sample), len(rows))
        return self

    def _check_fitted(self) -> np.ndarray:
        if not hasattr(self, "centroids_"):
            raise NotFittedError("SphericalKMeans is not fitted; call fit(embeddings) or SphericalKMeans.load(path) first")
        return self.centroids_

    # ---- assignment ------------------------------------------------------------------------
    def assign_block(self, x: np.ndarray, *, offset: int = 0, index: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Nearest centroid (int64) and cosine distance (float32) for one (n, d) block of rows.

        `offset` / `index`: global row numbers of the block, for error messages.
        """
        c = self._check_fitted()
        x = normalize_rows(x, offset=offset, index=index)
        if x.shape[1] != c.shape[1]:
            raise InputDataError(f"embeddings have dimension {x.shape[1]}, the centroids {c.shape[1]}; use the same embedder")
        labels = np.empty(len(x), dtype=np.int64)
        best = np.empty(len(x), dtype=np.float32)
        step = max(1, SIM_BUDGET // len(c))  # bound the (rows, k) similarity block
        for s in range(0, len(x), step):
            sims = x[s : s + step] @ c.T
            labels[s : s + step] = np.argmax(sims, axis=1)
            best[s : s + step] = sims[np.arange(len(sims)), labels[s : s + step]]
        return labels, np.clip(1.0 - best, 0.0, 2.0).astype(np.float32)

    def assign(self, embeddings: np.ndarray, *, rows: np.ndarray | None = None, assign_rows: int = ASSIGN_ROWS) -> tuple[np.ndarray, np.ndarray]:
        """Assign every row to its nearest centroid, streaming `assign_rows` rows at a time.

        Returns
        -------
        labels : (N,) int64 cluster index, -1 for rows not in `rows`.
        distances : (N,) float32 cosine distance to the nearest centroid (higher = harder), NaN where label is -1.
        """
        self._check_fitted()
        check_positive_int("assign_rows", assign_rows, hint=" (rows assigned per block)")
        n = len(embeddings)
        keep = np.zeros(n, dtype=bool)
        keep[_rows_index(rows, n)] = True
        labels = np.full(n, -1, dtype=np.int64)
        dist = np.full(n, np.nan, dtype=np.float32)
        with progress_bar("assigning clusters", total=n) as bar:
            for s in range(0, n, assign_rows):
                e = min(n, s + assign_rows)
                self.assign_range(embeddings, keep, s, e, labels, dist)
                bar.advance(e - s)
        return labels, dist

    def assign_range(self, embeddings, keep: np.ndarray, s: int, e: int, labels: np.ndarray, dist: np.ndarray) -> None:
        """Assign rows `s:e` of `embeddings` where `keep` is true, writing into `labels` and `dist` in place."""
        idx = np.flatnonzero(keep[s:e])
        if idx.size:
            lab, d = self.assign_block(np.asarray(embeddings[s:e])[idx], index=s + idx)
            labels[s + idx], dist[s + idx] = lab, d

    # ---- persistence -----------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the centroids and settings to `path` (.npz), atomically."""
        c = self._check_fitted()
        meta = {"n_clusters": self.n_clusters, "random_state": self.random_state,
                "max_points_per_centroid": self.max_points_per_centroid, "n_iter": self.n_iter,
                "n_samples_fit": getattr(self, "n_samples_fit_", None)}
        path = Path(path)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, centroids=c, meta=np.array(json.dumps(meta)))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "SphericalKMeans":
        """Read centroids written by `save`; the result can `assign` new data without refitting."""
        path = Path(path)
        if not path.exists():
            raise InputDataError(f"centroids file {str(path)!r} does not exist; point centroids at a file written by SphericalKMeans.save or a run's report/")
        try:
            with np.load(path, allow_pickle=False) as z:
                c = np.asarray(z["centroids"], dtype=np.float32)
                meta = json.loads(str(z["meta"]))
        except (KeyError, ValueError, OSError) as exc:
            raise InputDataError(f"{str(path)!r} is not a centroids file written by SphericalKMeans.save ({exc})") from None
        model = cls(int(c.shape[0]), random_state=meta.get("random_state", 0),
                    max_points_per_centroid=meta.get("max_points_per_centroid", 256), n_iter=meta.get("n_iter", 20))
        unit = normalize_rows(c, where="centroids")  # rejects NaN / zero rows
        # keep the saved values bit for bit when they are already unit norm, so results reproduce exactly
        model.centroids_ = c if np.allclose(np.linalg.norm(c, axis=1), 1.0, atol=1e-5) else unit
        model.n_samples_fit_ = meta.get("n_samples_fit")
        return model

    def fingerprint(self) -> str:
        """sha256 of the centroids: identifies the clustering that per-row results depend on."""
        return hashlib.sha256(np.ascontiguousarray(self._check_fitted()).tobytes()).hexdigest()
