"""benchmarks/compression.py --quick runs end to end and writes a well-formed JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_compression_benchmark_quick(tmp_path):
    import os

    env = dict(os.environ, DATAPRUNER_PROGRESS="0", HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    data_root = Path(env.get("DATAPRUNER_SHARED_DATA", ROOT.parent / "shared" / "data"))
    out = tmp_path / "compression_quick.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "compression.py"), "--quick", "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    if not out.exists():
        assert not (data_root / "qa").exists(), proc.stdout
        pytest.skip("QA data absent: the benchmark skipped with a message")
    res = json.loads(out.read_text())
    assert res["quick"] is True and res["complete"] is True
    assert res["environment"]["torch_threads"] == 1
    assert set(res["summary"]) == set(res["datasets"]) and res["datasets"]
    for ds, by_method in res["summary"].items():
        for m in ("fused", "fused_torch", "fused_onnx", "fused_cascade", "fused_rrf", "mig", "random", "lead", "bm25", "embedding"):
            assert m in by_method, (ds, m)
            for ratio, subsets in by_method[m].items():
                s = subsets["all"]
                assert s["n"] == res["datasets"][ds]["n"]
                if s["answer_recall"] is not None:
                    assert 0.0 <= s["answer_recall"] <= 1.0
                    lo, hi = s["answer_recall_ci95"]
                    assert 0.0 <= lo <= s["answer_recall"] <= hi <= 1.0
                if "evidence_recall" in s:
                    assert 0.0 <= s["evidence_recall"] <= 1.0
                # the project's methods and the library-machinery baselines never exceed the cap
                assert s["over_budget_count"] == 0, (ds, m, ratio)
                assert s["achieved_ratio"] is None or s["achieved_ratio"] >= float(ratio) * 0.999
        for recs in res["records"][ds].values():
            for rlist in recs.values():
                for r in rlist:  # the encoder-pass reference records latency only
                    assert r["latency_s"] >= 0 and ("tokens_after" not in r or 0 <= r["tokens_after"] <= r["tokens_before"])
    first = next(iter(res["summary"]))
    for m in ("perplexity", "seqlabel", "hybrid", "llmlingua", "longllmlingua"):
        assert res["summary"][first][m]["4"]["all"]["n"] >= 1
        assert res["summary"][first][m]["4"]["all"]["over_budget_count"] == 0 or m in ("llmlingua", "longllmlingua")
    assert set(res["latency_ratios_4x"]) == set(res["datasets"])  # default / encoder pass, per dataset
    assert set(res["speed_levers"][first]) == {"fused", "fused_torch", "fused_onnx", "fused_cascade"}
    assert res["summary"][first]["perplexity"]["4"]["all"]["over_budget_count"] == 0
    assert "llmlingua" in res["speed_vs_llmlingua_4x"][first]
    assert any("DynamicCache" in fix for fix in res["settings"]["llmlingua"]["offline_fixes"])
