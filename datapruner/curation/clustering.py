"""The clustering passes of a curation run, shared by prototypicality (A4), density (A5) and SemDeDup (A6).

`fit_view_kmeans` / `cluster_view` fit (or reuse) a `SphericalKMeans` for a run's `DatasetView`
and assign its rows, with the centroids and the assignment shards kept under `view.work_dir`, so
a killed assignment pass resumes where it stopped and a second step with the same settings reuses
the first one's work. `CLUSTER_PARAMS` / `cluster_options` are the parameters every clustering
scorer accepts.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from datapruner.curation.kmeans import ASSIGN_ROWS, SphericalKMeans, check_n_clusters, default_n_clusters, plain_int
from datapruner.errors import ConfigError, InputDataError
from datapruner.paths import atomic_path
from datapruner.progress import progress_bar
from datapruner.validation import check_positive_int

log = logging.getLogger(__name__)

ASSIGN_SHARD_ROWS = 262_144


# ---- resumable passes over a run's embedding cache --------------------------------------------
@dataclass(kw_only=True)
class ViewClustering:
    """A fitted clustering of a run's rows: the model, per-row labels/distances, and its work folder."""

    model: SphericalKMeans
    labels: np.ndarray  # (N,) int64, -1 for rows not clustered
    distances: np.ndarray  # (N,) float32, NaN for rows not clustered
    directory: Path
    rows: np.ndarray  # (N,) bool: rows that were clustered


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def fit_view_kmeans(
    view,
    *,
    rows: np.ndarray,
    n_clusters: int | None = None,
    random_state: int | None = None,
    max_points_per_centroid: int = 256,
    n_iter: int = 20,
    centroids: str | Path | None = None,
    n_classes: int | None = None,
    key: str = "n_clusters",
) -> tuple[SphericalKMeans, Path]:
    """Fit (or reuse) spherical k-means for a run; centroids are kept under `view.work_dir/clusters/<key>`.

    The key covers the embedding cache (model, text fingerprint), the clustered rows and every
    setting, so a rerun or a later step with the same settings loads the centroids instead of refitting.
    `centroids` (a file from `SphericalKMeans.save`) skips fitting altogether.
    """
    rows = np.asarray(rows, dtype=bool)
    n_rows = int(rows.sum())
    if n_rows == 0:
        raise InputDataError("no valid rows to cluster; check the text column")
    random_state = view.random_state if random_state is None else random_state
    if centroids is not None:
        model = SphericalKMeans.load(centroids)
        ident = {"centroids": model.fingerprint()}
    else:
        k = default_n_clusters(n_rows, n_classes=n_classes) if n_clusters is None else check_n_clusters(n_clusters, n_rows, key=key)
        model = SphericalKMeans(k, random_state=random_state, max_points_per_centroid=max_points_per_centroid, n_iter=n_iter)
        ident = {"k": k, "random_state": random_state, "mppc": max_points_per_centroid, "n_iter": n_iter}
    emb = view.embeddings()
    ident.update({
        "text": view.info.text_fingerprint, "embedder": view.embedder.model_id, "shape": list(emb.shape),
        "rows": hashlib.sha256(np.packbits(rows).tobytes()).hexdigest(),
    })
    directory = Path(view.work_dir) / "clusters" / _digest(ident)
    path = directory / "centroids.npz"
    if centroids is None:
        if path.exists():
            model = SphericalKMeans.load(path)
            log.info("reusing centroids from %s", path)
        else:
            model.fit(emb, rows=rows)
            model.save(path)
    else:
        directory.mkdir(parents=True, exist_ok=True)
    return model, directory


