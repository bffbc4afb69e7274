"""The project's perplexity method vs LongLLMLingua: latency ratio and answer recall, one process.

Same questions (the compression benchmark's loaders and seeds), same LM (the bundled SmolLM2: the
project's method through ``datapruner.compress(method="perplexity")``, LongLLMLingua through the
``llmlingua`` package, ``baselines.py``), same thread count, one ratio (4x by default). Per question
the methods run in turn (LongLLMLingua, then perplexity) so machine load hits both alike; both models
load and run once on a warm-up question outside the timing. Records are written after every
question, so a run cut short by ``--max-minutes`` leaves a valid, partial result that says so.

Latency ratio = LongLLMLingua's per-question latency / the perplexity method's, summarised by the
median over questions and the ratio of means, with a 95 % bootstrap interval of the latter.
Answer recall = a gold answer string survives in the compressed text (the compression benchmark's
protocol), 95 % Wilson intervals; yes/no questions are left out of recall.

LM floor, per question, after the two methods: one bare forward pass of the same LM over the
question's context (its passages joined, in windows of `LM_WINDOW` tokens, the LM head on the last
position only; tokenised before the clock starts). A method that reads the whole context with the
LM at least once cannot be faster than that, so LongLLMLingua's latency / the floor bounds its
speed-up over LongLLMLingua.

    python benchmarks/perplexity_speed.py [--datasets xquad,hotpotqa] [--n 25] [--ratio 4] [--max-minutes 20]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

METHODS = ("longllmlingua", "perplexity")
LM_WINDOW = 1024  # tokens per forward pass of the LM floor (the perplexity method's default max_context)


def lm_floor(case: dict) -> dict:
    """Seconds of one bare forward pass of the bundled LM over the case's context (see the module docstring)."""
    import torch

    from datapruner.models import shared_causal_lm
    from datapruner.models.lm_scoring import forward_with_cache

    lm = shared_causal_lm("bundled-smollm2")
    ids = lm.tokenizer("\n\n".join(case["passages"]), add_special_tokens=False)["input_ids"]
    windows = [torch.tensor([ids[i : i + LM_WINDOW]]) for i in range(0, len(ids), LM_WINDOW)]
    t0 = time.perf_counter()
    with torch.inference_mode():
        for w in windows:
            forward_with_cache(lm.model, last_logits_only=True, input_ids=w)
    return {"seconds": round(time.perf_counter() - t0, 4), "tokens": len(ids)}


def summarise(records: list[dict]) -> dict:
    out: dict = {"n_questions": len(records)}
    for m in METHODS:
        hits = [r[m]["answer_hit"] for r in records if "answer_hit" in r[m]]
        lat = [r[m]["latency_s"] for r in records]
        out[m] = {
            "answer_recall": float(np.mean(hits)) if hits else None,
            "answer_recall_ci95": list(common.wilson_interval(int(sum(hits)), len(hits))) if hits else None,
            "answer_n": len(hits),
            "latency_s_mean": float(np.mean(lat)) if lat else None,
            "over_budget_count": int(sum(r[m]["over"] > 0 for r in records)),
        }
    floors = [r["lm_floor"] for r in records if "lm_floor" in r]
    if floors:
        out["lm_floor"] = {"n_questions": len(floors), "seconds_mean": float(np.mean([f["seconds"] for f in floors])),
                           "context_tokens_mean": float(np.mean([f["tokens"] for f in floors])), "window_tokens": LM_WINDOW}
        if out["longllmlingua"]["latency_s_mean"]:
            out["lm_floor"]["longllmlingua_over_floor"] = out["longllmlingua"]["latency_s_mean"] / out["lm_floor"]["seconds_mean"]
    if records:
        ll = np.array([r["longllmlingua"]["latency_s"] for r in records])
        pp = np.array([r["perplexity"]["latency_s"] for r in records])
        pairs = np.stack([ll, pp], axis=1)
        out["speedup_median"] = float(np.median(ll / pp))
        out["speedup_ratio_of_means"] = float(ll.mean() / pp.mean())
        out["speedup_ratio_of_means_ci95"] = list(common.bootstrap_interval(
            np.arange(len(pairs)), stat=lambda idx: pairs[idx, 0].mean() / pairs[idx, 1].mean()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="xquad,hotpotqa", help="comma-separated: xquad, hotpotqa, nq")
    ap.add_argument("--n", type=int, default=25, help="questions in all, split evenly over the datasets")
    ap.add_argument("--ratio", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--random-state", type=int, default=0)
    ap.add_argument("--max-minutes", type=float, default=20.0, help="stop after the question running at this wall time")
    ap.add_argument("--quick", action="store_true", help="2 questions")
    args = ap.parse_args()
    threads = common.set_threads(args.threads)
    started = common.now()
    data_dir = common.require_data("qa")
    import importlib.util

    if importlib.util.find_spec("llmlingua") is None:
        common.skip("llmlingua is not installed (pip install 'datapruner[peers]')")
    from compression import LOADERS, Runner

    from datapruner.compression.budget import TokenCounter

    datasets = args.datasets.split(",")
    n = 2 if args.quick else args.n
    per = [n // len(datasets) + (i < n % len(datasets)) for i in range(len(datasets))]
    cases = []
    for ds, k in zip(datasets, per):
        # k + 1: the first case of the first dataset is the warm-up
        cases += [(ds, c) for c in LOADERS[ds](data_dir, k + (ds == datasets[0]), random.Random(f"{args.random_state}-{ds}"))]
    runner = Runner(TokenCounter("bundled-smollm2"))
    warm_ds, warm = cases.pop(0)
    for m in METHODS:
        runner.run(m, warm, args.ratio)
    lm_floor(warm)
    t_start = time.perf_counter()
    records, cut = [], False
    payload: dict = {"ratio": args.ratio, "datasets": datasets, "planned_questions": len(cases), "records": records,
                     "summary": summarise(records)}
    for ds, case in cases:
        if time.perf_counter() - t_start > args.max_minutes * 60:
            cut = True
            break
        rec = {"dataset": ds, "id": case["id"]}
        for m in METHODS:
            rec[m] = runner.run(m, case, args.ratio)
        rec["lm_floor"] = lm_floor(case)
        records.append(rec)
        payload = {"ratio": args.ratio, "datasets": datasets, "planned_questions": len(cases),
                   "complete": False, "records": records, "summary": summarise(records),
                   "by_dataset": {d: summarise([r for r in records if r["dataset"] == d]) for d in datasets}}
        common.write_result("perplexity_speed", payload, quick=args.quick, threads=threads, started=started)
    payload["complete"] = not cut and len(records) == len(cases)
    if cut:
        payload["note"] = (f"cut at --max-minutes {args.max_minutes}: {len(records)} of {len(cases)} questions "
                           f"(the machine's load decides how many fit)")
    path = common.write_result("perplexity_speed", payload, quick=args.quick, threads=threads, started=started)
    s = payload["summary"]
    print({k: s[k] for k in ("n_questions", "speedup_median", "speedup_ratio_of_means") if k in s})
    for m in METHODS:
        print(m, s[m])
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
