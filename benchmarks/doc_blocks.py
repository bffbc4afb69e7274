"""The generated blocks of docs/*.md: one renderer per block name, each reading one results file.

A block is the text between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->``. Its
renderer returns Markdown; a renderer whose file is missing returns "not run (reason)". The one
command that fills these blocks (and the README's benchmark section) is
``benchmarks/update_readme.py``; to add a block, write a renderer here and add it to `RENDERERS`.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRUNER = ROOT / "datapruner" / "assets" / "pruner"
RESULTS = ROOT / "benchmarks" / "results"


def _read(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


# ------------------------------------------------------------------ docs/compression.md


def compression() -> str:
    """The compression results' own Markdown (image links made relative to docs/), with its source."""
    path = RESULTS / "compression.json"
    d = _read(path)
    if not d or not d.get("readme"):
        return f"not run ({_rel(path)} is absent)"
    md = d["readme"]["markdown"].strip().replace("](benchmarks/results/", "](../benchmarks/results/")
    src = [f"source: `{_rel(path)}`"]
    if d.get("command"):
        src.append(f"command: `{d['command']}`")
    if d.get("finished_utc"):
        src.append(f"finished: {d['finished_utc']}")
    return md + "\n\n_" + "; ".join(src) + "_"


def compression_speed() -> str:
    """The speed levers of the default method (docs/compression.md, docs/encoders.md): per dataset,
    each fused variant's latency over one fp32 PyTorch encoder pass, measured in one process."""
    path = RESULTS / "compression.json"
    d = _read(path)
    levers = (d or {}).get("speed_levers")
    if not levers:
        return f"not run ({_rel(path)} has no speed_levers; run benchmarks/compression.py)"
    lines = ["| dataset | variant | latency / encoder pass (4x, n) | mean latency (s) | encoder pass (s) | "
             "latency / LongLLMLingua (4x, n) | answer recall 4x | answer recall 8x | units encoded 4x / 8x / 16x |",
             "|---|---|---|---|---|---|---|---|---|"]
    for ds, row in levers.items():
        for m, x in row.items():
            enc = x.get("units_encoded_fraction", {})
            enc_s = " / ".join(f"{enc[r]:.2f}" for r in ("4", "8", "16") if r in enc) or "all"
            rec = [f"{x['recall'][r]:.2f}" if x["recall"].get(r) is not None else "not run" for r in ("4", "8")]
            if x.get("latency_ratio") is None:
                lat = ["not run (no timed pair)"] * 3
            else:
                lat = [f"{x['latency_ratio']:.2f} (n={x['n']})", f"{x['latency_s_mean']:.3f}", f"{x['encoder_pass_latency_s_mean']:.3f}"]
            ll = x.get("vs_longllmlingua")
            ll_s = f"{ll['ratio']:.3f} (n={ll['n']})" if ll else "not run (not timed beside LongLLMLingua)"
            lines.append(f"| {ds} | {m} | {' | '.join(lat)} | {ll_s} | {rec[0]} | {rec[1]} | {enc_s} |")
    runs = d.get("part_runs") or [{"file": path.name, "load_average_at_start": d.get("settings", {}).get("load_average_at_start")}]
    load = "; ".join(f"{r['file']} {', '.join(f'{x:.1f}' for x in r['load_average_at_start'])}"
                     for r in runs if r.get("load_average_at_start"))
    lines += ["", f"Goals: latency / encoder pass <= 0.5, latency / LongLLMLingua <= 0.02. {d.get('threads', 1)} torch "
              f"thread(s); load average at the start of each part: {load} (2 cores: the ratios compare methods run in "
              f"turn on the same questions in one process; absolute seconds are noisy). Source: `{_rel(path)}` "
              f"(`{d.get('command')}`, finished {d.get('finished_utc')}; each part's command in the JSON's part_runs)."]
    return "\n".join(lines)


# ------------------------------------------------------------------ docs/seqlabel.md


NO_PRUNER = "not run (no datapruner/assets/pruner/pruner.json)"


