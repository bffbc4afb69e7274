"""Throughput benchmark (issue 6): the curation pipeline against the embedding floor, in ONE run.

1. Floor: embedding-only throughput of the bundled MiniLM (`Embedder.embed`, the library's batching)
   on the SST-2 train texts, model loaded and warmed up before timing.
2. Pipeline: `datapruner.pipelines.curate.curate` on the same texts (a Parquet file of id, text,
   label) with an EMPTY embedding cache (`DATAPRUNER_CACHE` points at a fresh temp dir, set before
   anything is imported, so the pipeline embeds everything itself): read, embed, k-means +
   prototypicality, density-based pruning (k-means + complexity), EL2N proxy, confident learning,
   selection (drop_label_issues -> cluster_quota 50 %) and write (pruned/, scores.parquet, manifest).
   Model-loading time is part of the pipeline wall time (a user pays it); it is also reported.

Reported: rows/s of each, and pipeline rows/s / floor rows/s (1.0 = the pipeline costs no more than
embedding alone).

Run:  .venv/bin/python benchmarks/throughput.py [--quick]
Writes benchmarks/results/throughput.json (quick: throughput_quick.json, 500 rows).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

_CACHE = tempfile.mkdtemp(prefix="dp-throughput-cache-")
os.environ["DATAPRUNER_CACHE"] = _CACHE  # before datapruner is imported: a fresh, empty cache

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

import numpy as np  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="first 500 SST-2 train rows")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    threads = common.set_threads(args.threads)
    started = common.now()
    train, _ = common.load_classification("sst2")
    if args.quick:
        train = train.take(np.arange(500))
    n = len(train)
    import shutil

    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            path = common.write_parquet(work / "sst2_train.parquet", train.texts, train.labels, train.names)
            # 1) floor
            from datapruner.models import Embedder

            t0 = time.perf_counter()
            emb = Embedder()
            emb.embed(train.texts[:32])  # load + warm up
            load_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            vecs = emb.embed(train.texts)
            floor_s = time.perf_counter() - t0
            assert vecs.shape == (n, emb.dim)
            # 2) pipeline (fresh cache: nothing embedded yet under DATAPRUNER_CACHE)
            from datapruner.paths import cache_dir
            from datapruner.pipelines.curate import curate

            assert str(cache_dir()) == _CACHE and not (Path(_CACHE) / "embeddings").exists()
            config = {
                "input": {"path": str(path), "format": "parquet", "columns": {"text": "text", "label": "label", "id": "id"}, "batch_size": 512},
                "output": {"dir": str(work / "out"), "plots": False},
                "models": {"embedder": "bundled-minilm", "threads": threads},
                "scorers": [
                    {"name": "prototypicality"},
                    {"name": "density", "params": {"n_clusters": 20}},
                    {"name": "el2n"},
                    {"name": "confident_learning"},
                ],
                "selection": [{"policy": "drop_label_issues"}, {"policy": "cluster_quota", "keep": 0.5}],
                "random_state": 0,
            }
            t0 = time.perf_counter()
            result = curate(config)
            pipe_s = time.perf_counter() - t0
            manifest = result.manifest
            stage_timings = manifest.get("timings") or manifest.get("timings_s")
            n_kept = getattr(result, "n_kept", None)
    finally:
        shutil.rmtree(_CACHE, ignore_errors=True)
    floor_rps, pipe_rps = n / floor_s, n / pipe_s
    ratio = pipe_rps / floor_rps
    md = (
        f"SST-2 train, {n} rows, {threads} thread(s), one run. Embedding only (bundled MiniLM, model "
        f"loaded first): **{floor_rps:.0f} rows/s**. Full curation through `curate` (fresh embedding cache; "
        "read, embed, k-means + prototypicality, DBP, EL2N proxy, confident learning, select, write; "
        f"model loading included): **{pipe_rps:.0f} rows/s**. Pipeline / floor = **{ratio:.2f}**.\n\n"
        "| stage | seconds |\n|---|---|\n"
        f"| embedder load + warm-up (floor) | {load_s:.1f} |\n| embed only (floor) | {floor_s:.1f} |\n| full pipeline | {pipe_s:.1f} |\n"
        + "".join(f"| pipeline: {k} | {v:.1f} |\n" for k, v in (stage_timings or {}).items() if isinstance(v, (int, float)))
    )
    payload = {
        "dataset": "sst2 train", "n_rows": n,
        "floor": {"embed_seconds": floor_s, "rows_per_s": floor_rps, "model_load_warmup_s": load_s},
        "pipeline": {"seconds": pipe_s, "rows_per_s": pipe_rps, "stage_timings_s": stage_timings, "n_kept": n_kept,
                     "config": {"scorers": config["scorers"], "selection": config["selection"]}},
        "ratio_pipeline_over_floor": ratio,
        "readme": common.readme_block("Throughput: curation pipeline against the embedding floor (`benchmarks/throughput.py`)", md),
    }
    out = common.write_result("throughput", payload, quick=args.quick, threads=threads, started=started)
    print(f"floor {floor_rps:.1f} rows/s, pipeline {pipe_rps:.1f} rows/s, ratio {ratio:.3f}; wrote {out}")


if __name__ == "__main__":
    main()
