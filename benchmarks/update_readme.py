"""Regenerate the benchmark section of README.md from benchmarks/results/*.json.

Only the text between `<!-- BENCHMARKS:START -->` and `<!-- BENCHMARKS:END -->` changes. Every
full-run result file (`*_quick.json` are ignored) is rendered in a stable order:

- a file with a top-level `"readme": {"title": str, "markdown": str}` (optionally `"order": int`)
  is rendered as `### title`, its Markdown, and a source line (file, command, threads, finish time);
- a file without it is rendered by a formatter below if its benchmark is known (clustering_scale),
  else listed as "no readme entry".

It also fills every generated block of docs/*.md (`<!-- generated:NAME -->` ...
`<!-- /generated:NAME -->`) with the renderers of `doc_blocks.py`, so the docs carry no hand-typed
figures. This is the one command that regenerates results text anywhere in the repository.

Run:  .venv/bin/python benchmarks/update_readme.py [--check]
`--check` exits 1 when README.md or a generated doc block is not up to date (nothing is written).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import doc_blocks  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
START, END = "<!-- BENCHMARKS:START -->", "<!-- BENCHMARKS:END -->"
ORDER = ["pruning_curve", "pruning_curve_heldout", "noise_detection", "noise_detection_heldout", "compression", "encoder_batching", "perplexity_batching", "throughput", "proxy_precision", "proxy_cv_seeds", "memory", "scale", "clustering_scale", "perplexity_speed", "service_load", "dedup_memory"]


def _clustering_scale(d: dict) -> dict:
    lines = ["| rows | k | fit (s) | assign (s) | SemDeDup (s) | total (s) | peak RSS (MiB) | seeded-duplicate recall |", "|---|---|---|---|---|---|---|---|"]
    for r in d.get("results", []):
        t = r.get("times_s", {})
        lines.append(
            f"| {r['n_rows']:,} | {r.get('n_clusters')} | {t.get('fit', float('nan')):.1f} | {t.get('assign', float('nan')):.1f} | "
            f"{t.get('semdedup', float('nan')):.1f} | {r.get('total_s', float('nan')):.1f} | {r.get('peak_rss_self_bytes', 0) / 2**20:.0f} | "
            f"{r.get('semdedup', {}).get('recall_seeded_pairs', float('nan')):.4f} |"
        )
    png = RESULTS / "clustering_scale.png"
    if png.exists():
        lines += ["", "![clustering_scale](benchmarks/results/clustering_scale.png)"]
    return {"title": "Clustering at scale (`benchmarks/clustering_scale.py`)", "markdown": "Synthetic clustered 384-d embeddings (float16 memmap), library k-means / prototypicality / DBP / SemDeDup.\n\n" + "\n".join(lines)}


def _load_note(d: dict) -> str:
    load = d.get("machine", {}).get("loadavg_at_write") or d.get("loadavg_after")
    return f"Load average when written: {load[0]:.1f} on {d.get('machine', {}).get('cpus', '?')} cores." if load else ""


def _ci(pair) -> str:
    return f"[{pair[0]:.2f}, {pair[1]:.2f}]" if pair else ""


def _perplexity_speed(d: dict) -> dict:
    s = d.get("summary", {})
    lines = ["| method | questions | answer recall (95% CI) | mean latency (s) | over budget |", "|---|---|---|---|---|"]
    for method in ("perplexity", "longllmlingua"):
        m = s.get(method)
        if not m:
            lines.append(f"| {method} | not run ({d.get('note', 'no record')}) | | | |")
            continue
        lines.append(f"| {method} | {m['answer_n']} | {m['answer_recall']:.2f} {_ci(m.get('answer_recall_ci95'))} | "
                     f"{m['latency_s_mean']:.1f} | {m['over_budget_count']} |")
    ratio = s.get("speedup_ratio_of_means")
    text = ("Speed-up (LongLLMLingua latency / ours, ratio of means): "
            f"{ratio:.2f} {_ci(s.get('speedup_ratio_of_means_ci95'))}; goal >= 5." if ratio is not None else "")
    if ratio is not None:
        text += " " + doc_blocks.lm_floor_sentence(s)
    notes = " ".join(x for x in (d.get("note", "").rstrip(".") + "." if d.get("note") else "", "Complete run." if d.get("complete") else "Partial run.", _load_note(d)) if x)
    return {"title": "Perplexity method vs LongLLMLingua (`benchmarks/perplexity_speed.py`)",
            "markdown": f"At {d.get('ratio')}x, same bundled LM, same threads, methods in turn per question.\n\n"
                        + "\n".join(lines) + f"\n\n{text} {notes}"}


def _service_load(d: dict) -> dict:
    lines = ["| method | sent | 200 | 503 | 504 | 429 | other | p50 (ms) | p99 (ms) |", "|---|---|---|---|---|---|---|---|---|"]
    for method, m in d.get("per_method", {}).items():
        c = m.get("counts", {})
        fmt = lambda v: "n/a" if v is None else f"{v:.0f}"  # noqa: E731
        lines.append(f"| {method} | {m.get('sent')} | {c.get('200', 0)} | {c.get('503', 0)} | {c.get('504', 0)} | {c.get('429', 0)} | "
                     f"{c.get('other', 0)} | {fmt(m.get('p50_ms'))} | {fmt(m.get('p99_ms'))} |")
    rss = f"Server RSS (MiB, main + workers): {d['rss_start']['total_mib']:.0f} at start, {d['rss_end']['total_mib']:.0f} at the end." \
        if d.get("rss_start") and d.get("rss_end") else ""
    c = d.get("client", {})
    head = (f"{d.get('sent')} requests, {c.get('concurrency')} at a time, to `datapruner serve` on 127.0.0.1; "
            f"every request answered or shed: {d.get('all_answered_or_shed')}; server alive at the end: {d.get('server_alive_at_end')}.")
    return {"title": "Service under load (`benchmarks/service_load.py`)",
            "markdown": head + "\n\n" + "\n".join(lines) + f"\n\n{rss} {_load_note(d)}"}


def _dedup_memory(d: dict) -> dict:
    m = d.get("minhash", {})
    return {"title": "Dedup memory (`benchmarks/dedup_memory.py`)",
            "markdown": f"Resident bytes per row kept while streaming {d.get('rows', 0):,} texts of {d.get('words_per_text')} words: "
                        f"exact {d.get('exact_dedup_bytes_per_row', float('nan')):.0f} B, MinHash "
                        f"{d.get('minhash_bytes_per_row', float('nan')):.0f} B (of which the signature "
                        f"{d.get('minhash_signature_bytes_per_row')} B; num_perm {m.get('num_perm')}, {m.get('bands')} bands x "
                        f"{m.get('rows_per_band')} rows). {_load_note(d)}"}


FORMATTERS = {"clustering_scale": _clustering_scale, "perplexity_speed": _perplexity_speed, "service_load": _service_load,
              "dedup_memory": _dedup_memory}

def fill_block(text: str, start: str, end: str, body: str) -> str:
    """`text` with the part between the markers replaced by `body`."""
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return head + start + "\n" + body + "\n" + end + tail


def load_results() -> list[tuple[str, dict]]:
    out = []
    for path in sorted(RESULTS.glob("*.json")):
        if path.stem.endswith("_quick"):
            continue
        try:
            out.append((path.stem, json.loads(path.read_text())))
        except json.JSONDecodeError as exc:
            print(f"warning: {path} is not valid JSON ({exc}); skipped", file=sys.stderr)

    def key(item):
        name, d = item
        order = d.get("order", ORDER.index(name) if name in ORDER else len(ORDER))
        return (order, name)

    return sorted(out, key=key)


def render(results: list[tuple[str, dict]]) -> str:
    parts = [
        "",
        "## Benchmarks",
        "",
        "_Generated by `benchmarks/update_readme.py` from `benchmarks/results/*.json`; do not edit by hand. "
        "How to reproduce each one: [benchmarks/README.md](benchmarks/README.md)._",
        "",
    ]
    for name, d in results:
        block = d.get("readme") or (FORMATTERS[name](d) if name in FORMATTERS else None)
        if not block:
            parts += [f"### {name}", "", f"`benchmarks/results/{name}.json` has no readme entry.", ""]
            continue
        parts += [f"### {block['title']}", "", block["markdown"].strip(), ""]
        src = [f"source: `benchmarks/results/{name}.json`"]
        if d.get("command"):
            src.append(f"command: `{d['command']}`")
        if d.get("threads") is not None:
            src.append(f"threads: {d['threads']}")
        if d.get("finished_utc"):
            src.append(f"finished: {d['finished_utc']}")
        parts += ["_" + "; ".join(src) + "_", ""]
    return "\n".join(parts)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="exit 1 if README.md is stale; write nothing")
    ap.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = ap.parse_args(argv)
    text = args.readme.read_text()
    if START not in text or END not in text or text.index(START) > text.index(END):
        print(f"{args.readme} lacks the {START} ... {END} markers", file=sys.stderr)
        return 2
    results = load_results()
    new = fill_block(text, START, END, render(results))
    docs = {}
    for path in doc_blocks.docs_with_blocks():
        old = path.read_text(encoding="utf-8")
        docs[path] = (old, doc_blocks.fill(old))
    if args.check:
        stale = new != text or any(o != n for o, n in docs.values())
        print("README / doc blocks are " + ("stale" if stale else "up to date"))
        return 1 if stale else 0
    for path, (old, doc) in docs.items():
        if doc != old:
            path.write_text(doc, encoding="utf-8")
            print(f"updated {path}")
    if new != text:
        args.readme.write_text(new)
        print(f"updated {args.readme}")
    else:
        print("README benchmark section already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
