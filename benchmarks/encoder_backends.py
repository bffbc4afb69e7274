"""Encoder backends of the bundled MiniLM: throughput and retrieval parity, torch vs ONNX fp32 vs ONNX int8.

One process, one thread count; the backends run in turn on the same texts, in several rounds
(torch, onnx, onnx-int8, torch, ...), so machine load hits them alike. Throughput is sentences per
second over every sentence of the HotpotQA sample's paragraphs (gold + distractors); the speed ratio
of a backend is its round time over torch's in the same round (median over rounds).

Recall parity (dense retrieval with each backend's embeddings, per question):
- HotpotQA (all questions of the sample): sentences of the 2 gold + up to 8 distractor paragraphs
  ranked by cosine to the question; supporting-fact recall@k, k = number of gold sentences, and @5.
- XQuAD en (every question): is the top sentence of the question's paragraph the one holding the
  answer span.
Each backend's mean has a 95 % bootstrap interval over questions; the paired difference to torch
has one too. A backend "matches torch" when every paired-difference interval contains 0.

    python benchmarks/encoder_backends.py [--rounds 3] [--threads 1] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

BACKENDS = ("torch", "onnx", "onnx-int8")


def hotpot_tasks(data_dir: Path, limit: int | None):
    from datapruner.pipelines import train_pruner as tr
    from datapruner.pipelines.evaluate_pruner import hotpotqa_candidates

    records = tr.load_hotpotqa(tr.find_data_file(data_dir, tr.HOTPOT_FILE))[:limit]
    tasks = []
    for r in records:
        passages, spans, gold = hotpotqa_candidates(r)
        sents = [p[s:e] for p, sp in zip(passages, spans) for s, e in sp]
        tasks.append((r["question"], sents, np.concatenate(gold)))
    return tasks


def xquad_tasks(data_dir: Path, limit: int | None):
    from datapruner.compression.units import split_sentences
    from datapruner.pipelines import train_pruner as tr

    tasks = []
    for art in tr.load_xquad_articles(tr.find_data_file(data_dir, tr.XQUAD_FILE)):
        for para in art["paragraphs"]:
            ctx = para["context"]
            spans = split_sentences(ctx)
            sents = [ctx[s:e] for s, e in spans]
            for qa in para["qas"]:
                start = int(qa["answers"][0]["answer_start"])
                hit = set(tr.answer_sentences(spans, start, start + len(qa["answers"][0]["text"])))
                tasks.append((qa["question"], sents, np.array([sp in hit for sp in spans], dtype=bool)))
    return tasks[:limit]


def per_question_scores(embedder, tasks, kind: str) -> dict[str, np.ndarray]:
    """Per-question dense-retrieval scores of one backend on one task set."""
    from datapruner.pipelines.evaluate_pruner import recall_at_k

    uniq = sorted({s for _, sents, _ in tasks for s in sents})
    vec = dict(zip(uniq, embedder.embed(uniq)))
    qv = embedder.embed([q for q, _, _ in tasks])
    out: dict[str, list[float]] = {}
    for (q, sents, gold), v in zip(tasks, qv):
        cos = np.array([vec[s] @ v for s in sents])
        if kind == "hotpotqa":
            out.setdefault("recall_at_gold", []).append(recall_at_k(cos, gold, int(gold.sum())))
            out.setdefault("recall_at_5", []).append(recall_at_k(cos, gold, 5))
        else:
            out.setdefault("answer_sentence_at_1", []).append(float(gold[int(np.argmax(cos))]))
    return {k: np.array(v) for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=common.positive_int, default=3, help="throughput rounds, backends in turn (default 3)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="20 HotpotQA and 100 XQuAD questions, 1 round")
    args = ap.parse_args()
    threads = common.set_threads(args.threads)
    started = common.now()
    data_dir = common.require_data("qa")
    from datapruner.models import Embedder

    hot = hotpot_tasks(data_dir, 20 if args.quick else None)
    xq = xquad_tasks(data_dir, 100 if args.quick else None)
    rounds = 1 if args.quick else args.rounds
    embedders = {b: Embedder(backend=b) for b in BACKENDS}
    for e in embedders.values():  # load (and export, on a fresh cache) outside the timed region
        e.embed(["warm up"])

    texts = [s for _, sents, _ in hot for s in sents]
    n_tokens = int(embedders["torch"].token_lengths(texts).sum())
    times = {b: [] for b in BACKENDS}
    for _ in range(rounds):
        for b in BACKENDS:
            t = time.perf_counter()
            embedders[b].embed(texts)
            times[b].append(time.perf_counter() - t)
    throughput = {}
    for b in BACKENDS:
        ratios = [tb / tt for tb, tt in zip(times[b], times["torch"])]
        throughput[b] = {
            "seconds": [round(x, 3) for x in times[b]],
            "sentences_per_s": round(len(texts) / float(np.median(times[b])), 1),
            "time_ratio_to_torch_median": round(float(np.median(ratios)), 3),
            "speedup_vs_torch_median": round(1 / float(np.median(ratios)), 2),
        }

    recall = {}
    scores = {b: {"hotpotqa": per_question_scores(e, hot, "hotpotqa"), "xquad": per_question_scores(e, xq, "xquad")}
              for b, e in embedders.items()}
    matches = {}
    for b in BACKENDS:
        recall[b] = {}
        ok = True
        for ds, metrics in scores[b].items():
            for m, v in metrics.items():
                diff = v - scores["torch"][ds][m]
                lo, hi = common.bootstrap_interval(diff)
                recall[b][f"{ds}.{m}"] = {
                    "mean": round(float(v.mean()), 4), "ci95": [round(x, 4) for x in common.bootstrap_interval(v)],
                    "diff_vs_torch": round(float(diff.mean()), 4), "diff_ci95": [round(lo, 4), round(hi, 4)],
                    "n_questions": len(v),
                }
                ok &= lo <= 0 <= hi
        matches[b] = bool(ok)

    vec = {b: embedders[b].embed(texts[:500]) for b in BACKENDS}
    agreement = {b: {"max_abs_diff": float(np.abs(vec[b] - vec["torch"]).max()),
                     "min_cosine": float((vec[b] * vec["torch"]).sum(1).min()),
                     "mean_cosine": float((vec[b] * vec["torch"]).sum(1).mean())} for b in BACKENDS}
    rows = ["| backend | sentences/s | speed-up vs torch (median of rounds) | HotpotQA recall@gold [95 % CI] | XQuAD answer sentence@1 [95 % CI] | matches torch |",
            "|---|---|---|---|---|---|"]
    for b in BACKENDS:
        h, x = recall[b]["hotpotqa.recall_at_gold"], recall[b]["xquad.answer_sentence_at_1"]
        rows.append(f"| {b} | {throughput[b]['sentences_per_s']} | {throughput[b]['speedup_vs_torch_median']}x | "
                    f"{h['mean']:.3f} [{h['ci95'][0]:.3f}, {h['ci95'][1]:.3f}] | "
                    f"{x['mean']:.3f} [{x['ci95'][0]:.3f}, {x['ci95'][1]:.3f}] | {'yes' if matches[b] else 'no'} |")
    payload = {
        "n_sentences_timed": len(texts), "n_tokens_timed": n_tokens, "rounds": rounds,
        "throughput": throughput, "recall": recall, "matches_torch": matches, "embedding_agreement": agreement,
        "table_markdown": "\n".join(rows),
    }
    path = common.write_result("encoder_backends", payload, quick=args.quick, threads=threads, started=started)
    print("\n".join(rows))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
