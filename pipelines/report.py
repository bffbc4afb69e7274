"""The summary of a finished curation run, read back from its output folder (`datapruner report OUT_DIR`).

A folder is a run when it holds the `manifest.json` that `curate` writes last (its key
``datapruner_manifest`` marks it). Nothing is recomputed: counts come from the manifest, and the
file list says which outputs exist.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datapruner.errors import InputDataError

TOP_REASONS = 5


@dataclass(kw_only=True)
class RunSummary:
    """A finished run at a glance.

    Attributes
    ----------
    out_dir : the run's folder.
    rows_in, kept, dropped, invalid_rows : row counts.
    dropped_by_reason : {reason: rows}, largest first.
    files : {name: path} of the outputs that exist (pruned, scores, manifest, report).
    manifest : the whole manifest.
    """

    out_dir: Path
    rows_in: int
    kept: int
    dropped: int
    invalid_rows: int
    dropped_by_reason: dict[str, int]
    files: dict[str, Path]
    manifest: dict[str, Any]

    def top_reasons(self, n: int = TOP_REASONS) -> list[tuple[str, int, float]]:
        """The `n` reasons that dropped the most rows: (reason, rows, share of rows in)."""
        return [(r, c, c / max(self.rows_in, 1)) for r, c in list(self.dropped_by_reason.items())[:n]]


def run_summary(out_dir: str | Path) -> RunSummary:
    """Read a finished run's summary from `out_dir`.

    Raises
    ------
    InputDataError : the folder does not exist, or is not a finished run (no readable
        `manifest.json` from `datapruner run`).
    """
    out = Path(out_dir)
    if not out.is_dir():
        raise InputDataError(f"run folder {str(out)!r} does not exist; pass the --out folder of a `datapruner run`")
    path = out / "manifest.json"
    hint = "pass the --out folder of a finished `datapruner run` (it ends by writing manifest.json)"
    if not path.is_file():
        raise InputDataError(f"{str(out)!r} is not a curation run: it has no manifest.json; {hint}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputDataError(f"{path} is not a readable run manifest ({exc}); {hint}") from None
    if not isinstance(manifest, dict) or "datapruner_manifest" not in manifest or "counts" not in manifest:
        raise InputDataError(f"{path} is not a curation run manifest (no 'datapruner_manifest' and 'counts' keys); {hint}")
    counts = manifest["counts"]
    by_reason = dict(sorted(counts.get("dropped_by_reason", {}).items(), key=lambda kv: (-kv[1], kv[0])))
    candidates = {"pruned": out / "pruned", "scores": out / "scores.parquet", "manifest": path,
                  "report": out / "report" / "index.html"}
    return RunSummary(
        out_dir=out, rows_in=int(counts["rows_in"]), kept=int(counts["kept"]), dropped=int(counts["dropped"]),
        invalid_rows=int(counts.get("invalid_rows", 0)), dropped_by_reason=by_reason,
        files={k: p for k, p in candidates.items() if p.exists()}, manifest=manifest,
    )
