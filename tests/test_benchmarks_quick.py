"""The benchmarks still run: each script with `--quick` in a subprocess, on a small slice.

`--quick` writes `benchmarks/results/<name>_quick.json`, never the committed full results. The
data benchmarks skip (exit 0, "SKIP: ...") when the shared data folder is absent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
RESULTS = BENCH / "results"

pytestmark = pytest.mark.slow


def _run(script: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, DATAPRUNER_PROGRESS="0", HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(BENCH / script), "--quick", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _result(name: str, proc) -> dict | None:
    if "SKIP:" in proc.stdout:
        pytest.skip(proc.stdout.strip())
    path = RESULTS / f"{name}_quick.json"
    assert path.exists()
    d = json.loads(path.read_text())
    assert d["quick"] is True and d["threads"] == 1 and d["benchmark"] == name
    for key in ("command", "machine", "started_utc", "finished_utc"):
        assert key in d
    assert d["readme"]["title"] and d["readme"]["markdown"]
    return d


def test_noise_detection_quick():
    d = _result("noise_detection", _run("noise_detection.py"))
    assert {r["dataset"] for r in d["results"]} == {"sst2", "banking77"}
    for r in d["results"]:
        assert r["noise_rate"] == 0.2 and r["n_flipped"] == round(0.2 * r["n_train"])
        assert set(r["detectors"]) == {"cleanlab_anchor", "confident_learning", "el2n", "quadrants", "combined", "text_blend", "refit_clean"}
        for m in r["detectors"].values():
            for key in ("precision", "recall", "f1", "auroc"):
                assert 0.0 <= m[key] <= 1.0
        # a real detector beats chance (AUROC 0.5) on injected flips
        assert r["detectors"]["el2n"]["auroc"] > 0.6
        assert r["detectors"]["confident_learning"]["auroc"] > 0.6


def test_noise_detection_heldout_quick():
    d = _result("noise_detection_heldout", _run("noise_detection.py", "--heldout"))
    assert [r["dataset"] for r in d["results"]] == ["trec", "sms_spam"] and not d["not_run"]
    for r in d["results"]:
        assert r["noise_rate"] == 0.2 and r["detectors"]["refit_clean"]["auroc"] > 0.6
    assert d["readme"]["title"].startswith("Label-noise detection on held-out datasets")
    assert "| trec | 20% |" in d["readme"]["markdown"] and "| sms_spam | 20% |" in d["readme"]["markdown"]


def test_pruning_curve_quick():
    d = _result("pruning_curve", _run("pruning_curve.py", "--datasets", "sst2"))
    assert set(d["results"]) == {"sst2/clean", "sst2/noise20"}
    for key, r in d["results"].items():
        assert set(r["curves"]) == set(d["methods"])
        for method, curve in r["curves"].items():
            for f in d["fractions"]:
                assert 0.0 <= curve[str(f)]["mean"] <= 1.0
        # every method keeps the budget (chains that drop rows first may keep fewer)
        n = r["n_train"]
        assert r["curves"]["el2n_hard"]["0.3"]["n_kept"] == round(0.3 * n)
        assert r["curves"]["random"]["1.0"]["mean"] > 0.6  # SST-2 with MiniLM is well above chance
        assert (RESULTS / Path(d["plots"][key]).name).exists()
    head = d["headline"]["sst2/noise20"]
    assert set(head["methods"]) == set(d["methods"]) and "minus_full" in head["best"]


def test_pruning_curve_heldout_quick():
    d = _result("pruning_curve_heldout", _run("pruning_curve.py", "--heldout"))
    assert set(d["results"]) == {"trec/clean", "trec/noise20", "sms_spam/clean", "sms_spam/noise20"}
    assert d["methods"] == ["random", "recommended", "cl_easy_pc", "cl_coverage_pc", "el2n_easy_pc", "coverage_pc"]
    for key, r in d["results"].items():
        assert set(r["curves"]) == set(d["methods"])
        assert r["n_classes"] == (6 if r["dataset"] == "trec" else 2)
        assert r["curves"]["random"]["1.0"]["mean"] > (0.5 if r["dataset"] == "trec" else 0.85)  # well above chance
        assert (RESULTS / Path(d["plots"][key]).name).exists()
    assert d["readme"]["title"].startswith("Data pruning on held-out datasets") and "trec/noise20" in d["readme"]["markdown"]


def test_throughput_quick():
    d = _result("throughput", _run("throughput.py", "--rounds", "2"))
    assert [r["dataset"] for r in d["runs"]] == ["sst2 train", "banking77 train"]  # both in one run
    for r in d["runs"]:
        assert r["n_rows"] == 500
        assert r["floor"]["rows_per_s"] > 0 and r["pipeline"]["rows_per_s"] > 0
        assert r["ratio_pipeline_over_floor"] > 0.0  # the speed goal is the benchmark's, not this smoke test's
        assert len(r["rounds"]) == 2 and all(x["n_kept"] == r["pipeline"]["n_kept"] for x in r["rounds"])  # each round embedded anew


def test_encoder_batching_quick():
    d = _result("encoder_batching", _run("encoder_batching.py"))
    assert set(d["results"]) == {"torch/requests", "torch/bulk", "onnx-int8/requests", "onnx-int8/bulk"}
    for key, r in d["results"].items():
        assert r["budgets"]["8192"]["ratio_to_reference"] == 1.0 and r["texts"] > r["calls"]
        # torch embeds a text alike in any batch; int8's per-batch activation scales move it a little
        bound = 1e-4 if key.startswith("torch") else 0.1
        assert all(v["max_abs_diff"] < bound for v in r["budgets"].values())


def test_perplexity_batching_quick():
    d = _result("perplexity_batching", _run("perplexity_batching.py"))
    assert d["questions"] == 1 and set(d["summary"]) == {str(b) for b in d["budgets"]}
    assert d["summary"][str(d["reference"])]["ratio_of_totals"] == 1.0
    for s in d["summary"].values():
        assert s["seconds_total"] > 0 and 0 <= s["same_text"] <= 1


def test_proxy_precision_quick():
    d = _result("proxy_precision", _run("proxy_precision.py", "--rounds", "1"))
    assert [r["dataset"] for r in d["runs"]] == ["sst2 train", "banking77 train"]
    for r in d["runs"]:
        assert r["n_rows"] == 1000 and set(r["seconds"]) == {"fp32", "bf16"}
        assert 0.9 < r["el2n_spearman"] <= 1.0 and 0.0 < r["el2n_max_abs_diff"] < 0.1  # rounding, not another method
        assert all(0.0 < q["cl_f1"] < 1.0 for q in r["quality"].values())


def test_memory_quick():
    d = _result("memory", _run("memory.py"))
    assert d["sizes"] == [5000, 20000]
    for r in d["runs"]:
        assert r["peak_rss_bytes"] > 50 * 2**20
        assert not r["embedder_loaded"]  # embeddings came from the pre-populated cache
        assert 0 < r["n_kept"] <= r["n_rows"] // 2 + 1
    assert 0.5 < d["peak_rss_ratio"] < 4.0  # 4x the rows must not cost anything like 4x the memory


def test_update_readme_renders(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- BENCHMARKS:START -->\nSTALE-PLACEHOLDER\n<!-- BENCHMARKS:END -->\ntail\n")
    proc = subprocess.run([sys.executable, str(BENCH / "update_readme.py"), "--readme", str(readme)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    text = readme.read_text()
    assert "STALE-PLACEHOLDER" not in text and text.endswith("<!-- BENCHMARKS:END -->\ntail\n") and "## Benchmarks" in text
    check = subprocess.run([sys.executable, str(BENCH / "update_readme.py"), "--readme", str(readme), "--check"], cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0


def test_proxy_cv_seeds_quick():
    d = _result("proxy_cv_seeds", _run("proxy_cv_seeds.py", "--rounds", "1", "--datasets", "sst2,trec"))
    assert [(r["dataset"], r["heldout"]) for r in d["runs"]] == [("sst2 train", False), ("trec train", True)]
    for r in d["runs"]:
        assert r["n_rows"] == 1000 and set(r["seconds"]) == set(r["quality"]) == {"1", "5"}
        assert all(0.0 < q["cl_f1"] < 1.0 and 0.5 < q["auroc"] <= 1.0 for q in r["quality"].values())
        assert r["quality"]["1"]["auroc"] != r["quality"]["5"]["auroc"]  # the two settings are different fits
