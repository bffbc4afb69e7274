"""Throughput benchmark (issues 6, 13): the curation pipeline against the embedding floor, in ONE run.

For SST-2 and then Banking77 (train texts from ../shared/data or DATAPRUNER_DATA), in one process:

1. Floor: embedding-only throughput of the bundled MiniLM (`Embedder.embed`, the library's batching:
   every text sorted by token length, token-budget batches) on the train texts, model loaded and
   warmed up before timing.
2. Pipeline: `datapruner.pipelines.curate.curate` on the same texts (a Parquet file of id, text,
   label) with an EMPTY embedding cache (`DATAPRUNER_CACHE` points at a fresh temp dir, set before
   anything is imported, so the pipeline embeds everything itself, and the script checks it wrote
   exactly one new cache entry): read, one embedding pass length-sorted over the whole dataset,
   k-means + prototypicality, density-based pruning (k-means + complexity), EL2N proxy (5 runs on
   all rows + 5 fold models, the defaults), confident learning (sharing the proxy), selection
   (drop_label_issues -> cluster_quota 50 %) and write
   (pruned/, scores.parquet, manifest). The embedder is the process-wide one the floor loaded, so
   neither side pays model loading (reported apart).

Reported per dataset: rows/s of each, pipeline / floor (1.0 = the pipeline costs no more than
embedding alone; goal >= 0.9) and the pipeline's stage seconds.

Each dataset runs `--rounds` rounds (default 3) of floor then pipeline back to back, the pipeline's
cache entry deleted after each so every round embeds; the ratio is the median of the rounds' ratios
(one round's ratio moves by several percent with the machine's speed).

Run:  .venv/bin/python benchmarks/throughput.py [--quick] [--rounds 3] [--encoder-backend torch|onnx|onnx-int8]
Writes benchmarks/results/throughput.json (quick: throughput_quick.json, 500 rows per dataset).
"""

from __future__ import annotations

import argparse
import json
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


DATASETS = ("sst2", "banking77")
PIPELINE_SCORERS = [
    {"name": "prototypicality"},
    {"name": "density", "params": {"n_clusters": 20}},
    {"name": "el2n"},
    {"name": "confident_learning"},
]
PIPELINE_SELECTION = [{"policy": "drop_label_issues"}, {"policy": "cluster_quota", "keep": 0.5}]
README_TITLE = "Throughput: curation pipeline against the embedding floor (`benchmarks/throughput.py`)"


def measure(name: str, train, work: Path, threads: int, backend: str, rounds: int) -> dict:
    """Floor then pipeline on one dataset's train texts, `rounds` times (the embedder is loaded and warm before either)."""
    from datapruner.models import Embedder

    n = len(train)
    path = common.write_parquet(work / f"{name}_train.parquet", train.texts, train.labels, train.names)
    t0 = time.perf_counter()
    emb = Embedder(backend=backend)
    emb.embed(train.texts[:32])  # load + warm up (process-wide: the pipeline's embedder is this one)
    load_s = time.perf_counter() - t0
    per_round = []
    for i in range(rounds):
        t0 = time.perf_counter()
        vecs = emb.embed(train.texts)
        floor_s = time.perf_counter() - t0
        assert vecs.shape == (n, emb.dim)
        pipe_s, result = pipeline_round(path, work / f"out-{name}-{i}", threads, backend)
        per_round.append({"floor_s": floor_s, "pipeline_s": pipe_s, "ratio": floor_s / pipe_s,
                          "stage_timings_s": result.manifest.get("timings_s"), "n_kept": result.n_kept})
    floor_s = min(r["floor_s"] for r in per_round)
    fastest = min(per_round, key=lambda r: r["pipeline_s"])
    return {
        "dataset": f"{name} train", "n_rows": n, "loadavg_after": list(os.getloadavg()),
        "floor": {"embed_seconds": floor_s, "rows_per_s": n / floor_s, "model_load_warmup_s": load_s},
        "pipeline": {"seconds": fastest["pipeline_s"], "rows_per_s": n / fastest["pipeline_s"],
                     "stage_timings_s": fastest["stage_timings_s"], "n_kept": fastest["n_kept"]},
        "rounds": per_round,
        "ratio_pipeline_over_floor": float(np.median([r["ratio"] for r in per_round])),
    }


def pipeline_round(path: Path, out: Path, threads: int, backend: str):
    """(seconds, result) of one `curate` run that embeds the dataset itself: its new cache entry is
    checked to be the only one and deleted after, so the next round starts from an empty cache too."""
    from datapruner.paths import cache_dir
    from datapruner.pipelines.curate import curate

    entries = Path(cache_dir()) / "embeddings"
    before = set(entries.rglob("*")) if entries.exists() else set()
    config = {
        "input": {"path": str(path), "format": "parquet", "columns": {"text": "text", "label": "label", "id": "id"}, "batch_size": 512},
        "output": {"dir": str(out), "plots": False},
        "models": {"embedder": "bundled-minilm", "threads": threads, "encoder_backend": backend},
        "scorers": PIPELINE_SCORERS, "selection": PIPELINE_SELECTION, "random_state": 0,
    }
    t0 = time.perf_counter()
    result = curate(config)
    seconds = time.perf_counter() - t0
    new = set(entries.rglob("*")) - before
    assert len([p for p in new if p.suffix == ".f16"]) == 1, "the pipeline must embed the dataset itself, once (a fresh cache entry)"
    for p in sorted(new, key=lambda p: len(p.parts), reverse=True):  # files before their folders
        if p.is_dir():
            p.rmdir()
        else:
            p.unlink()
    return seconds, result


