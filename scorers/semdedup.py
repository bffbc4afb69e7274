"""A6. SemDeDup: semantic deduplication inside k-means clusters (Abbas et al. 2023).

1. Spherical k-means on the embeddings (default k = round(sqrt(N)) capped at 10,000), every row
   assigned in streaming batches.
2. Cluster by cluster, read that cluster's embeddings from the on-disk cache (one cluster in
   memory at a time), order the members by the survivor rule (`hard`: farthest from the centroid
   first, the default; `easy`: nearest first; `random`: seeded shuffle), and compute in chunks
   `M_j = max_{i before j} cos(x_i, x_j)` and the `i` that attains it.
3. Row j is a duplicate when `M_j > 1 - eps` (eps default 0.01). The first member of a duplicate
   group in the order survives, so the survivor rule decides which copy is kept. `M_j` does not
   depend on eps, so the step reports the duplicate counts for several eps values from one pass.

Resume: each finished cluster is written as a shard under the run's work folder `.<out>.work/` (the atomic
rename is the completion marker); a killed pass skips the finished clusters on rerun.

Memory: one cluster's embeddings (float32) plus a chunk of at most 2^23 similarities, plus a few
(N,) arrays. Select with `drop_flagged` on `semdedup_duplicate`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from datapruner.curation.clustering import CLUSTER_PARAMS, cluster_members, cluster_options, cluster_view, save_report_centroids
from datapruner.curation.kmeans import SIM_BUDGET, normalize_rows
from datapruner.curation.dataset import Batch
from datapruner.errors import ConfigError, InputDataError
from datapruner.paths import atomic_path
from datapruner.progress import progress_bar
from datapruner.curation.steps import ScoreStep
from datapruner.validation import check_choice, check_positive_int

log = logging.getLogger(__name__)

SURVIVORS = ("hard", "easy", "random")
DEFAULT_REPORT_EPS = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1)


def check_eps(eps, *, key: str = "eps") -> float:
    """Validate eps in [0, 1): the duplicate threshold is similarity > 1 - eps."""
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating)) or not 0.0 <= float(eps) < 1.0:
        raise ConfigError(key, eps, "a number in [0, 1) (duplicates are pairs with cosine similarity > 1 - eps; default 0.01)")
    return float(eps)


def check_survivor(survivor, *, key: str = "survivor") -> str:
    """Validate the survivor rule: one of `SURVIVORS` (which member of a duplicate group is kept)."""
    return check_choice(key, survivor, SURVIVORS)


def order_cluster_members(distances: np.ndarray, *, survivor: str = "hard", random_state: int | Sequence[int] = 0) -> np.ndarray:
    """Permutation of a cluster's members in dedup order; earlier members survive.

    Parameters
    ----------
    distances : (n,) cosine distance of each member to its centroid.
    survivor : `hard` = farthest first (keeps the hardest copy), `easy` = nearest first, `random`.
    random_state : seed (or seed sequence) of the `random` order.

    Ties are broken by position, so the order is deterministic.
    """
    check_survivor(survivor)
    n = len(distances)
    if survivor == "random":
        return np.random.default_rng(random_state).permutation(n)
    key = -np.asarray(distances, dtype=np.float64) if survivor == "hard" else np.asarray(distances, dtype=np.float64)
    return np.lexsort((np.arange(n), key))


def find_semantic_duplicates(embeddings: np.ndarray, *, chunk_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """For rows in dedup order, the max cosine similarity to any earlier row and which row attains it.

    Parameters
    ----------
    embeddings : (n, d) embeddings of one cluster, already in dedup order (renormalised here).
    chunk_size : rows of the similarity block computed at once (also capped so a block holds at most
        2^23 similarities).

    Returns
    -------
    max_sim : (n,) float64 `M_j = max_{i < j} cos(x_i, x_j)`; NaN for the first row. Higher = more
        redundant; row j is a duplicate at eps when `M_j > 1 - eps`.
    match : (n,) int64 the `i < j` attaining `M_j` (position in the input), -1 for the first row.
    """
    x = normalize_rows(embeddings)
    n = len(x)
    max_sim = np.full(n, np.nan)
    match = np.full(n, -1, dtype=np.int64)
    chunk_size = check_positive_int("chunk_size", int(chunk_size) if isinstance(chunk_size, np.integer) else chunk_size)
    step = max(1, min(int(chunk_size), SIM_BUDGET // max(n, 1)))
    for s in range(1, n, step):
        e = min(n, s + step)
        sims = x[s:e] @ x[:e].T  # (rows s..e-1) x (earlier columns 0..e-1)
        later = np.arange(e)[None, :] >= np.arange(s, e)[:, None]
        sims[later] = -np.inf
        best = np.argmax(sims, axis=1)
        match[s:e] = best
        max_sim[s:e] = sims[np.arange(e - s), best]
    return max_sim, match


def count_duplicates(max_sim: np.ndarray, eps_values: Iterable[float]) -> dict[float, int]:
    """{eps: rows with max_sim > 1 - eps} for each eps, from one pass's `max_sim` (NaN never counts)."""
    m = np.asarray(max_sim, dtype=np.float64)
    m = m[np.isfinite(m)]
    return {float(e): int((m > 1.0 - check_eps(e)).sum()) for e in eps_values}


