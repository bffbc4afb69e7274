"""`report/index.html`: one self-contained page per curation run (no network, no external files).

Sections (each a `<section id=...>`):
- `funnel`: rows in, then the rows left after each selection policy, with the rows each dropped;
- `counts`: rows dropped by reason;
- `histograms`: one inline-SVG histogram per float score column, kept against dropped;
- `methods`: the method plots the steps wrote into `report/` (EU plane, DBP quotas against cluster
  size, ...) embedded as base64 PNG, and their tables (SemDeDup eps counts, ...);
- `examples`: a few example rows per drop reason, text escaped;
- `manifest`: the resolved config, package versions and timings.

Every value from the data or the config is HTML-escaped. The page's styles are inline and its one
script only marks the page as rendered (``data-rendered``), so a browser check can see it ran.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from datapruner.curation.dataset import Dataset
from datapruner.selection import KEPT, make_policy

EXAMPLES_PER_REASON = 3
EXAMPLE_CHARS = 400
TABLE_ROWS = 25
HIST_BINS = 30
SECTIONS = ("funnel", "counts", "histograms", "methods", "examples", "manifest")

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d232b;background:#f5f6f8}
header{background:#1d3557;color:#fff;padding:18px 28px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;opacity:.85}main{padding:8px 28px 40px;max-width:1200px}
section{background:#fff;border-radius:8px;padding:14px 20px;margin:16px 0;box-shadow:0 1px 3px rgba(0,0,0,.08)}
h2{font-size:17px;margin:4px 0 12px}table{border-collapse:collapse;font-size:13px}
td,th{padding:4px 10px;border-bottom:1px solid #e3e6ea;text-align:left;vertical-align:top}
th{background:#f0f2f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
.bar{background:#457b9d;height:14px;border-radius:3px}.drop{color:#b23a48}
.grid{display:flex;flex-wrap:wrap;gap:14px}.card{border:1px solid #e3e6ea;border-radius:6px;padding:8px}
.card h3{font-size:13px;margin:0 0 4px}pre{font-size:12px;background:#f7f8fa;padding:10px;overflow:auto;max-height:360px}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}
img{max-width:560px;border:1px solid #e3e6ea}
"""

SCRIPT = "document.body.setAttribute('data-rendered', 'yes');"


def esc(value: Any) -> str:
    """`value` as escaped HTML text."""
    return html.escape(str(value), quote=True)


def funnel_steps(selection: list[Mapping[str, Any]], rows_in: int, dropped_by_reason: Mapping[str, int]) -> list[dict[str, Any]]:
    """The funnel: ``[{"step", "dropped", "left"}, ...]`` from rows in through each policy, in order.

    Invalid rows (reasons ``invalid:*``) form the first step when there are any; each policy's row
    counts every reason that starts with its reason text (``<reason>[missing <col>]`` included).
    """
    left = rows_in
    steps = [{"step": "rows in", "dropped": 0, "left": rows_in}]
    invalid = sum(n for r, n in dropped_by_reason.items() if r.startswith("invalid:"))
    if invalid:
        left -= invalid
        steps.append({"step": "invalid rows", "dropped": invalid, "left": left})
    for spec in selection:
        text = make_policy(spec).reason()
        dropped = sum(n for r, n in dropped_by_reason.items() if r == text or r.startswith(text + "["))
        left -= dropped
        steps.append({"step": text, "dropped": dropped, "left": left})
    return steps


def example_rows(dataset: Dataset, reason: np.ndarray, *, per_reason: int = EXAMPLES_PER_REASON) -> dict[str, list[tuple[str, str]]]:
    """The first `per_reason` rows (id, text) of each drop reason, read in one streaming pass."""
    wanted: dict[int, str] = {}
    seen: dict[str, int] = {}
    for i, r in enumerate(reason):
        if r != KEPT and seen.get(r, 0) < per_reason:
            seen[r] = seen.get(r, 0) + 1
            wanted[i] = r
    out: dict[str, list[tuple[str, str]]] = {r: [] for r in seen}
    if not wanted:
        return out
    last = max(wanted)
    for batch in dataset.batches():
        for i in range(len(batch)):
            row = batch.start + i
            if row in wanted:
                out[wanted[row]].append((batch.ids[i], batch.texts[i]))
        if batch.start + len(batch) > last:
            break
    return out