def pruner_weights() -> str:
    meta, weights = _read(PRUNER / "pruner.json"), PRUNER / "pruner.safetensors"
    if meta is None or not weights.is_file():
        return "not run (no bundled pruner files in datapruner/assets/pruner)"
    layers = ", ".join(str(x) for x in meta["trained_layers"])
    extras = [name for key, name in (("match_feature", "the exact-match embedding"),
                                     ("dense_feature", "the dense gate (a, b, c, d)")) if meta.get(key)]
    return (f"`{_rel(weights)}` stores only the fine-tuned tensors (encoder layers {layers} of "
            f"{meta['n_layers']}, both heads{''.join(', ' + e for e in extras)}) in {meta['weights_dtype']} "
            f"({weights.stat().st_size / 1e6:.1f} MB) and loads on top of the bundled encoder; `pruner.json` holds the "
            f"training config, the exact command, data counts, losses, wall time and the held-out metrics.")


def pruner_run() -> str:
    meta = _read(PRUNER / "pruner.json")
    if meta is None:
        return NO_PRUNER
    d, cfg, sec = meta["data"], meta["train_config"], meta["seconds"]
    src = ", ".join(f"{k} {v}" for k, v in d["by_source"].items())
    p = d["evidence_token_fraction"]
    prior = -(p * math.log(p) + (1 - p) * math.log(1 - p))
    cosines = f"{sec['dense_feature'] / 60:.0f} min of it for the query-unit cosines, " if "dense_feature" in sec else ""
    gate = meta.get("dense_gate") or {}
    gate_text = ""
    if gate.get("start"):
        start, end = ("a = {:.2f}, b = {:.2f}, c = {:.2f}, d = {:.2f}".format(*gate[k]) for k in ("start", "trained"))
        gate_text = (f" Dense gate (keep logit + a x cos + b; rank logit + c x max cos + d): fitted start {start}; "
                     f"after training {end}.")
    return (f"Training run of the shipped weights (`{meta['command']}`): {d['examples']} examples ({src}), "
            f"{d['windows']} windows, {p:.0%} evidence tokens, {meta['steps']} steps of batch {cfg['batch_size']} "
            f"({cfg['epochs']} epoch(s){'' if cfg['max_steps'] is None else ', capped at ' + str(cfg['max_steps']) + ' steps'}) "
            f"at a layer learning rate of {cfg['lr']:g}; "
            f"{sec['total_training'] / 60:.0f} min of training on {meta['threads']} torch thread(s) of a shared machine "
            f"({cosines}{sec['frozen_features'] / 60:.0f} min computing the frozen layers), plus "
            f"{meta['heldout_metrics']['seconds'] / 60:.1f} min of held-out evaluation. "
            f"Final training losses: token {meta['final_loss']['token']:.2f} (predicting the evidence rate alone gives "
            f"{prior:.2f}), rerank {meta['final_loss']['rank']:.2f}.{gate_text} Source: `{_rel(PRUNER / 'pruner.json')}`.")