def semdedup_pass(
    embeddings: np.ndarray,
    labels: np.ndarray,
    distances: np.ndarray,
    *,
    n_clusters: int,
    directory: str | Path,
    survivor: str = "hard",
    random_state: int = 0,
    chunk_size: int = 1024,
    clusters: Iterable[int] | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Run `find_semantic_duplicates` cluster by cluster over an (N, d) array or embedding-cache memmap.

    Only one cluster's embeddings are in memory at a time. Each finished cluster is written to
    `directory/cluster-XXXXX.npz` (atomically: its presence marks completion); clusters already
    written are read back instead of recomputed, so a killed pass resumes.

    Parameters
    ----------
    labels : (N,) cluster of each row, -1 for rows left out.
    distances : (N,) cosine distance of each row to its centroid (orders members for `hard`/`easy`).
    clusters : process only these clusters (a partial pass); default all `n_clusters`.

    Returns
    -------
    max_sim : (N,) float64, NaN for rows left out and for the first member of each cluster.
    match : (N,) int64 global row index of the most similar earlier member, -1 where none.
    stats : {"clusters": processed, "computed": new, "skipped": read back from shards}.
    """
    check_survivor(survivor)
    n = len(labels)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    order, offsets = cluster_members(labels, n_clusters)
    max_sim = np.full(n, np.nan)
    match = np.full(n, -1, dtype=np.int64)
    todo = range(n_clusters) if clusters is None else sorted(set(int(c) for c in clusters))
    stats = {"clusters": 0, "computed": 0, "skipped": 0}
    with progress_bar("semdedup: clusters", total=len(todo)) as bar:
        for j in todo:
            rows = order[offsets[j] : offsets[j + 1]]
            path = directory / f"cluster-{j:05d}.npz"
            stats["clusters"] += 1
            if path.exists():
                with np.load(path) as z:
                    rows_done, m, g = z["rows"], z["max_sim"], z["match"]
                stats["skipped"] += 1
            else:
                perm = order_cluster_members(distances[rows], survivor=survivor, random_state=[random_state, j])
                rows_done = rows[perm]
                m, local = find_semantic_duplicates(np.asarray(embeddings[rows])[perm], chunk_size=chunk_size)
                g = np.where(local >= 0, rows_done[np.maximum(local, 0)], -1)
                with atomic_path(path) as tmp:
                    with open(tmp, "wb") as f:
                        np.savez(f, rows=rows_done, max_sim=m, match=g)
                stats["computed"] += 1
            max_sim[rows_done], match[rows_done] = m, g
            bar.advance()
    if stats["skipped"]:
        log.info("semdedup: resumed, %d of %d clusters already done", stats["skipped"], stats["clusters"])
    return max_sim, match, stats


class SemDeDupStep(ScoreStep):
    """Adds `semdedup_duplicate`, `semdedup_duplicate_of`, `semdedup_max_sim` and `semdedup_cluster`."""

    name = "semdedup"
    needs = frozenset({"embeddings"})
    columns = {
        "semdedup_duplicate": "true when an earlier member of the cluster has cosine similarity > 1 - eps (null for invalid rows)",
        "semdedup_duplicate_of": "id of the most similar earlier member, for duplicates (null otherwise)",
        "semdedup_max_sim": "max cosine similarity to an earlier member of the cluster (NaN for the first member and invalid rows)",
        "semdedup_cluster": "k-means cluster of the row (-1 for invalid rows)",
    }
    params_doc = {
        **CLUSTER_PARAMS,
        "n_clusters": "k (default round(sqrt(N)) capped at 10,000)",
        "eps": "duplicate when cosine similarity > 1 - eps, in [0, 1) (default 0.01)",
        "report_eps": f"eps values whose duplicate counts are reported from the same pass (default {list(DEFAULT_REPORT_EPS)})",
        "survivor": "which member of a duplicate group is kept: 'hard' (farthest from centroid, default), 'easy', 'random'",
        "chunk_size": "rows per similarity block (default 1024)",
    }

    def __init__(self, **params):
        super().__init__(**params)
        where = f"scorers[{self.name}].params"
        self._options, self.assign_rows = cluster_options(self.name, self.params)
        self.eps = check_eps(self.params.get("eps", 0.01), key=f"{where}.eps")
        report = self.params.get("report_eps", list(DEFAULT_REPORT_EPS))
        if not isinstance(report, (list, tuple)):
            raise ConfigError(f"{where}.report_eps", report, "a list of numbers in [0, 1)")
        self.report_eps = sorted({check_eps(e, key=f"{where}.report_eps") for e in [*report, self.eps]})
        self.survivor = check_survivor(self.params.get("survivor", "hard"), key=f"{where}.survivor")
        self.chunk_size = check_positive_int(f"{where}.chunk_size", self.params.get("chunk_size", 1024))

    def fit(self, view) -> None:
        """Cluster the valid rows, then find duplicates cluster by cluster (resumable shards)."""
        result = cluster_view(view, rows=view.valid, assign_rows=self.assign_rows, **self._options)
        rs = view.random_state if self._options["random_state"] is None else self._options["random_state"]
        shards = result.directory / f"semdedup-{result.model.fingerprint()[:16]}-{self.survivor}-{rs}"
        self.model_ = result.model
        self.max_sim_, self.match_, self.stats_ = semdedup_pass(
            view.embeddings(), result.labels, result.distances, n_clusters=result.model.n_clusters,
            directory=shards, survivor=self.survivor, random_state=rs, chunk_size=self.chunk_size,
        )
        self.labels_ = result.labels
        self.duplicate_ = np.nan_to_num(self.max_sim_, nan=-np.inf) > 1.0 - self.eps
        self.ids_ = view.info.ids
        self.work_dir_ = view.work_dir
        self.eps_counts_ = count_duplicates(self.max_sim_, self.report_eps)
        log.info("semdedup: duplicates by eps %s (eps=%s used)", self.eps_counts_, self.eps)

    def score_batch(self, batch: Batch) -> dict[str, np.ndarray]:
        """The batch's slice of the duplicate flags, matches, similarities and clusters."""
        sl = slice(batch.start, batch.start + len(batch))
        valid = np.asarray(batch.valid, dtype=bool)
        dup = self.duplicate_[sl]
        flag = np.array([bool(d) if v else None for d, v in zip(dup, valid)], dtype=object)
        of = np.full(len(batch), None, dtype=object)
        idx = np.flatnonzero(dup & valid)
        if idx.size:
            if self.match_[sl][idx].min() < 0:
                raise InputDataError(f"semdedup: a duplicate without a match (stale SemDeDup shards); delete the run's work folder {self.work_dir_} and rerun")
            of[idx] = self.ids_.take(self.match_[sl][idx]).to_pylist()
        return {
            "semdedup_duplicate": flag,
            "semdedup_duplicate_of": of,
            "semdedup_max_sim": self.max_sim_[sl].copy(),
            "semdedup_cluster": self.labels_[sl].copy(),
        }

    def write_report(self, out_dir: Path, scores: dict[str, np.ndarray]) -> dict:
        """Duplicate counts per eps (CSV) and the centroids."""
        if not hasattr(self, "model_"):
            return {}
        import pyarrow as pa
        import pyarrow.csv as pacsv

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        n_valid = int((self.labels_ >= 0).sum())
        eps = sorted(self.eps_counts_)
        counts = [self.eps_counts_[e] for e in eps]
        pacsv.write_csv(
            pa.table({"eps": eps, "threshold": [1.0 - e for e in eps], "duplicates": counts,
                      "fraction": [c / max(n_valid, 1) for c in counts]}),
            out_dir / "semdedup_eps.csv",
        )
        return {
            "eps": self.eps,
            "survivor": self.survivor,
            "duplicates": int(self.duplicate_.sum()),
            "duplicates_by_eps": {str(e): c for e, c in zip(eps, counts)},
            "table": "semdedup_eps.csv",
            "clusters": dict(self.stats_),
            "centroids": save_report_centroids(self.model_, out_dir, self.name),
        }
