"""Memory benchmark (issue 6): peak RSS of a Parquet curation run on 100k and on 1M rows.

The run is made I/O- and engine-bound by serving the embeddings from the library's own on-disk
cache, pre-populated with synthetic vectors:

  prepare (its own subprocess, so its pages never count): write N seeded synthetic short texts
          (id, text) to Parquet, compute the dataset's text fingerprint with `Dataset.ingest()`, and
          write N clustered unit vectors (`clustering_scale.generate`, 1 % near-duplicates) as the
          the dataset's embedding-cache entry (`embedding_cache.store_embeddings`), under a fresh
          temp `DATAPRUNER_CACHE`.
  worker  (a fresh subprocess per size): `datapruner.pipelines.curate.curate` on the Parquet file
          with scorers text_stats, semdedup, prototypicality, density (no LM, no proxy; the embedding
          cache is hit, so MiniLM is never run), selection drop_flagged(semdedup) -> cluster_quota
          (keep 50 %), writing pruned/ + scores.parquet + manifest. Peak RSS = the worker's own
          `ru_maxrss` (VmHWM), plus the anonymous / file-backed split at the end.

k-means uses k = 100 clusters for every scorer at both sizes (fixed, so the ratio measures the
engine's scaling in N, not a growing k; the clustering-at-scale figures with k = sqrt(N) are in
clustering_scale.json).

Run:  .venv/bin/python benchmarks/memory.py [--quick] [--sizes 100000 1000000]
Writes benchmarks/results/memory.json (quick: memory_quick.json, 5k and 20k rows).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

import numpy as np  # noqa: E402

N_CLUSTERS = 100
WORDS = ("data model train prune score cluster token text label embed vector batch query answer noise "
         "signal fast slow small large clean dirty river stone cloud paper green blue red table").split()


def prepare(n: int, work: Path, random_state: int, dim: int = 384) -> dict:
    """Write the N-row Parquet input (reused when a complete one is there) and its cache entry of `dim`-d vectors."""
    import pyarrow.parquet as pq

    from clustering_scale import generate
    from datapruner.curation.dataset import ColumnMap, Dataset
    from datapruner.curation.embedding_cache import store_embeddings
    from datapruner.models.embedder import Embedder

    rng = np.random.default_rng(random_state)
    path = work / "data.parquet"
    if not (path.exists() and pq.ParquetFile(path).metadata.num_rows == n):
        write_texts(path, n, rng)
    info = Dataset(path, format="parquet", columns=ColumnMap(text="text", id="id"), batch_size=65_536).ingest()
    gen: dict = {}
    entry = store_embeddings(Embedder().model_id, info.text_fingerprint,
                             lambda tmp: gen.update(generate(tmp, n, random_state=random_state, dim=dim)), n_rows=n, dim=dim)
    return {"parquet_bytes": path.stat().st_size, "embedding_cache_bytes": entry.path.stat().st_size, "dim": dim, **gen}


def write_texts(path: Path, n: int, rng) -> None:
    """N seeded short texts (id, text) as Parquet, written under a temporary name and renamed when complete."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp = path.with_name(f".{path.name}.tmp")
    writer = None
    words = np.array(WORDS)
    for s in range(0, n, 100_000):
        e = min(n, s + 100_000)
        lens = rng.integers(4, 12, e - s)
        picks = rng.integers(0, len(words), (e - s, 12))
        texts = [f"row {i}: " + " ".join(words[picks[j, : lens[j]]]) for j, i in enumerate(range(s, e))]
        table = pa.table({"id": [f"r{i}" for i in range(s, e)], "text": texts})
        writer = writer or pq.ParquetWriter(tmp, table.schema)
        writer.write_table(table)
    writer.close()
    tmp.replace(path)


def worker(n: int, work: Path, threads: int) -> dict:
    from datapruner.pipelines.curate import curate

    config = {
        "input": {"path": str(work / "data.parquet"), "format": "parquet", "columns": {"text": "text", "id": "id"}, "batch_size": 8192},
        "output": {"dir": str(work / "out"), "plots": False},
        "models": {"embedder": "bundled-minilm", "threads": threads},
        "scorers": [
            {"name": "text_stats"},
            {"name": "semdedup", "params": {"n_clusters": N_CLUSTERS, "eps": 0.01}},
            {"name": "prototypicality", "params": {"n_clusters": N_CLUSTERS}},
            {"name": "density", "params": {"n_clusters": N_CLUSTERS}},
        ],
        "selection": [{"policy": "drop_flagged", "score": "semdedup_duplicate"}, {"policy": "cluster_quota", "keep": 0.5}],
        "random_state": 0,
    }
    t0 = time.perf_counter()
    result = curate(config)
    wall = time.perf_counter() - t0
    return {
        "n_rows": n, "n_kept": int(result.n_kept), "wall_s": wall,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "rss_end": common.rss_split(), "timings_s": result.manifest.get("timings_s"),
        "dropped_by_reason": {str(k): int(v) for k, v in result.dropped_by_reason.items()},
        "embedder_loaded": "sentence_transformers" in sys.modules,
    }


