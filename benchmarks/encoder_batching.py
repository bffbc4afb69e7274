"""Encoder batching benchmark (issues 10, 13): the embedder's token budget per forward pass.

`Embedder.embed` sorts its texts by token length and cuts them into batches of at most
`max_tokens_per_batch` padded tokens. This measures, for the bundled MiniLM on `torch` and on
`onnx-int8`, one thread, the seconds of `embed` at several budgets on two workloads:

- requests: the units (sentences) and the query of each compression request of the HotpotQA and NQ
  samples the compression benchmark uses, one `embed` call per request (what `fused`, `mig` and
  `dense` do per request);
- bulk: the first SST-2 train texts in one `embed` call (what a curation run's embedding pass does).

Budgets run in turn within each round, in one process (so machine load hits them alike); a budget's
ratio is its round time over the round time of the former default (8,192 tokens), the median over
rounds. Embeddings at every budget are compared with the 8,192-token ones (largest difference).

Run:  .venv/bin/python benchmarks/encoder_batching.py [--quick] [--rounds 2] [--questions 20] [--bulk-rows 2000]
Writes benchmarks/results/encoder_batching.json (quick: encoder_batching_quick.json).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

import numpy as np  # noqa: E402

BACKENDS = ("torch", "onnx-int8")
BUDGETS = (8192, 1024, 512, 256, 128)
REFERENCE = 8192
README_TITLE = "Encoder batching: tokens per forward pass (`benchmarks/encoder_batching.py`)"


def request_workload(n: int) -> list[list[str]]:
    """Per compression request (HotpotQA, then NQ): its units and its query, as the methods embed them."""
    import compression
    from datapruner.compression.budget import TokenCounter
    from datapruner.compression.item import build_item

    counter = TokenCounter("bundled-smollm2")
    ddir = compression.data_dir(None)
    out = []
    for name in ("hotpotqa", "nq"):
        for case in getattr(compression, f"load_{name}")(ddir, n, random.Random(0)):
            out.append(build_item(case["query"], case["passages"], counter=counter, rate=1.0).texts + [case["query"]])
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="5 questions per dataset, 300 bulk rows, 1 round")
    ap.add_argument("--rounds", type=common.positive_int, default=2)
    ap.add_argument("--questions", type=int, default=20, help="requests per QA dataset (default 20)")
    ap.add_argument("--bulk-rows", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    common.require_data("qa")
    threads = common.set_threads(args.threads)
    started, loadavg = common.now(), list(os.getloadavg())
    rounds = 1 if args.quick else args.rounds
    requests = request_workload(5 if args.quick else args.questions)
    bulk = common.load_classification("sst2")[0].texts[: 300 if args.quick else args.bulk_rows]
    workloads = {"requests": requests, "bulk": [bulk]}

    from datapruner.models import Embedder

    results = {}
    for backend in BACKENDS:
        emb = Embedder(backend=backend)
        emb.embed(["warm up"])
        for work, calls in workloads.items():
            seconds = {b: [] for b in BUDGETS}
            vectors = {}
            for _ in range(rounds):
                for budget in BUDGETS:
                    emb.max_tokens_per_batch = budget
                    t0 = time.perf_counter()
                    vectors[budget] = [emb.embed(texts) for texts in calls]
                    seconds[budget].append(time.perf_counter() - t0)
            ref = np.concatenate(vectors[REFERENCE])
            results[f"{backend}/{work}"] = {
                "backend": backend, "workload": work, "calls": len(calls), "texts": sum(len(c) for c in calls),
                "budgets": {str(b): {
                    "seconds": seconds[b],
                    "ratio_to_reference": float(np.median([s / r for s, r in zip(seconds[b], seconds[REFERENCE])])),
                    "max_abs_diff": float(np.abs(np.concatenate(vectors[b]) - ref).max()),
                } for b in BUDGETS},
            }
            print(backend, work, {b: round(results[f"{backend}/{work}"]["budgets"][str(b)]["ratio_to_reference"], 3) for b in BUDGETS},
                  flush=True)
    from datapruner.models.embedder import DEFAULT_TOKENS_PER_BATCH

    payload = {"results": results, "budgets": list(BUDGETS), "reference": REFERENCE, "rounds": rounds,
               "default": DEFAULT_TOKENS_PER_BATCH, "loadavg_start": loadavg, "loadavg_end": list(os.getloadavg())}
    payload["readme"] = common.readme_block(README_TITLE, render(payload, threads))
    print(f"wrote {common.write_result('encoder_batching', payload, quick=args.quick, threads=threads, started=started)}")


def render(d: dict, threads: int) -> str:
    budgets = d["budgets"]
    lines = [
        f"One process, {threads} thread(s), load average {d['loadavg_start'][0]:.1f} at the start; {d['rounds']} round(s), "
        f"budgets in turn. Seconds of `Embedder.embed` at each `max_tokens_per_batch` over its time at {d['reference']:,} "
        "tokens (the former default) in the same round, median over rounds; **bold** = the library's default "
        f"({d['default']:,}). requests = one call per compression request (units + query of HotpotQA and NQ questions); "
        "bulk = one call over SST-2 train texts.",
        "",
        "| backend | workload | calls | texts | " + " | ".join(f"{b:,}" for b in budgets) + " | largest embedding difference |",
        "|---|---|---|---|" + "---|" * len(budgets) + "---|",
    ]
    for r in d["results"].values():
        cells = []
        for b in budgets:
            cell = f"{r['budgets'][str(b)]['ratio_to_reference']:.2f}"
            cells.append(f"**{cell}**" if b == d["default"] else cell)
        diff = max(v["max_abs_diff"] for v in r["budgets"].values())
        lines.append(f"| {r['backend']} | {r['workload']} | {r['calls']} | {r['texts']:,} | " + " | ".join(cells) + f" | {diff:.1e} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