def histogram_svg(name: str, values: np.ndarray, keep: np.ndarray, *, bins: int = HIST_BINS) -> str | None:
    """An inline SVG histogram of one score column, kept (blue) against dropped (red); None if < 2 finite values."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    if finite.sum() < 2:
        return None
    edges = np.histogram_bin_edges(values[finite], bins=bins)
    kept, _ = np.histogram(values[finite & keep], bins=edges)
    dropped, _ = np.histogram(values[finite & ~keep], bins=edges)
    width, height, pad = 340, 150, 24
    top = max(int(kept.max(initial=0)), int(dropped.max(initial=0)), 1)
    bw = (width - 2 * pad) / bins
    bars = []
    for i, (k, d) in enumerate(zip(kept, dropped)):
        x = pad + i * bw
        for count, colour, dx in ((k, "#457b9d", 0.0), (d, "#e63946", bw / 2)):
            if count:
                h = (height - 2 * pad) * count / top
                bars.append(f'<rect x="{x + dx:.1f}" y="{height - pad - h:.1f}" width="{bw / 2:.1f}" height="{h:.1f}" '
                            f'fill="{colour}"><title>{count} rows</title></rect>')
    label = (f'<text x="{pad}" y="{height - 6}" font-size="10">{esc(f"{edges[0]:.4g}")}</text>'
             f'<text x="{width - pad}" y="{height - 6}" font-size="10" text-anchor="end">{esc(f"{edges[-1]:.4g}")}</text>'
             f'<text x="{pad}" y="14" font-size="10">max {top} rows/bin</text>')
    axis = f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#888"/>'
    return (f'<svg width="{width}" height="{height}" role="img" '
            f'aria-label="histogram of {esc(name)}">{axis}{"".join(bars)}{label}</svg>')


def _table(header: Iterable[str], rows: Iterable[Iterable[Any]], numeric: Iterable[int] = ()) -> str:
    numeric = set(numeric)
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{esc(v)}</td>' if j in numeric else f"<td>{esc(v)}</td>" for j, v in enumerate(r)) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _funnel_section(steps: list[dict[str, Any]]) -> str:
    rows_in = max(steps[0]["left"], 1)
    rows = []
    for s in steps:
        bar = f'<div class="bar" style="width:{300 * s["left"] / rows_in:.0f}px"></div>'
        dropped = f'<span class="drop">-{s["dropped"]}</span>' if s["dropped"] else ""
        rows.append(f'<tr><td>{esc(s["step"])}</td><td class="num">{dropped}</td><td class="num">{s["left"]}</td><td>{bar}</td></tr>')
    return ('<table><tr><th>step</th><th>dropped</th><th>rows left</th><th></th></tr>' + "".join(rows) + "</table>")


def _histograms_section(scores: Mapping[str, np.ndarray], keep: np.ndarray) -> str:
    cards = []
    for name in sorted(scores):
        values = np.asarray(scores[name])
        if values.dtype.kind != "f":  # float scores; cluster ids and ranks are not distributions
            continue
        svg = histogram_svg(name, values, keep)
        if svg:
            cards.append(f'<div class="card"><h3>{esc(name)}</h3>{svg}</div>')
    legend = '<p class="legend"><span style="background:#457b9d"></span>kept<span style="background:#e63946"></span>dropped</p>'
    return legend + (f'<div class="grid">{"".join(cards)}</div>' if cards else "<p>No numeric score columns.</p>")


def _methods_section(report_dir: Path) -> str:
    parts = []
    for png in sorted(report_dir.glob("*.png")):
        if png.name.startswith("hist_"):
            continue
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        parts.append(f'<div class="card"><h3>{esc(png.stem)}</h3><img alt="{esc(png.stem)}" src="data:image/png;base64,{data}"></div>')
    for csv_path in sorted(report_dir.glob("*.csv")):
        import pyarrow.csv as pacsv

        table = pacsv.read_csv(csv_path)
        rows = [[_fmt(v) for v in r.values()] for r in table.slice(0, TABLE_ROWS).to_pylist()]
        more = f"<p>{table.num_rows - TABLE_ROWS} more rows in report/{esc(csv_path.name)}</p>" if table.num_rows > TABLE_ROWS else ""
        parts.append(f'<div class="card"><h3>{esc(csv_path.stem)}</h3>{_table(table.column_names, rows)}{more}</div>')
    return f'<div class="grid">{"".join(parts)}</div>' if parts else "<p>No method plots or tables for these scorers.</p>"


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _examples_section(examples: Mapping[str, list[tuple[str, str]]]) -> str:
    if not examples:
        return "<p>No rows were dropped.</p>"
    parts = []
    for reason, rows in sorted(examples.items()):
        cut = [(i, t if len(t) <= EXAMPLE_CHARS else t[:EXAMPLE_CHARS] + " ...") for i, t in rows]
        parts.append(f"<h3>{esc(reason)}</h3>{_table(['id', 'text'], cut)}")
    return "".join(parts)


def _manifest_section(manifest: Mapping[str, Any]) -> str:
    versions = _table(["package", "version"], sorted(manifest.get("versions", {}).items()))
    timings = _table(["phase", "seconds"], manifest.get("timings_s", {}).items(), numeric=[1])
    config = json.dumps(manifest.get("config", {}), indent=2, default=str)
    inp = manifest.get("input", {})
    return (f"<p>input: {esc(inp.get('path', ''))} (fingerprint {esc(str(inp.get('fingerprint', ''))[:16])})</p>"
            f'<div class="grid"><div class="card"><h3>versions</h3>{versions}</div>'
            f'<div class="card"><h3>timings</h3>{timings}</div></div><h3>config</h3><pre>{esc(config)}</pre>')


def render_report(*, manifest: Mapping[str, Any], scores: Mapping[str, np.ndarray], keep: np.ndarray,
                  examples: Mapping[str, list[tuple[str, str]]], report_dir: Path) -> str:
    """The page's HTML from a run's manifest, score columns, decisions and example rows."""
    counts = manifest["counts"]
    steps = funnel_steps(manifest["config"].get("selection", []), counts["rows_in"], counts["dropped_by_reason"])
    by_reason = sorted(counts["dropped_by_reason"].items(), key=lambda kv: (-kv[1], kv[0]))
    count_rows = [(r, n, f"{100 * n / max(counts['rows_in'], 1):.1f} %") for r, n in by_reason]
    bodies = {
        "funnel": ("Funnel", _funnel_section(steps)),
        "counts": ("Dropped by reason", _table(["reason", "rows", "share of rows in"], count_rows, numeric=[1, 2])
                   if count_rows else "<p>No rows were dropped.</p>"),
        "histograms": ("Score histograms: kept against dropped", _histograms_section(scores, keep)),
        "methods": ("Method plots and tables", _methods_section(report_dir)),
        "examples": (f"Example rows per drop reason (first {EXAMPLES_PER_REASON})", _examples_section(examples)),
        "manifest": ("Manifest summary", _manifest_section(manifest)),
    }
    sections = "".join(f'<section id="{key}"><h2>{esc(title)}</h2>{body}</section>' for key, (title, body) in
                       ((k, bodies[k]) for k in SECTIONS))
    title = f"datapruner run: kept {counts['kept']} of {counts['rows_in']} rows"
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>'
            f'<body><header><h1>{esc(title)}</h1><p>dropped {counts["dropped"]} rows '
            f'({counts.get("invalid_rows", 0)} invalid) by {len(steps) - 1} steps</p></header><main>{sections}</main>'
            f"<script>{SCRIPT}</script></body></html>")


def write_html_report(out_dir: Path, *, manifest: Mapping[str, Any], scores: Mapping[str, np.ndarray],
                      keep: np.ndarray, examples: Mapping[str, list[tuple[str, str]]]) -> Path:
    """Write `out_dir/report/index.html` (atomically) and return its path."""
    from datapruner.paths import atomic_path

    report_dir = Path(out_dir) / "report"
    report_dir.mkdir(parents=True, exist_ok=True)
    page = render_report(manifest=manifest, scores=scores, keep=np.asarray(keep, dtype=bool), examples=examples,
                         report_dir=report_dir)
    path = report_dir / "index.html"
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path
