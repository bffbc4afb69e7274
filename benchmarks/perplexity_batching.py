"""Perplexity batching benchmark (issue 10): the `perplexity` method's padded tokens per LM forward pass.

`PerplexityScorer` (the B2 method's passes over the bundled SmolLM2) sorts its (chunk, question)
sequences by length and cuts them into left-padded batches of at most `batch_tokens` tokens. This
times the whole method (`datapruner.Compressor("perplexity", params={"batch_tokens": b})` at 4x) at
several budgets on the compression benchmark's seeded questions (XQuAD, HotpotQA, NQ), one thread.

Per question the budgets run in turn in one process (so machine load hits them alike); a budget's
ratio is its total seconds over the total at 2,048 tokens (the former default), and the median of
the per-question ratios is given beside it. Every budget's compressed text is compared with the
2,048-token one (batching changes float rounding only, so a different text is possible but rare).

Run:  .venv/bin/python benchmarks/perplexity_batching.py [--quick] [--questions 4] [--ratio 4]
Writes benchmarks/results/perplexity_batching.json (quick: perplexity_batching_quick.json).
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

BUDGETS = (2048, 1024, 512, 256)
REFERENCE = 2048
DATASETS = ("xquad", "hotpotqa", "nq")
README_TITLE = "Perplexity batching: padded tokens per LM forward pass (`benchmarks/perplexity_batching.py`)"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one XQuAD question")
    ap.add_argument("--questions", type=common.positive_int, default=4, help="questions per dataset (default 4)")
    ap.add_argument("--ratio", type=common.positive_int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    data_dir = common.require_data("qa")
    threads = common.set_threads(args.threads)
    started, loadavg = common.now(), list(os.getloadavg())
    import compression

    from datapruner import Compressor
    from datapruner.scorers.perplexity_chunks import DEFAULT_BATCH_TOKENS

    datasets, n = (DATASETS[:1], 1) if args.quick else (DATASETS, args.questions)
    cases = [(ds, c) for ds in datasets for c in compression.LOADERS[ds](data_dir, n, random.Random(f"0-{ds}"))]
    compressors = {b: Compressor("perplexity", params={"batch_tokens": b}) for b in BUDGETS}
    _, warm = cases[0]
    for comp in compressors.values():  # loads the LM once (shared) and warms every budget's code path
        comp.compress(warm["query"], warm["passages"], rate=1.0 / args.ratio)
    records = []
    for ds, case in cases:
        rec = {"dataset": ds, "id": case["id"], "seconds": {}, "same_text": {}}
        texts = {}
        for b in BUDGETS:
            t0 = time.perf_counter()
            texts[b] = compressors[b].compress(case["query"], case["passages"], rate=1.0 / args.ratio).text
            rec["seconds"][str(b)] = round(time.perf_counter() - t0, 4)
        rec["same_text"] = {str(b): texts[b] == texts[REFERENCE] for b in BUDGETS}
        records.append(rec)
        print(ds, case["id"], rec["seconds"], flush=True)
    summary = {}
    for b in BUDGETS:
        secs = np.array([r["seconds"][str(b)] for r in records])
        ref = np.array([r["seconds"][str(REFERENCE)] for r in records])
        summary[str(b)] = {"seconds_total": float(secs.sum()), "ratio_of_totals": float(secs.sum() / ref.sum()),
                           "ratio_median": float(np.median(secs / ref)),
                           "same_text": int(sum(r["same_text"][str(b)] for r in records))}
    payload = {"records": records, "summary": summary, "budgets": list(BUDGETS), "reference": REFERENCE,
               "ratio": args.ratio, "default": DEFAULT_BATCH_TOKENS, "questions": len(records), "datasets": list(datasets),
               "loadavg_start": loadavg, "loadavg_end": list(os.getloadavg())}
    payload["readme"] = common.readme_block(README_TITLE, render(payload, threads))
    print(f"wrote {common.write_result('perplexity_batching', payload, quick=args.quick, threads=threads, started=started)}")


def render(d: dict, threads: int) -> str:
    budgets = d["budgets"]
    s = d["summary"]
    lines = [
        f"One process, {threads} thread(s), load average {d['loadavg_start'][0]:.1f} at the start; the `perplexity` method at "
        f"{d['ratio']}x on {d['questions']} questions ({', '.join(d['datasets'])}), budgets in turn per question. Seconds at each "
        f"`batch_tokens` over the seconds at {d['reference']:,} (the former default); **bold** = the library's default "
        f"({d['default']:,}); same text = questions whose compressed text equals the {d['reference']:,}-token one.",
        "",
        "| | " + " | ".join(f"{b:,}" for b in budgets) + " |",
        "|---|" + "---|" * len(budgets),
    ]

    def row(label, fmt):
        cells = [fmt(s[str(b)]) for b in budgets]
        return f"| {label} | " + " | ".join(f"**{c}**" if b == d["default"] else c for b, c in zip(budgets, cells)) + " |"

    lines.append(row("total seconds", lambda x: f"{x['seconds_total']:.1f}"))
    lines.append(row("ratio of totals", lambda x: f"{x['ratio_of_totals']:.2f}"))
    lines.append(row("median per-question ratio", lambda x: f"{x['ratio_median']:.2f}"))
    lines.append(row("same text", lambda x: f"{x['same_text']} / {d['questions']}"))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
