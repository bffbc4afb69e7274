"""Scale benchmark of the clustering family (METHODS.md A4, A5, A6, Part C) at bounded memory.

Synthetic data: N seeded, clustered, L2-normalised 384-d vectors (plus 1 % seeded near-duplicates)
written as a float16 memmap, exactly like the embedding cache. Each size runs in a fresh
subprocess through the library's own code paths:

  fit        SphericalKMeans (k = round(sqrt(N)) capped at 10,000) on a <= 256-per-centroid sample
  assign     streaming assignment from the memmap, in resumable shards (= prototypicality scores)
  proto      the `prototypes` policy (keep the hard 70 %)
  dbp        cluster complexity, softmax weights and the `cluster_quota` policy (keep 50 %)
  semdedup   cluster-by-cluster SemDeDup from the memmap (eps 0.01), with resumable shards

Reported per size: wall time per stage, peak RSS of the worker (its own ru_maxrss, and the
parent's RUSAGE_CHILDREN reading), the file-backed / anonymous split of RSS at the end, and the
recall of the seeded duplicates. The data generation runs in its own subprocess, so its pages do
not count against the worker.

Usage:
  .venv/bin/python benchmarks/clustering_scale.py            # 100k and 1M (several minutes)
  .venv/bin/python benchmarks/clustering_scale.py --quick    # 20k and 50k (under a minute)
Writes benchmarks/results/clustering_scale.json (or *_quick.json) and a PNG beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import rss_split  # noqa: E402

DIM = 384
DUP_FRACTION = 0.01
RESULTS = Path(__file__).parent / "results"


def _thread_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    env["DATAPRUNER_PROGRESS"] = "0"
    return env


def generate(path: Path, n: int, *, random_state: int, chunk: int = 65_536, dim: int = DIM) -> dict:
    """Write (n, dim) float16 clustered unit vectors to `path`; the last 1 % rows are near-copies of earlier rows."""
    rng = np.random.default_rng(random_state)
    n_centers = max(2, int(round(np.sqrt(n))))
    centers = rng.standard_normal((n_centers, dim)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    spread = rng.uniform(0.6, 1.4, n_centers).astype(np.float32)  # clusters of different density
    n_dup = int(n * DUP_FRACTION)
    n_base = n - n_dup
    out = np.memmap(path, dtype=np.float16, mode="w+", shape=(n, dim))
    for s in range(0, n_base, chunk):
        e = min(n_base, s + chunk)
        c = rng.integers(0, n_centers, e - s)
        x = centers[c] + rng.standard_normal((e - s, dim)).astype(np.float32) * (0.06 * spread[c])[:, None]
        out[s:e] = x / np.linalg.norm(x, axis=1, keepdims=True)
    sources = np.sort(rng.choice(n_base, n_dup, replace=False))
    for s in range(0, n_dup, chunk):
        src = sources[s : s + chunk]
        x = np.asarray(out[src], dtype=np.float32) + rng.standard_normal((len(src), dim)).astype(np.float32) * 0.002
        out[n_base + s : n_base + s + len(src)] = x / np.linalg.norm(x, axis=1, keepdims=True)
    out.flush()
    np.save(path.with_suffix(".sources.npy"), sources)
    return {"n_base": n_base, "n_dup": n_dup, "n_true_centers": n_centers}


def worker(path: Path, n: int, *, work: Path, threads: int, random_state: int) -> dict:
    """Run every stage on the memmap at `path`; returns timings and memory figures."""
    import faiss

    from datapruner.curation.clustering import assign_resumable
    from datapruner.curation.kmeans import SphericalKMeans, default_n_clusters
    from datapruner.scorers.density import cluster_complexity, density_weights
    from datapruner.scorers.semdedup import count_duplicates, semdedup_pass
    from datapruner.selection.quotas import ClusterQuota, Prototypes

    faiss.omp_set_num_threads(threads)
    emb = np.memmap(path, dtype=np.float16, mode="r", shape=(n, DIM))
    times: dict[str, float] = {}
    rows = np.ones(n, dtype=bool)
    k = default_n_clusters(n)

    t = time.perf_counter()
    model = SphericalKMeans(k, random_state=random_state).fit(emb, rows=rows)
    times["fit"] = time.perf_counter() - t

    t = time.perf_counter()
    labels, dist, _ = assign_resumable(model, emb, rows=rows, directory=work)
    times["assign"] = time.perf_counter() - t

    t = time.perf_counter()
    proto_keep = Prototypes(keep=0.7, prefer="hard").select({"proto_distance": dist.astype(np.float64)}, rows.copy())
    times["proto"] = time.perf_counter() - t

    t = time.perf_counter()
    stats = cluster_complexity(labels, dist, model.centroids_)
    weight = density_weights(stats["complexity"], tau=0.5)
    scores = {"dbp_cluster": labels.astype(np.float64), "dbp_distance": dist.astype(np.float64), "dbp_weight": weight[labels]}
    dbp_keep = ClusterQuota(keep=0.5).select(scores, rows.copy())
    times["dbp"] = time.perf_counter() - t

    t = time.perf_counter()
    max_sim, match, sd_stats = semdedup_pass(emb, labels, dist, n_clusters=k, directory=work / "semdedup")
    times["semdedup"] = time.perf_counter() - t

    sources = np.load(path.with_suffix(".sources.npy"))
    copies = np.arange(n - len(sources), n)
    flagged = np.nan_to_num(max_sim, nan=-1.0) > 0.99
    # a seeded pair is found when one copy is flagged as a duplicate of the other (the survivor rule picks which)
    found = (flagged[copies] & (match[copies] == sources)) | (flagged[sources] & (match[sources] == copies))
    in_pair = np.zeros(n, dtype=bool)
    in_pair[copies[found]] = in_pair[sources[found]] = True
    return {
        "n_rows": n,
        "n_clusters": k,
        "n_samples_fit": model.n_samples_fit_,
        "times_s": {key: round(v, 2) for key, v in times.items()},
        "total_s": round(sum(times.values()), 2),
        "peak_rss_self_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "rss_end": rss_split(),
        "embedding_file_bytes": n * DIM * 2,
        "proto_kept": int(proto_keep.sum()),
        "dbp_kept": int(dbp_keep.sum()),
        "semdedup": {"flagged_eps_0.01": int(flagged.sum()), "seeded_near_duplicates": int(len(sources)),
                     "recall_seeded_pairs": round(float(found.mean()), 4),
                     "precision": round(float((flagged & in_pair).sum() / max(int(flagged.sum()), 1)), 4),
                     "by_eps": {str(e): c for e, c in count_duplicates(max_sim, [0.001, 0.01, 0.05]).items()},
                     "clusters": sd_stats},
    }


def run_size(n: int, *, threads: int, random_state: int, scratch: Path) -> dict:
    folder = scratch / f"n{n}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "embeddings.f16"
    env = _thread_env(threads)
    t = time.perf_counter()
    gen = subprocess.run([sys.executable, __file__, "--generate", str(n), "--path", str(path), "--random-state", str(random_state)],
                         env=env, check=True, capture_output=True, text=True)
    gen_s = time.perf_counter() - t
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--worker", str(n), "--path", str(path), "--work", str(folder / "work"),
                           "--threads", str(threads), "--random-state", str(random_state)], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"worker for n={n} failed:\n{proc.stderr[-4000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["generate"] = {**json.loads(gen.stdout.strip().splitlines()[-1]), "seconds": round(gen_s, 2)}
    result["worker_wall_s"] = round(wall, 2)
    # max RSS over the children waited for so far (sizes run in ascending order)
    result["peak_rss_children_bytes"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    shutil.rmtree(folder, ignore_errors=True)
    return result


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = list(results[0]["times_s"])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    labels = [f"{r['n_rows']:,}" for r in results]
    bottom = np.zeros(len(results))
    for stage in stages:
        vals = np.array([r["times_s"][stage] for r in results])
        ax1.bar(labels, vals, bottom=bottom, label=stage)
        bottom += vals
    ax1.set_ylabel("wall time (s)")
    ax1.set_xlabel("rows")
    ax1.legend()
    ax1.set_title("time per stage")
    gb = 1024**3
    peak = [r["peak_rss_self_bytes"] / gb for r in results]
    emb = [r["embedding_file_bytes"] / gb for r in results]
    x = np.arange(len(results))
    ax2.bar(x - 0.2, peak, 0.4, label="peak RSS")
    ax2.bar(x + 0.2, emb, 0.4, label="embedding memmap size")
    ax2.axhline(2.5, color="red", ls="--", lw=1, label="2.5 GB limit")
    ax2.set_xticks(x, labels)
    ax2.set_ylabel("GB")
    ax2.set_xlabel("rows")
    ax2.legend()
    ax2.set_title("memory")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="20k and 50k rows (under a minute)")
    ap.add_argument("--sizes", type=int, nargs="+", help="row counts (default 100000 1000000)")
    ap.add_argument("--threads", type=int, default=1, help="BLAS/FAISS threads (default 1)")
    ap.add_argument("--random-state", type=int, default=0)
    ap.add_argument("--scratch", type=Path, help="folder for the memmaps (default a temp dir)")
    ap.add_argument("--out", type=Path, help="result JSON (default benchmarks/results/clustering_scale[_quick].json)")
    ap.add_argument("--generate", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.generate:
        print(json.dumps(generate(args.path, args.generate, random_state=args.random_state)))
        return 0
    if args.worker:
        print(json.dumps(worker(args.path, args.worker, work=args.work, threads=args.threads, random_state=args.random_state)))
        return 0

    sizes = args.sizes or ([20_000, 50_000] if args.quick else [100_000, 1_000_000])
    out = args.out or RESULTS / ("clustering_scale_quick.json" if args.quick else "clustering_scale.json")
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="dp-clustering-scale-"))
    results = []
    for n in sorted(sizes):
        r = run_size(n, threads=args.threads, random_state=args.random_state, scratch=scratch)
        print(f"n={n:>9,}  total {r['total_s']:7.1f}s  {r['times_s']}  peak RSS {r['peak_rss_self_bytes'] / 1024**3:.2f} GB", flush=True)
        results.append(r)
    if args.scratch is None:
        shutil.rmtree(scratch, ignore_errors=True)
    report = {
        "benchmark": "clustering_scale",
        "command": " ".join(["python", "benchmarks/clustering_scale.py", *(argv if argv is not None else sys.argv[1:])]),
        "threads": args.threads,
        "dim": DIM,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "limit_peak_rss_bytes": int(2.5 * 1024**3),
        "results": results,
        "peak_rss_within_limit": all(r["peak_rss_self_bytes"] < 2.5 * 1024**3 for r in results),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    plot(results, out.with_suffix(".png"))
    print(f"wrote {out} and {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