def run_size(n: int, threads: int, random_state: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix=f"dp-memory-{n}-"))
    env = common.thread_env(threads)
    env["DATAPRUNER_CACHE"] = str(tmp / "cache")
    try:
        t0 = time.perf_counter()
        prep = subprocess.run([sys.executable, __file__, "--prepare", str(n), "--work", str(tmp), "--random-state", str(random_state)],
                              env=env, check=True, capture_output=True, text=True)
        prepared = json.loads(prep.stdout.strip().splitlines()[-1])
        prepared["seconds"] = time.perf_counter() - t0
        w = subprocess.run([sys.executable, __file__, "--worker", str(n), "--work", str(tmp), "--threads", str(threads)],
                           env=env, capture_output=True, text=True)
        if w.returncode != 0:
            raise RuntimeError(f"worker for {n} rows failed:\n{w.stderr[-3000:]}")
        out = json.loads(w.stdout.strip().splitlines()[-1])
        out["prepare"] = prepared
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="5k and 20k rows")
    ap.add_argument("--sizes", type=int, nargs="+")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--random-state", type=int, default=0)
    ap.add_argument("--prepare", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--dim", type=int, default=384, help=argparse.SUPPRESS)
    ap.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    threads = common.set_threads(args.threads)
    if args.prepare:
        print(json.dumps(prepare(args.prepare, args.work, args.random_state, args.dim)))
        return
    if args.worker:
        import faiss

        faiss.omp_set_num_threads(threads)
        print(json.dumps(worker(args.worker, args.work, threads)))
        return
    started = common.now()
    sizes = args.sizes or ([5_000, 20_000] if args.quick else [100_000, 1_000_000])
    runs = []
    for n in sizes:
        r = run_size(n, threads, args.random_state)
        runs.append(r)
        print(f"{n} rows: peak RSS {r['peak_rss_bytes'] / 2**20:.0f} MiB, {r['wall_s']:.1f} s", flush=True)
    ratio = runs[-1]["peak_rss_bytes"] / runs[0]["peak_rss_bytes"]
    rows_ratio = sizes[-1] / sizes[0]
    lines = [
        f"Parquet curation (`curate`: text_stats, SemDeDup, prototypicality, DBP with k = {N_CLUSTERS}; drop duplicates, "
        "keep 50 % by cluster quotas; write pruned/ + scores.parquet) on synthetic short texts whose embeddings are "
        f"served from a pre-populated on-disk cache; each size in a fresh subprocess, {threads} thread(s).",
        "",
        "| rows | peak RSS (MiB) | anon RSS at end (MiB) | file-backed RSS at end (MiB) | wall (s) | kept |",
        "|---|---|---|---|---|---|",
    ]
    for r in runs:
        e = r["rss_end"]
        lines.append(f"| {r['n_rows']:,} | {r['peak_rss_bytes'] / 2**20:.0f} | {e.get('RssAnon', 0) / 2**20:.0f} | "
                     f"{e.get('RssFile', 0) / 2**20:.0f} | {r['wall_s']:.1f} | {r['n_kept']:,} |")
    lines += ["", f"Peak RSS ratio {sizes[-1]:,} / {sizes[0]:,} rows: **{ratio:.2f}** for {rows_ratio:.0f}x the rows."]
    payload = {
        "sizes": sizes, "n_clusters": N_CLUSTERS, "runs": runs, "peak_rss_ratio": ratio, "rows_ratio": rows_ratio,
        "readme": common.readme_block("Memory: peak RSS of a Parquet curation run (`benchmarks/memory.py`)", "\n".join(lines)),
    }
    path = common.write_result("memory", payload, quick=args.quick, threads=threads, started=started)
    print(f"ratio {ratio:.2f}; wrote {path}")


if __name__ == "__main__":
    main()