def render(runs: list[dict], threads: int, backend: str, loadavg: list[float], proxy_precision: str) -> str:
    rounds = (len(runs[0].get("rounds", [])) or 1) if runs else 1
    lines = [
        f"One process, {threads} thread(s), encoder backend `{backend}`, proxy precision `{proxy_precision}`, load average "
        f"{loadavg[0]:.1f} at the start. {rounds} round(s) per dataset, each the floor then the pipeline back to back; "
        "the ratio is the median of the rounds' ratios, rows/s and stage seconds from the fastest round. "
        "Floor: `Embedder.embed` over every train text (bundled MiniLM, loaded and warmed up first). Pipeline: `curate` on the same texts with an empty embedding cache (read, one embedding "
        "pass length-sorted over the whole dataset, k-means + prototypicality, DBP, EL2N proxy (defaults: 5 runs on all rows "
        "+ 5 fold models), confident learning, "
        "select, write). Goal: pipeline / floor >= 0.9.",
        "",
        "| dataset | rows | floor (rows/s) | pipeline (rows/s) | pipeline / floor | per round | embed (s) | EL2N proxy (s) | other steps + write (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        t = r["pipeline"]["stage_timings_s"] or {}
        embed, proxy = t.get("embed", 0.0), t.get("score:el2n", 0.0)
        other = r["pipeline"]["seconds"] - embed - proxy
        ratio = r["ratio_pipeline_over_floor"]
        verdict = "met" if ratio >= 0.9 else f"missed by {0.9 - ratio:.2f}"
        per_round = ", ".join(f"{x['ratio']:.2f}" for x in r.get("rounds", [])) or "-"
        lines.append(f"| {r['dataset']} | {r['n_rows']:,} | {r['floor']['rows_per_s']:.0f} | {r['pipeline']['rows_per_s']:.0f} | "
                     f"**{ratio:.2f}** ({verdict}) | {per_round} | "
                     f"{embed:.1f} | {proxy:.1f} | {other:.1f} |")
    lines += ["", "Load average after each dataset: " + ", ".join(f"{r['dataset']} {r['loadavg_after'][0]:.1f}" for r in runs)
              + ". A round's ratio above 1 (the pipeline embeds the same texts and does more) means the machine's "
              "speed changed between the two halves; the spread of the per-round ratios is that noise."]
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="first 500 train rows of each dataset")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=common.positive_int, default=3, help="floor + pipeline rounds per dataset (the ratio is their median)")
    ap.add_argument("--encoder-backend", default="torch", help="models.encoder_backend of floor and pipeline (torch|onnx|onnx-int8)")
    ap.add_argument("--render-only", action="store_true", help="rebuild the README block from the results file; run nothing")
    args = ap.parse_args(argv)
    if args.render_only:
        path = common.RESULTS / ("throughput_quick.json" if args.quick else "throughput.json")
        data = json.loads(path.read_text())
        data["readme"] = common.readme_block(README_TITLE, render(data["runs"], data["threads"], data["encoder_backend"], data["loadavg_start"],
                                                                  data.get("proxy_precision", "fp32")))
        path.write_text(json.dumps(data, indent=1))
        print(f"re-rendered {path}")
        return
    threads = common.set_threads(args.threads)
    started = common.now()
    loadavg = list(os.getloadavg())
    splits = {name: common.load_classification(name)[0] for name in DATASETS}
    import shutil

    runs = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for name, train in splits.items():
                if args.quick:
                    train = train.take(np.arange(500))
                runs.append(measure(name, train, Path(tmp), threads, args.encoder_backend, args.rounds))
                print(f"{name}: ratio {runs[-1]['ratio_pipeline_over_floor']:.3f}", flush=True)
    finally:
        shutil.rmtree(_CACHE, ignore_errors=True)
    from datapruner.curation.proxy import ProxyClassifier

    precision = ProxyClassifier().resolved_precision()
    payload = {
        "runs": runs, "encoder_backend": args.encoder_backend, "loadavg_start": loadavg, "proxy_precision": precision,
        "config": {"scorers": PIPELINE_SCORERS, "selection": PIPELINE_SELECTION},
        "ratio_pipeline_over_floor": {r["dataset"]: r["ratio_pipeline_over_floor"] for r in runs},
        "readme": common.readme_block(README_TITLE, render(runs, threads, args.encoder_backend, loadavg, precision)),
    }
    out = common.write_result("throughput", payload, quick=args.quick, threads=threads, started=started)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
