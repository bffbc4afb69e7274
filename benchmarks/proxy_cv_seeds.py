"""Proxy cross-validation seeds benchmark (issue 13): one set of fold models against five.

Confident learning reads the proxy's out-of-fold probabilities (`ProxyClassifier.pred_probs_`).
`cv_seeds` sets how many independently initialised sets of fold models are averaged for them: 1 (the
default, one model per fold as cleanlab's own cross-validation) or 5 (the proxy's former default,
one set per EL2N seed). For SST-2 and Banking77 (the datasets the proxy was tuned on) and TREC and
SMS spam (held out; loaders in common.py), all train rows, bundled-MiniLM embeddings through the
library's disk cache, 20 % seeded label flips, in one process, rounds of `ProxyClassifier(cv_seeds=5)`
then `ProxyClassifier(cv_seeds=1)` with every other parameter at its default (5 EL2N seeds, 5 folds,
10 epochs). Reported per dataset:

- seconds of each fit (the fastest round) and cv_seeds=1 / cv_seeds=5 in each round;
- confident learning's flags (`cleanlab.filter.find_label_issues` on `pred_probs_`) as F1 against
  the flipped rows, and the AUROC of 1 - p(given label), under each setting.

The EL2N runs (trained on all rows) are the same under both settings, so EL2N does not move.

Run:  .venv/bin/python benchmarks/proxy_cv_seeds.py [--quick] [--rounds 2] [--datasets sst2,banking77,trec,sms_spam]
Writes benchmarks/results/proxy_cv_seeds.json (quick: proxy_cv_seeds_quick.json, 1,000 rows per dataset).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

import numpy as np  # noqa: E402

DATASETS = ("sst2", "banking77", "trec", "sms_spam")
HELDOUT = ("trec", "sms_spam")
SETTINGS = (5, 1)  # the former default, then the default
FORMER, DEFAULT = (str(c) for c in SETTINGS)
NOISE_RATE = 0.2
README_TITLE = "Proxy cross-validation: one set of fold models against five (`benchmarks/proxy_cv_seeds.py`)"


def measure(name: str, rounds: int, quick: bool) -> dict:
    """cv_seeds=5 then cv_seeds=1 proxy fits on one dataset, `rounds` times; timings and detection quality."""
    import cleanlab.filter
    from sklearn.metrics import roc_auc_score

    run = common.proxy_fits_in_turn(name, {str(c): {"cv_seeds": c} for c in SETTINGS}, rounds=rounds, quick=quick, noise_rate=NOISE_RATE)
    noisy, flipped, seconds = run["noisy"], run["flipped"], run["seconds"]
    quality = {}
    for cv_seeds, proxy in run["fits"].items():
        pp = proxy.pred_probs_
        flags = common.prf(np.asarray(cleanlab.filter.find_label_issues(noisy, pp)), flipped)
        quality[cv_seeds] = {"cl_flags": flags["n_flagged"], "cl_f1": flags["f1"],
                             "auroc": float(roc_auc_score(flipped, 1.0 - pp[np.arange(len(noisy)), noisy]))}
    return {
        "dataset": f"{name} train", "heldout": name in HELDOUT, "n_rows": run["n_rows"], "n_classes": run["n_classes"], "seconds": seconds,
        "ratio_per_round": [new / old for old, new in zip(seconds[FORMER], seconds[DEFAULT])],
        "quality": quality, "loadavg_after": list(os.getloadavg()),
    }


def render(runs: list[dict], threads: int, loadavg: list[float]) -> str:
    lines = [
        f"One process, {threads} thread(s), load average {loadavg[0]:.1f} at the start. `ProxyClassifier` with "
        "cv_seeds=5 (5 x 5 fold models) then cv_seeds=1 (5 fold models) in each round, every other parameter at its "
        f"default, on the bundled-MiniLM embeddings of every train row with {NOISE_RATE:.0%} seeded label flips; seconds "
        "of the whole fit (the 5 EL2N runs included) from the fastest round. CL F1 = `cleanlab.filter.find_label_issues` "
        "on the out-of-fold probabilities against the flipped rows; AUROC of 1 - p(given label). TREC and SMS spam "
        "are the held-out sets of the other benchmarks: the proxy's other defaults were not tuned on them.",
        "",
        "| dataset | rows | classes | fit, cv_seeds=5 (s) | fit, cv_seeds=1 (s) | 1 / 5 per round | CL F1, 5 | CL F1, 1 | AUROC, 5 | AUROC, 1 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        q, s = r["quality"], r["seconds"]
        held = " (held out)" if r["heldout"] else ""
        lines.append(f"| {r['dataset']}{held} | {r['n_rows']:,} | {r['n_classes']} | {min(s[FORMER]):.1f} | {min(s[DEFAULT]):.1f} | "
                     f"{', '.join(f'{x:.2f}' for x in r['ratio_per_round'])} | {q[FORMER]['cl_f1']:.3f} | {q[DEFAULT]['cl_f1']:.3f} | "
                     f"{q[FORMER]['auroc']:.3f} | {q[DEFAULT]['auroc']:.3f} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = common.proxy_benchmark_parser(__doc__)
    ap.add_argument("--datasets", default=",".join(DATASETS), help=f"comma-separated subset of {','.join(DATASETS)}")
    args = ap.parse_args(argv)
    names = [n for n in args.datasets.split(",") if n]
    unknown = sorted(set(names) - set(DATASETS))
    if unknown:
        ap.error(f"--datasets: unknown {unknown}; choose from {','.join(DATASETS)}")

    threads = common.set_threads(args.threads)
    started, loadavg = common.now(), list(os.getloadavg())
    runs = []
    for name in names:
        runs.append(measure(name, args.rounds, args.quick))
        print(f"{name}: cv_seeds 1 / 5 {runs[-1]['ratio_per_round']}", flush=True)
    payload = {"runs": runs, "loadavg_start": loadavg, "noise_rate": NOISE_RATE,
               "readme": common.readme_block(README_TITLE, render(runs, threads, loadavg))}
    print(f"wrote {common.write_result('proxy_cv_seeds', payload, quick=args.quick, threads=threads, started=started)}")


if __name__ == "__main__":
    main()
