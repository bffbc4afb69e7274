"""docs/seqlabel.md and docs/encoders.md carry no hand-typed figures: their blocks are generated."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _update_docs():
    spec = importlib.util.spec_from_file_location("update_docs", ROOT / "benchmarks" / "update_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_blocks_are_up_to_date():
    ud = _update_docs()
    for doc in ud.DOCS:
        text = (ROOT / doc).read_text(encoding="utf-8")
        assert ud.BLOCK.search(text), f"{doc} has no generated block"
        assert ud.fill(text) == text, f"{doc} is stale: run benchmarks/update_docs.py"


def test_heldout_block_shows_the_recorded_metrics():
    ud = _update_docs()
    meta = json.loads((ROOT / "datapruner" / "assets" / "pruner" / "pruner.json").read_text())
    h = meta["heldout_metrics"]["hotpotqa_evidence_recall"]
    block = ud.pruner_heldout()
    assert f"| {h['seqlabel']['at_gold']:.3f} | {h['seqlabel']['at_5']:.3f} |" in block
    assert f"| {h['embedding']['at_gold']:.3f} | {h['embedding']['at_5']:.3f} |" in block
    beats = h["seqlabel"]["at_gold"] > h["embedding"]["at_gold"]
    assert ("does not beat" in block) != beats