def assign_resumable(
    model: SphericalKMeans,
    embeddings: np.ndarray,
    *,
    rows: np.ndarray,
    directory: Path,
    assign_rows: int = ASSIGN_ROWS,
    shard_rows: int = ASSIGN_SHARD_ROWS,
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """`model.assign` in shards of `shard_rows` rows, each written to `directory` when complete.

    A killed pass resumes on rerun: shards already written are read back, not recomputed.
    Returns labels (N,), distances (N,) and {"shards": total, "skipped": read back, "computed": new}.
    """
    n = len(embeddings)
    rows = np.asarray(rows, dtype=bool)
    directory = Path(directory) / f"assign-{model.fingerprint()[:16]}"
    directory.mkdir(parents=True, exist_ok=True)
    labels = np.full(n, -1, dtype=np.int64)
    dist = np.full(n, np.nan, dtype=np.float32)
    stats = {"shards": 0, "skipped": 0, "computed": 0}
    with progress_bar("assigning clusters", total=n) as bar:
        for shard, s in enumerate(range(0, n, shard_rows)):
            e = min(n, s + shard_rows)
            path = directory / f"shard-{shard:05d}.npz"
            stats["shards"] += 1
            if path.exists():
                with np.load(path) as z:
                    labels[s:e], dist[s:e] = z["labels"], z["distances"]
                stats["skipped"] += 1
            else:
                for b in range(s, e, assign_rows):
                    model.assign_range(embeddings, rows, b, min(e, b + assign_rows), labels, dist)
                with atomic_path(path) as tmp:
                    with open(tmp, "wb") as f:
                        np.savez(f, labels=labels[s:e], distances=dist[s:e])
                stats["computed"] += 1
            bar.advance(e - s)
    if stats["skipped"]:
        log.info("assignment: resumed, %d of %d shards already done", stats["skipped"], stats["shards"])
    return labels, dist, stats


def cluster_view(view, *, rows: np.ndarray, assign_rows: int = ASSIGN_ROWS, **fit_options: Any) -> ViewClustering:
    """Fit (or reuse) k-means for a run and assign every row in `rows`, resumably.

    `fit_options` are those of `fit_view_kmeans`; `assign_rows` rows are assigned per block.
    """
    model, directory = fit_view_kmeans(view, rows=rows, **fit_options)
    labels, dist, _ = assign_resumable(model, view.embeddings(), rows=rows, directory=directory, assign_rows=assign_rows)
    return ViewClustering(model=model, labels=labels, distances=dist, directory=directory, rows=np.asarray(rows, dtype=bool))


def cluster_members(labels: np.ndarray, n_clusters: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows grouped by cluster: (order, offsets) with cluster j's rows = order[offsets[j]:offsets[j+1]], ascending.

    Rows with label -1 are left out. Memory: two int64 arrays of N and k+1 entries.
    """
    labels = np.asarray(labels)
    member = np.flatnonzero(labels >= 0)
    order = member[np.argsort(labels[member], kind="stable")]
    counts = np.bincount(labels[member], minlength=n_clusters)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return order, offsets


# ---- parameters shared by the clustering scorers ------------------------------------------------
CLUSTER_PARAMS = {
    "n_clusters": "k of spherical k-means (default: see the scorer; capped at the number of rows)",
    "random_state": "seed of the k-means sample and initialisation (default: the run's random_state)",
    "max_points_per_centroid": "k-means trains on at most this many rows per centroid (default 256)",
    "n_iter": "k-means iterations (default 20)",
    "assign_rows": "rows assigned to centroids per streamed block (default 16384)",
    "centroids": "path of centroids saved by an earlier run (report/<scorer>_centroids.npz) to reuse instead of fitting",
}


def cluster_options(name: str, params: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Validate the shared clustering params of scorer `name` (keys of `CLUSTER_PARAMS`).

    Returns
    -------
    (fit options for `fit_view_kmeans`, assign_rows)
    """
    where = f"scorers[{name}].params"

    def positive(key: str, default: int | None) -> int | None:
        value = params.get(key, default)
        return None if value is None else check_positive_int(f"{where}.{key}", value)

    rs = params.get("random_state")
    if rs is not None:
        rs = check_positive_int(f"{where}.random_state", plain_int(rs), minimum=0, hint=" (a seed)")
    centroids = params.get("centroids")
    if centroids is not None and not isinstance(centroids, (str, Path)):
        raise ConfigError(f"{where}.centroids", centroids, "a path to a centroids .npz file")
    options = {
        "n_clusters": positive("n_clusters", None),
        "random_state": rs,
        "max_points_per_centroid": positive("max_points_per_centroid", 256),
        "n_iter": positive("n_iter", 20),
        "centroids": centroids,
        "key": f"{where}.n_clusters",
    }
    return options, positive("assign_rows", ASSIGN_ROWS)


def save_report_centroids(model: SphericalKMeans, out_dir: Path, name: str) -> str:
    """Write a step's centroids to `<out_dir>/<name>_centroids.npz` (reusable via `centroids:`); returns the file name."""
    path = Path(out_dir) / f"{name}_centroids.npz"
    model.save(path)
    return path.name
