"""A5. Cluster complexity for density-based pruning (Abbas et al. 2024).

Run on deduplicated data: when SemDeDup ran earlier in the same config, the rows it flagged
(`semdedup_duplicate`) are left out of the clustering and of every statistic below.

- spherical k-means into k clusters (default round(sqrt(N)) capped at 10,000; the paper uses
  k = 100 to 500 at web scale);
- `d_intra_j`: mean cosine distance of cluster j's members to its centroid;
- `d_inter_j`: mean of `1 - <c_j, c_l>` over the 20 nearest other centroids;
- `C_j = d_intra_j * d_inter_j`, NaN replaced by the mean of the finite values;
- `p = softmax(C / tau)`, tau default 0.5.

The scorer writes per-row columns; the `cluster_quota` policy turns `p` into exact integer
per-cluster quotas (bounded water-filling) and keeps the hardest rows of each cluster.
`write_report` writes the per-cluster table (size, d_intra, d_inter, complexity, weight, quota,
kept) as CSV and Parquet, and a plot of quota against cluster size.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from datapruner.curation.clustering import CLUSTER_PARAMS, cluster_options, cluster_view, save_report_centroids
from datapruner.curation.dataset import Batch
from datapruner.errors import ConfigError, InputDataError
from datapruner.curation.steps import ScoreStep
from datapruner.validation import check_number, check_positive_int

log = logging.getLogger(__name__)

DEDUP_COLUMN = "semdedup_duplicate"


def cluster_complexity(
    labels: np.ndarray, distances: np.ndarray, centroids: np.ndarray, *, n_neighbors: int = 20
) -> dict[str, np.ndarray]:
    """Per-cluster size, d_intra, d_inter and complexity C = d_intra * d_inter.

    Parameters
    ----------
    labels : (N,) cluster index per row, -1 for rows left out.
    distances : (N,) cosine distance of each row to its centroid.
    centroids : (k, d) unit-norm centroids.
    n_neighbors : d_inter averages over this many nearest other centroids (fewer when k - 1 is smaller).

    Returns
    -------
    dict of (k,) arrays: `size` (int64), `d_intra`, `d_inter`, `complexity` (float64). Higher
    complexity = a more spread-out cluster in a sparser region: it deserves more of the budget.
    `complexity` has NaN (empty cluster, or k = 1) replaced by the mean of the finite values
    (0 when none is finite).
    """
    labels = np.asarray(labels, dtype=np.int64)
    k = len(centroids)
    member = labels >= 0
    size = np.bincount(labels[member], minlength=k)
    total = np.bincount(labels[member], weights=np.asarray(distances, dtype=np.float64)[member], minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        d_intra = np.where(size > 0, total / size, np.nan)
    d_inter = np.full(k, np.nan)
    m = min(int(n_neighbors), k - 1)
    if m >= 1:
        c = np.asarray(centroids, dtype=np.float64)
        for s in range(0, k, 1024):
            dist = 1.0 - c[s : s + 1024] @ c.T
            dist[np.arange(len(dist)), np.arange(s, s + len(dist))] = np.inf  # not its own neighbour
            nearest = np.partition(dist, m - 1, axis=1)[:, :m]
            d_inter[s : s + len(dist)] = nearest.mean(axis=1)
    complexity = d_intra * d_inter
    finite = np.isfinite(complexity)
    complexity = np.where(finite, complexity, complexity[finite].mean() if finite.any() else 0.0)
    return {"size": size, "d_intra": d_intra, "d_inter": d_inter, "complexity": complexity}


def density_weights(complexity: np.ndarray, *, tau: float = 0.5) -> np.ndarray:
    """(k,) cluster probabilities `softmax(C / tau)`; higher complexity = larger share of the budget."""
    tau = check_number("tau", tau, low=0.0, low_open=True, hint=" (default 0.5)")
    z = np.asarray(complexity, dtype=np.float64) / tau
    if not np.isfinite(z).all():
        raise InputDataError("complexity must be finite; replace NaN with the mean first (cluster_complexity does)")
    z = np.exp(z - z.max()) if z.size else z
    return z / z.sum() if z.size else z


class DensityStep(ScoreStep):
    """Adds `dbp_cluster`, `dbp_distance`, `dbp_complexity` and `dbp_weight` for the `cluster_quota` policy."""

    name = "density"
    needs = frozenset({"embeddings"})
    columns = {
        "dbp_cluster": "k-means cluster of the row (-1 for invalid rows and rows SemDeDup flagged)",
        "dbp_distance": "cosine distance to the cluster centroid; higher = harder, kept first",
        "dbp_complexity": "complexity C_j = d_intra_j * d_inter_j of the row's cluster",
        "dbp_weight": "p_j = softmax(C / tau) of the row's cluster: its share of the keep budget before bounds",
    }
    params_doc = {
        **CLUSTER_PARAMS,
        "n_clusters": "k (default round(sqrt(N)) capped at 10,000; the paper uses 100-500 at web scale)",
        "tau": "softmax temperature of the cluster complexities (default 0.5)",
        "n_neighbors": "d_inter averages over this many nearest other centroids (default 20)",
        "exclude": f"boolean column of rows to leave out, e.g. duplicates (default {DEDUP_COLUMN} when present)",
    }

    def __init__(self, **params):
        super().__init__(**params)
        self._options, self.assign_rows = cluster_options(self.name, self.params)
        where = f"scorers[{self.name}].params"
        self.tau = check_number(f"{where}.tau", self.params.get("tau", 0.5), low=0.0, low_open=True, hint=" (default 0.5)")
        self.n_neighbors = check_positive_int(f"{where}.n_neighbors", self.params.get("n_neighbors", 20), hint=" (default 20)")
        exclude = self.params.get("exclude", DEDUP_COLUMN)
        if not isinstance(exclude, str):
            raise ConfigError(f"{where}.exclude", exclude, "the name of a boolean column of an earlier scorer")

    def _excluded(self, view) -> np.ndarray:
        name = self.params.get("exclude", DEDUP_COLUMN)
        if name not in view.scores:
            if "exclude" in self.params:
                raise ConfigError(f"scorers[{self.name}].params.exclude", name, f"a boolean column of an earlier scorer: {sorted(view.scores)}")
            return np.zeros(view.n_rows, dtype=bool)
        flags = np.asarray(view.scores[name])
        return np.array([bool(v) for v in flags]) if flags.dtype == object else flags.astype(bool)

    def fit(self, view) -> None:
        """Cluster the valid, non-excluded rows and compute the per-cluster complexity and weight."""
        excluded = self._excluded(view)
        rows = view.valid & ~excluded
        if excluded.any():
            log.info("density: leaving out %d rows flagged by %s", int((view.valid & excluded).sum()), self.params.get("exclude", DEDUP_COLUMN))
        result = cluster_view(view, rows=rows, assign_rows=self.assign_rows, **self._options)
        self.model_ = result.model
        # int32 / float32 (exact: k < 2**31, the distances are float32) while the run lasts; float64 out
        self.labels_, self.distances_ = result.labels.astype(np.int32), result.distances
        del result
        self.stats_ = cluster_complexity(self.labels_, self.distances_, self.model_.centroids_, n_neighbors=self.n_neighbors)
        self.stats_["weight"] = density_weights(self.stats_["complexity"], tau=self.tau)

    def score_batch(self, batch: Batch) -> dict[str, np.ndarray]:
        """The batch's slice of the per-row cluster, distance, complexity and weight."""
        sl = slice(batch.start, batch.start + len(batch))
        lab = self.labels_[sl]
        member = lab >= 0
        safe = np.where(member, lab, 0)
        return {
            "dbp_cluster": lab.astype(np.int64),
            "dbp_distance": self.distances_[sl].astype(np.float64),
            "dbp_complexity": np.where(member, self.stats_["complexity"][safe], np.nan),
            "dbp_weight": np.where(member, self.stats_["weight"][safe], np.nan),
        }

    def cluster_table(self, scores: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """Per-cluster columns: cluster, size, d_intra, d_inter, complexity, weight, and, when the
        `cluster_quota` policy ran on `dbp_cluster`, candidates, quota and kept."""
        k = self.model_.n_clusters
        table = {"cluster": np.arange(k), **{n: self.stats_[n] for n in ("size", "d_intra", "d_inter", "complexity", "weight")}}
        if scores and "cluster_quota" in scores and "cluster_rank" in scores:
            quota_rows, rank = np.asarray(scores["cluster_quota"]), np.asarray(scores["cluster_rank"])
            lab = np.asarray(scores["dbp_cluster"] if "dbp_cluster" in scores else self.labels_, dtype=np.int64)
            cand = (rank >= 0) & (lab >= 0)
            table["candidates"] = np.bincount(lab[cand], minlength=k)
            quota = np.zeros(k, dtype=np.int64)
            quota[lab[cand]] = quota_rows[cand]
            table["quota"] = quota
            table["kept"] = np.bincount(lab[cand & (rank < quota_rows)], minlength=k)
        return table

    def write_report(self, out_dir: Path, scores: dict[str, np.ndarray]) -> dict:
        """The per-cluster table (Parquet, CSV), the quota plot and the centroids."""
        if not hasattr(self, "model_"):
            return {}
        import pyarrow as pa
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        table = self.cluster_table(scores)
        arrow = pa.table(table)
        pq.write_table(arrow, out_dir / "density_clusters.parquet")
        pacsv.write_csv(arrow, out_dir / "density_clusters.csv")
        if self.draw_plots:
            self._plot_quotas(table, out_dir)
        entry = {
            "n_clusters": self.model_.n_clusters,
            "table": "density_clusters.parquet",
            "plot": "density_quota_vs_size.png" if self.draw_plots else None,
            "centroids": save_report_centroids(self.model_, out_dir, self.name),
        }
        if "quota" in table:
            entry["kept"] = int(table["kept"].sum())
        return entry

    def _plot_quotas(self, table: dict, out_dir: Path) -> None:
        """`density_quota_vs_size.png`: each cluster's quota (or weight) against its size."""
        from datapruner.curation.report import pyplot

        plt = pyplot()
        fig, ax = plt.subplots(figsize=(6, 4))
        y = table.get("quota", table["weight"])
        points = ax.scatter(table["size"], y, c=table["complexity"], cmap="viridis", s=18)
        ax.plot([0, table["size"].max()], [0, table["size"].max()], color="grey", lw=0.8, ls="--", label="quota = size")
        fig.colorbar(points, ax=ax, label="complexity C_j")
        ax.set_xlabel("cluster size |C_j|")
        ax.set_ylabel("quota x_j (rows kept)" if "quota" in table else "weight p_j")
        if "quota" not in table:
            ax.lines[0].remove()
        else:
            ax.legend()
        ax.set_title(f"density-based pruning: {len(table['cluster'])} clusters, tau={self.tau}")
        fig.tight_layout()
        fig.savefig(out_dir / "density_quota_vs_size.png", dpi=90)
        plt.close(fig)