def sign_test_p(better: int, worse: int) -> float:
    """Two-sided exact sign test over the untied questions (ties dropped)."""
    n = better + worse
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(max(better, worse), n + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def pruner_verdict(gap: float, counts: dict | None) -> str:
    """"beats" (higher mean and a sign test p < 0.05), "does not beat" (lower mean) or "is level with"."""
    if gap < 0:
        return "does not beat"
    if gap > 0 and counts and sign_test_p(counts["better"], counts["worse"]) < 0.05:
        return "beats"
    return "is level with"


def _paired(counts: dict | None, n: int) -> str:
    if not counts:
        return ""
    return (f" (per question: pruner higher on {counts['better']}, lower on {counts['worse']}, "
            f"tied on {counts['tied']} of {n})")


def pruner_heldout() -> str:
    meta = _read(PRUNER / "pruner.json")
    if meta is None:
        return NO_PRUNER
    h, x = meta["heldout_metrics"]["hotpotqa_evidence_recall"], meta["heldout_metrics"]["xquad"]
    rows = [
        f"HotpotQA, {meta['heldout']['hotpotqa']} ({h['n_questions']} questions); all sentences of the 2 gold + "
        f"distractor paragraphs ranked together ({h['mean_sentences']:.1f} sentences, {h['mean_gold']:.1f} supporting "
        f"facts per question on average); recall of supporting-fact sentences:",
        "",
        "| method | recall@k (k = number of gold sentences) | recall@5 |",
        "|---|---|---|",
    ]
    names = {"seqlabel": "bundled pruner, mean keep-probability",
             "seqlabel_x_rerank": "bundled pruner, keep-probability x sigmoid(rerank)",
             "embedding": "embedding similarity (MiniLM cosine, baseline)", "chance": "chance"}
    for key, label in names.items():
        rows.append(f"| {label} | {h[key]['at_gold']:.3f} | {h[key]['at_5']:.3f} |")
    rows += ["", f"XQuAD, {meta['heldout']['xquad']} (first {x['n_questions']} questions):", "",
             "| method | answer sentence ranked first in its paragraph | gold paragraph ranked first among the article's |",
             "|---|---|---|"]
    for key, label in (("seqlabel", "bundled pruner"), ("embedding", "embedding similarity")):
        rows.append(f"| {label} | {x[key]['answer_sentence_at_1']:.3f} | {x[key]['paragraph_at_1']:.3f} |")
    gap = h["seqlabel"]["at_gold"] - h["embedding"]["at_gold"]
    gap_x = x["seqlabel"]["answer_sentence_at_1"] - x["embedding"]["answer_sentence_at_1"]
    hot = (f"{abs(gap):.3f} {'above' if gap > 0 else 'below'} it on HotpotQA recall@k "
           f"({h['seqlabel']['at_gold']:.3f} vs {h['embedding']['at_gold']:.3f})"
           f"{_paired(h.get('seqlabel_vs_embedding_at_gold'), h['n_questions'])}")
    xq = (f"{abs(gap_x):.3f} {'above' if gap_x > 0 else 'below' if gap_x < 0 else 'level with'} it on XQuAD answer "
          f"sentence@1 ({x['seqlabel']['answer_sentence_at_1']:.3f} vs {x['embedding']['answer_sentence_at_1']:.3f})"
          f"{_paired(x.get('seqlabel_vs_embedding_answer_sentence'), x['n_questions'])}")
    counts = h.get("seqlabel_vs_embedding_at_gold")
    verdict = pruner_verdict(gap, counts)
    p_value = f", sign test p = {sign_test_p(counts['better'], counts['worse']):.2f}" if counts else ""
    lead = (f"**The bundled pruner {verdict} the embedding-similarity baseline** on HotpotQA recall@k "
            f"(beats = higher mean and a sign test over the untied questions at p < 0.05{p_value})")
    rows += ["", f"{lead}: it is {hot}, and {xq}; at recall@5 it has {h['seqlabel']['at_5']:.3f} vs "
             f"{h['embedding']['at_5']:.3f} (no per-question test recorded); "
             f"{h['seqlabel']['at_gold'] / h['chance']['at_gold']:.1f}x chance on "
             f"HotpotQA. Source: `{_rel(PRUNER / 'pruner.json')}` (`heldout_metrics`)."]
    return "\n".join(rows)


# ------------------------------------------------------------------ docs/encoders.md


def encoder_backends() -> str:
    path = RESULTS / "encoder_backends.json"
    d, reduced = _read(path), ""
    if d is None:  # the reduced run, said so
        path = RESULTS / "encoder_backends_quick.json"
        d = _read(path)
        reduced = ("**Reduced run** (`--quick`: 20 HotpotQA and 100 XQuAD questions, 1 round; the full run did not "
                   "finish on the shared machine within the time bound). ")
    if d is None:
        return "not run (no benchmarks/results/encoder_backends.json; run benchmarks/encoder_backends.py)"
    m = d["machine"]
    agree = d["embedding_agreement"]
    lines = [d["table_markdown"], "",
             f"{reduced}{d['n_sentences_timed']} sentences ({d['n_tokens_timed']} tokens) timed per backend in each of "
             f"{d['rounds']} rounds; {d['threads']} thread(s); load average {m.get('loadavg_at_write')} at the end "
             f"(a shared machine: compare the ratios, not the absolute rates). "
             f"Embeddings of the first 500 timed sentences against torch: onnx max |diff| "
             f"{agree['onnx']['max_abs_diff']:.1e}; onnx-int8 cosine mean {agree['onnx-int8']['mean_cosine']:.4f}, "
             f"min {agree['onnx-int8']['min_cosine']:.4f}.", "",
             f"Source: `{_rel(path)}` (`{d['command']}`, finished {d['finished_utc']})."]
    return "\n".join(lines)


# ------------------------------------------------------------------ docs/perplexity_speed.md


def lm_floor_sentence(summary: dict) -> str:
    """What the benchmark's LM floor says about the 5x goal ("not run" for results that predate it)."""
    floor = summary.get("lm_floor")
    if not floor or not floor.get("longllmlingua_over_floor"):
        return "LM floor: not run (results written before the benchmark measured it)."
    bound = floor["longllmlingua_over_floor"]
    return (f"LM floor: one bare forward pass of the same LM over each question's context ({floor['context_tokens_mean']:.0f} "
            f"tokens on average, windows of {floor['window_tokens']:,}, LM head on the last position only) takes "
            f"{floor['seconds_mean']:.1f} s on average, LongLLMLingua's latency / {bound:.1f}: a method that reads the whole "
            f"context with this LM once is at most {bound:.1f}x faster than LongLLMLingua here.")


def perplexity_speed() -> str:
    path = RESULTS / "perplexity_speed.json"
    d = _read(path)
    if d is None or not d.get("records"):
        return "not run (no benchmarks/results/perplexity_speed.json; run benchmarks/perplexity_speed.py)"
    s = d["summary"]
    lines = ["| method | answer recall [95 % Wilson] | mean latency (s) | over budget |", "|---|---|---|---|"]
    for m in ("longllmlingua", "perplexity"):
        r = s[m]
        rec = (f"{r['answer_recall']:.2f} [{r['answer_recall_ci95'][0]:.2f}, {r['answer_recall_ci95'][1]:.2f}] "
               f"n={r['answer_n']}") if r["answer_recall"] is not None else "n/a"
        lines.append(f"| {m} | {rec} | {r['latency_s_mean']:.1f} | {r['over_budget_count']} of {s['n_questions']} |")
    lo, hi = s["speedup_ratio_of_means_ci95"]
    speed = s["speedup_ratio_of_means"]
    met_speed = speed >= 5
    pr, lr = s["perplexity"]["answer_recall"], s["longllmlingua"]["answer_recall"]
    met_recall = pr is not None and lr is not None and pr >= lr
    state = "complete" if d.get("complete") else f"partial: {d.get('note', 'cut short')}"
    lines += ["", f"Speed-up of the perplexity method over LongLLMLingua (LongLLMLingua latency / perplexity latency): "
              f"ratio of means {speed:.2f} [95 % bootstrap {lo:.2f}, {hi:.2f}], median per question "
              f"{s['speedup_median']:.2f}, over {s['n_questions']} questions ({', '.join(d['datasets'])}) at "
              f"{d['ratio']}x; run {state}. Goal (at least 5x, answer recall at least LongLLMLingua's): speed "
              f"{'met' if met_speed else 'not met'}, recall {'met' if met_recall else 'not met'} "
              f"(point estimates; the intervals are wide at this n). {lm_floor_sentence(s)}", "",
              f"{d['threads']} thread(s); load average {d['machine'].get('loadavg_at_write')} at the end. "
              f"Source: `{_rel(path)}` (`{d['command']}`, finished {d['finished_utc']})."]
    return "\n".join(lines)


RENDERERS = {
    "compression": compression,
    "compression-speed": compression_speed,
    "pruner-weights": pruner_weights,
    "pruner-run": pruner_run,
    "pruner-heldout": pruner_heldout,
    "encoder-backends": encoder_backends,
    "perplexity-speed": perplexity_speed,
}
BLOCK = re.compile(r"(<!-- generated:([\w-]+) -->\n)(.*?)(<!-- /generated:\2 -->)", re.S)


def fill(text: str) -> str:
    """`text` with every generated block re-rendered (an unknown block name is an error)."""
    def one(match):
        name = match.group(2)
        if name not in RENDERERS:
            raise SystemExit(f"unknown generated block {name!r}; known: {sorted(RENDERERS)}")
        return match.group(1) + RENDERERS[name]().strip() + "\n" + match.group(4)

    return BLOCK.sub(one, text)


def docs_with_blocks() -> list[Path]:
    """Every docs/*.md that holds at least one generated block."""
    return [p for p in sorted((ROOT / "docs").glob("*.md")) if BLOCK.search(p.read_text(encoding="utf-8"))]
