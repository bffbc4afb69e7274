"""Proxy precision benchmark (issue 13): the EL2N / confident-learning proxy with fp32 and with bf16 products.

For SST-2 and Banking77 (all train rows from ../shared/data or DATAPRUNER_DATA, bundled-MiniLM
embeddings through the library's disk cache, 20 % seeded label flips), in one process, rounds of
`ProxyClassifier(precision="fp32")` then `ProxyClassifier(precision="bf16")` with the default
parameters (5 seeds on all rows + 5 fold models, 10 epochs). Reported per dataset:

- seconds of each fit (the fastest round) and bf16 / fp32 in each round;
- the agreement of what the steps read: confident learning's flags (`cleanlab.filter.find_label_issues`
  on the out-of-fold `pred_probs_`) as F1 against the flipped rows under each precision, and the
  EL2N scores (in-sample, mean over the seeds) as Spearman correlation and largest difference.

bf16 only pays on a CPU with native bfloat16 (`datapruner.curation.stacked_training.native_bf16`,
recorded); elsewhere it is emulated and slow, and `precision: auto` keeps fp32.

Run:  .venv/bin/python benchmarks/proxy_precision.py [--quick] [--rounds 2]
Writes benchmarks/results/proxy_precision.json (quick: proxy_precision_quick.json, 1,000 rows per dataset).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

import numpy as np  # noqa: E402

DATASETS = ("sst2", "banking77")
PRECISIONS = ("fp32", "bf16")
NOISE_RATE = 0.2
README_TITLE = "Proxy precision: fp32 against bf16 products (`benchmarks/proxy_precision.py`)"


def measure(name: str, rounds: int, quick: bool) -> dict:
    """fp32 then bf16 proxy fits on one dataset, `rounds` times; timings and agreement."""
    import cleanlab.filter
    from scipy.stats import spearmanr

    from datapruner.scorers.el2n import el2n_scores

    run = common.proxy_fits_in_turn(name, {p: {"precision": p} for p in PRECISIONS}, rounds=rounds, quick=quick, noise_rate=NOISE_RATE)
    noisy, flipped, seconds = run["noisy"], run["flipped"], run["seconds"]
    quality = {}
    for precision, proxy in run["fits"].items():
        flags = common.prf(cleanlab.filter.find_label_issues(noisy, proxy.pred_probs_), flipped)
        quality[precision] = {"cl_flags": flags["n_flagged"], "cl_f1": flags["f1"], "el2n": el2n_scores(noisy, proxy.seed_pred_probs_)}
    a, b = quality["fp32"].pop("el2n"), quality["bf16"].pop("el2n")
    return {
        "dataset": f"{name} train", "n_rows": run["n_rows"], "n_classes": run["n_classes"], "seconds": seconds,
        "ratio_per_round": [b_s / a_s for a_s, b_s in zip(seconds["fp32"], seconds["bf16"])],
        "quality": quality, "el2n_spearman": float(spearmanr(a, b).statistic), "el2n_max_abs_diff": float(np.abs(a - b).max()),
        "loadavg_after": list(os.getloadavg()),
    }


def render(runs: list[dict], threads: int, native: bool, loadavg: list[float]) -> str:
    lines = [
        f"One process, {threads} thread(s), load average {loadavg[0]:.1f} at the start; CPU with native bfloat16: "
        f"{'yes' if native else 'no'} (`precision: auto` picks {'bf16' if native else 'fp32'} here). "
        f"`ProxyClassifier` defaults (5 seeds on all rows + 5 fold models, 10 epochs) on the bundled-MiniLM embeddings of "
        f"every train row, {NOISE_RATE:.0%} seeded label flips; fp32 then bf16 in each round, seconds from the "
        "fastest round. CL F1 = `cleanlab.filter.find_label_issues` on the out-of-fold probabilities against the "
        "flipped rows; EL2N = in-sample, mean over the seeds.",
        "",
        "| dataset | rows | classes | fp32 (s) | bf16 (s) | bf16 / fp32 per round | CL F1 fp32 | CL F1 bf16 | EL2N Spearman | EL2N max diff |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        q = r["quality"]
        lines.append(f"| {r['dataset']} | {r['n_rows']:,} | {r['n_classes']} | {min(r['seconds']['fp32']):.1f} | "
                     f"{min(r['seconds']['bf16']):.1f} | {', '.join(f'{x:.2f}' for x in r['ratio_per_round'])} | "
                     f"{q['fp32']['cl_f1']:.4f} | {q['bf16']['cl_f1']:.4f} | {r['el2n_spearman']:.6f} | {r['el2n_max_abs_diff']:.4f} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = common.proxy_benchmark_parser(__doc__)
    args = ap.parse_args(argv)
    from datapruner.curation.stacked_training import native_bf16

    threads = common.set_threads(args.threads)
    started, loadavg = common.now(), list(os.getloadavg())
    runs = []
    for name in DATASETS:
        runs.append(measure(name, args.rounds, args.quick))
        print(f"{name}: bf16 / fp32 {runs[-1]['ratio_per_round']}", flush=True)
    payload = {"runs": runs, "native_bf16": native_bf16(), "loadavg_start": loadavg, "noise_rate": NOISE_RATE,
               "readme": common.readme_block(README_TITLE, render(runs, threads, native_bf16(), loadavg))}
    print(f"wrote {common.write_result('proxy_precision', payload, quick=args.quick, threads=threads, started=started)}")


if __name__ == "__main__":
    main()
