"""configs/dedup-then-select.yaml on the seeded copies: each rule removes its own kind, and the
run report and `datapruner report` show what each removed."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from datapruner.cli import main
from datapruner.pipelines.curate import curate

CONFIG = Path(__file__).parents[2] / "configs" / "dedup-then-select.yaml"
EXACT = "drop_flagged(score=exact_duplicate)"
NEAR = "drop_flagged(score=minhash_duplicate)"


@pytest.mark.slow
def test_the_chain_removes_exact_then_near_copies(seeded_duplicates, tmp_path, capsys):
    _, rows = seeded_duplicates
    table = pa.table({"sentence": [r["text"] for r in rows], "label": [0] * len(rows)})
    result = curate(table, CONFIG, out=str(tmp_path / "run"))
    kinds = [r["kind"] for r in rows]
    by_kind = {k: [reason for kind, reason in zip(kinds, result.reason) if kind == k] for k in ("exact", "near", "distinct")}
    assert all(r == EXACT for r in by_kind["exact"])
    assert sum(r == NEAR for r in by_kind["near"]) >= 0.85 * len(by_kind["near"])
    assert not any(r in (EXACT, NEAR) for r in by_kind["distinct"])
    page = result.report_path.read_text(encoding="utf-8")
    assert EXACT in page and NEAR in page and "drop_flagged(score=semdedup_duplicate)" in page
    assert main(["report", str(result.out_dir)]) == 0
    out = capsys.readouterr().out
    assert f"{result.dropped_by_reason[EXACT]:>8}  {EXACT}" in out
    assert result.kept().num_rows == result.n_kept
