"""The docs carry no hand-typed figures: every generated block equals what its renderer makes."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _doc_blocks():
    spec = importlib.util.spec_from_file_location("doc_blocks", ROOT / "benchmarks" / "doc_blocks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_blocks_are_up_to_date():
    db = _doc_blocks()
    docs = db.docs_with_blocks()
    names = {m.group(2) for p in docs for m in db.BLOCK.finditer(p.read_text(encoding="utf-8"))}
    assert {"compression", "pruner-heldout", "encoder-backends", "perplexity-speed"} <= names
    for path in docs:
        text = path.read_text(encoding="utf-8")
        assert db.fill(text) == text, f"{path.name} is stale: run benchmarks/update_readme.py"


def test_heldout_block_shows_the_recorded_metrics():
    db = _doc_blocks()
    meta = json.loads((ROOT / "datapruner" / "assets" / "pruner" / "pruner.json").read_text())
    h = meta["heldout_metrics"]["hotpotqa_evidence_recall"]
    block = db.pruner_heldout()
    assert f"| {h['seqlabel']['at_gold']:.3f} | {h['seqlabel']['at_5']:.3f} |" in block
    assert f"| {h['embedding']['at_gold']:.3f} | {h['embedding']['at_5']:.3f} |" in block
    lower = h["seqlabel"]["at_gold"] < h["embedding"]["at_gold"]
    assert ("does not beat" in block) == lower
    counts = h["seqlabel_vs_embedding_at_gold"]
    assert f"higher on {counts['better']}, lower on {counts['worse']}, tied on {counts['tied']}" in block
    assert ("pruner beats the" in block) == (not lower and db.sign_test_p(counts["better"], counts["worse"]) < 0.05)


def test_sign_test_matches_the_binomial_tail():
    db = _doc_blocks()
    assert db.sign_test_p(1, 1) == 1.0
    assert db.sign_test_p(6, 0) == 2 / 64  # all 6 untied questions one way
    assert db.sign_test_p(0, 0) == 1.0
    assert db.pruner_verdict(0.01, {"better": 1, "worse": 1, "tied": 28}) == "is level with"
    assert db.pruner_verdict(0.05, {"better": 9, "worse": 1, "tied": 20}) == "beats"
    assert db.pruner_verdict(-0.01, {"better": 3, "worse": 4, "tied": 23}) == "does not beat"
