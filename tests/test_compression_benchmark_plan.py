"""The compression benchmark's bookkeeping: what each part planned, what fell short, and why a
table cell says "not run" (benchmarks/compression.py; no models are loaded)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import compression as bench  # noqa: E402


def _cases(n):
    return [{"id": f"q{i}"} for i in range(n)]


def test_the_plan_gives_slow_methods_their_own_questions_and_ratios_and_skips_the_long_case():
    cases = {"xquad": _cases(10), bench.LONG: _cases(3)}
    plan = bench.run_plan(cases, ["fused", "encoder_pass", "perplexity", "longllmlingua"], [2, 4, 8, 16], 5,
                          {"perplexity": (6, [2, 16]), "longllmlingua": (4, [4])})
    assert plan["xquad"]["fused"] == {"2": 10, "4": 10, "8": 10, "16": 10}
    assert plan["xquad"]["encoder_pass"] == {"4": 5}
    assert plan["xquad"]["perplexity"] == {"2": 6, "16": 6}
    assert plan["xquad"]["longllmlingua"] == {"4": 4}
    assert "perplexity" not in plan[bench.LONG] and plan[bench.LONG]["fused"] == {"4": 3, "8": 3, "16": 3}


def test_shortfalls_and_not_run_reasons_follow_the_plan():
    plan = {"nq": {"seqlabel": {"4": 3, "8": 3}, "fused": {"4": 2}}}
    records = {"nq": {"seqlabel": {"4": [{"id": "a"}, {"id": "b"}, {"id": "b"}]}, "fused": {"4": [{"id": "a"}, {"id": "b"}]}}}
    assert bench.shortfalls(plan, records) == ["nq/seqlabel/4x: 2 of 3 planned questions (stopped at the deadline)",
                                               "nq/seqlabel/8x: 0 of 3 planned questions (stopped at the deadline)"]
    assert "deadline" in bench.not_run_reason(plan, {}, "nq", "seqlabel", 8)
    assert bench.not_run_reason(plan, {}, "nq", "seqlabel", 2) == "not planned at 2x: ran at 4x, 8x (CPU budget)"
    assert bench.not_run_reason(plan, {}, "nq", "mig", 4) == "not in this run"
    assert bench.not_run_reason(plan, {"mig": "no model"}, "nq", "mig", 4) == "no model"


def test_a_part_can_carry_only_some_methods_and_an_old_part_gets_the_plan_of_what_it_holds(tmp_path):
    old = {"records": {"nq": {"fused": {"4": [{"id": "a"}]}, "llmlingua": {"4": [{"id": "a"}, {"id": "b"}]}}},
           "notes": ["nq/llmlingua/4x: 1 of 25 planned questions (stopped at the deadline)"]}
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    part = bench.read_part(f"{path}:llmlingua")
    assert set(part["records"]["nq"]) == {"llmlingua"}
    assert part["plan"] == {"nq": {"llmlingua": {"4": 2}}} and part["notes"] == []
    assert set(bench.read_part(str(path))["records"]["nq"]) == {"fused", "llmlingua"}
