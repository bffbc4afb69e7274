"""A4. Self-supervised prototypicality (Sorscher et al. 2022, "Beyond neural scaling laws").

Spherical k-means on the embeddings; the score of a row is the cosine distance to its nearest
centroid. Far rows are hard (atypical), near rows are easy (prototypical). Sorscher et al. keep hard
examples when data is abundant and easy ones when it is scarce: the `prototypes` policy
(`prefer: hard | easy`, `keep: <fraction>`) or `top_fraction` on `proto_distance` (`direction: high | low`).

Default k: the number of classes when the data has labels, else round(sqrt(N)) capped at 10,000.

When labels exist the step also reports `proto_class_distance`, the cosine distance to the
normalised mean embedding of the row's labelled class (the supervised-prototype variant the paper
compares against). It is an extra diagnostic, not the self-supervised score: rows whose label
disagrees with their neighbours lie far from their class prototype.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from datapruner.curation.clustering import CLUSTER_PARAMS, cluster_options, fit_view_kmeans, save_report_centroids
from datapruner.curation.kmeans import ASSIGN_ROWS, SphericalKMeans, default_n_clusters, normalize_rows
from datapruner.curation.dataset import Batch
from datapruner.errors import InputDataError
from datapruner.curation.steps import ScoreStep, nan_column


def prototypicality_scores(
    embeddings: np.ndarray,
    *,
    n_clusters: int | None = None,
    labels: np.ndarray | None = None,
    random_state: int = 0,
    max_points_per_centroid: int = 256,
    n_iter: int = 20,
    assign_rows: int = ASSIGN_ROWS,
) -> np.ndarray:
    """Cosine distance of each row to its nearest spherical k-means centroid.

    Parameters
    ----------
    embeddings : (N, d) embeddings (renormalised to unit norm); no NaN, no zero rows.
    n_clusters : k; default the number of classes in `labels` when given, else round(sqrt(N)) capped at 10,000.
    labels : (N,) class indices, used only for the default k.
    random_state : seed of the k-means sample and initialisation.
    max_points_per_centroid, n_iter : k-means settings (see `SphericalKMeans`).
    assign_rows : rows assigned to centroids per streamed block.

    Returns
    -------
    (N,) float64 in [0, 2]; higher = farther from the prototype = harder.
    """
    n_classes = None if labels is None else int(np.unique(np.asarray(labels)[np.asarray(labels) >= 0]).size) or None
    k = default_n_clusters(len(embeddings), n_classes=n_classes) if n_clusters is None else n_clusters
    model = SphericalKMeans(k, random_state=random_state, max_points_per_centroid=max_points_per_centroid, n_iter=n_iter)
    model.fit(embeddings)
    return model.assign(embeddings, assign_rows=assign_rows)[1].astype(np.float64)


def class_prototypes(embeddings: np.ndarray, labels: np.ndarray, *, n_classes: int, chunk_rows: int = ASSIGN_ROWS) -> np.ndarray:
    """(n_classes, d) float32 unit-norm mean embedding of each class (NaN rows for classes without rows).

    Streams `embeddings` (array or memmap) `chunk_rows` rows at a time; rows with label -1 are ignored.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (len(embeddings),):
        raise InputDataError(f"labels has shape {labels.shape}; expected ({len(embeddings)},), one per embedding row")
    sums = np.zeros((n_classes, embeddings.shape[1]), dtype=np.float64)
    for s in range(0, len(labels), chunk_rows):
        lab = labels[s : s + chunk_rows]
        idx = np.flatnonzero(lab >= 0)
        if idx.size:
            x = normalize_rows(np.asarray(embeddings[s : s + chunk_rows])[idx], index=s + idx)
            order = np.argsort(lab[idx], kind="stable")
            classes, starts = np.unique(lab[idx][order], return_index=True)
            sums[classes] += np.add.reduceat(x[order], starts, axis=0)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sums / np.where(norms > 0, norms, np.nan)).astype(np.float32)


def class_prototype_distances(embeddings: np.ndarray, labels: np.ndarray, prototypes: np.ndarray) -> np.ndarray:
    """(N,) cosine distance of each row to its own class prototype; NaN where the label is -1.

    Higher = the row looks less like the rest of its labelled class (possible label noise or a hard case).
    """
    labels = np.asarray(labels, dtype=np.int64)
    out = np.full(len(labels), np.nan)
    idx = np.flatnonzero(labels >= 0)
    if idx.size:
        x = normalize_rows(np.asarray(embeddings)[idx])
        out[idx] = 1.0 - np.einsum("ij,ij->i", x, prototypes[labels[idx]])
    return out


class PrototypicalityStep(ScoreStep):
    """Adds `proto_distance` and `proto_cluster` (and `proto_class_distance` when labels exist)."""

    name = "prototypicality"
    needs = frozenset({"embeddings"})
    columns = {
        "proto_distance": "cosine distance to the nearest k-means centroid; higher = harder (less prototypical)",
        "proto_cluster": "index of the nearest centroid (-1 for invalid rows)",
        "proto_class_distance": "cosine distance to the mean embedding of the row's labelled class (labelled data only)",
    }
    params_doc = {**CLUSTER_PARAMS, "n_clusters": "k (default: number of classes when labelled, else round(sqrt(N)) capped at 10,000)"}

    def __init__(self, **params):
        super().__init__(**params)
        self._options, self.assign_rows = cluster_options(self.name, self.params)

    def fit(self, view) -> None:
        """Fit (or reuse) k-means on the valid rows; with labels, the class prototypes too."""
        self.model_, _ = fit_view_kmeans(view, rows=view.valid, n_classes=view.n_classes, **self._options)
        self.prototypes_ = None
        if view.labels is not None and view.n_classes:
            labels = np.where(view.valid, view.labels, -1)
            self.prototypes_ = class_prototypes(view.embeddings(), labels, n_classes=view.n_classes, chunk_rows=self.assign_rows)

    def score_batch(self, batch: Batch) -> dict[str, np.ndarray]:
        """Nearest centroid and cosine distance of each valid row (and the class-prototype distance)."""
        n = len(batch)
        dist, cluster = nan_column(n), np.full(n, -1, dtype=np.int64)
        rows = np.flatnonzero(batch.valid)
        if rows.size:
            lab, d = self.model_.assign_block(batch.embeddings[rows], index=batch.start + rows)
            cluster[rows], dist[rows] = lab, d
        out = {"proto_distance": dist, "proto_cluster": cluster}
        if self.prototypes_ is not None:
            labels = np.where(batch.valid, batch.labels, -1)
            out["proto_class_distance"] = class_prototype_distances(batch.embeddings, labels, self.prototypes_)
        return out

    def write_report(self, out_dir: Path, scores: dict[str, np.ndarray]) -> dict:
        """Save the centroids (reusable through `centroids:`)."""
        if not hasattr(self, "model_"):
            return {}
        return {"n_clusters": self.model_.n_clusters, "centroids": save_report_centroids(self.model_, out_dir, self.name)}
