"""The fused method (METHODS.md B5): rank fusion, the learned weights and their command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from datapruner import Compressor
from datapruner.errors import ConfigError
from datapruner.scorers.fusion import FEATURES, LearnedFusion, bundled_weights_path, competition_ranks, mmr_order, rrf

ROOT = Path(__file__).resolve().parents[2]


def test_rrf_is_the_sum_of_reciprocal_ranks_with_k_60_and_shared_ranks_for_ties():
    f = np.array([[3.0, 0.1], [1.0, 0.9], [3.0, 0.5]])
    assert competition_ranks(f[:, 0]).tolist() == [1, 3, 1]
    expected = [1 / 61 + 1 / 63, 1 / 63 + 1 / 61, 1 / 61 + 1 / 62]
    np.testing.assert_allclose(rrf(f), expected)


def test_mmr_order_skips_a_near_duplicate_until_the_other_units_are_taken():
    fused = np.array([1.0, 0.99, 0.5])
    e = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert mmr_order(fused, e, redundancy=0.0).tolist() == [0, 1, 2]
    assert mmr_order(fused, e, redundancy=1.0).tolist() == [0, 2, 1]


def test_the_shipped_weights_load_and_were_fitted_on_the_training_split_only():
    model = LearnedFusion.load(bundled_weights_path())
    assert model.features == FEATURES and np.all(np.isfinite(model.coef))
    assert "training split" in model.meta["fitted_on"] and model.meta["command"].startswith("datapruner fit-fusion")
    assert bundled_weights_path().stat().st_size < 4096


def test_a_bad_weights_file_fails_naming_the_param_before_the_encoder_runs(tmp_path):
    bad = tmp_path / "w.json"
    bad.write_text(json.dumps({"features": ["x"], "coef": [1.0], "intercept": 0.0}))
    with pytest.raises(ConfigError, match="fit-fusion"):
        Compressor("fused", params={"fusion": "learned", "weights": str(bad)}).compress("q?", ["A b."], rate=0.5)
    with pytest.raises(ConfigError, match=r"params\.weights"):
        Compressor("fused", params={"fusion": "learned", "weights": str(tmp_path / "missing.json")}).compress(
            "q?", ["A b."], rate=0.5)
    with pytest.raises(ConfigError, match=r"params\.fusion"):
        Compressor("fused", params={"fusion": "mean"})


@pytest.mark.parametrize("params", [{}, {"fusion": "rrf"}, {"redundancy": 0.3}, {"cascade": 1.5}])
def test_fused_keeps_the_answer_where_random_units_lose_it(params, xquad_cases, answer_recall):
    cases = xquad_cases(12)
    fused = Compressor("fused", params=params).compress_batch([(c.question, c.passages) for c in cases], rate=0.25)
    rnd = Compressor("random").compress_batch([(c.question, c.passages) for c in cases], rate=0.25)
    assert all(r.tokens_after <= r.budget for r in fused)
    assert answer_recall(cases, [r.text for r in fused]) >= answer_recall(cases, [r.text for r in rnd]) + 0.2


@pytest.mark.slow
def test_fit_fusion_is_deterministic_and_writes_small_weights(tmp_path):
    data = Path(os.environ.get("DATAPRUNER_SHARED_DATA", ROOT.parent / "shared" / "data")) / "qa"
    if not data.is_dir():
        pytest.skip(f"{data} absent")
    env = dict(os.environ, HF_HUB_OFFLINE="1", DATAPRUNER_PROGRESS="0")
    outs = []
    for k in range(2):
        out = tmp_path / f"w{k}.json"
        subprocess.run([str(Path(sys.executable).parent / "datapruner"), "fit-fusion", "--data", str(data), "--out", str(out),
                        "--per-dataset", "4", "--threads", "1"], check=True, env=env, capture_output=True, timeout=600)
        outs.append(json.loads(out.read_text()))
    assert outs[0]["coef"] == outs[1]["coef"] and len(outs[0]["coef"]) == len(FEATURES)
    assert outs[0]["meta"]["requests"] >= 6 and outs[0]["meta"]["positives"] > 0


def test_the_default_fusion_is_the_learned_one(xquad_cases):
    from datapruner.scorers.compress_fused import FusedMethod

    assert FusedMethod().fusion == "learned"
    pairs = [(c.question, c.passages) for c in xquad_cases(4)]
    default = Compressor("fused").compress_batch(pairs, rate=0.25)
    learned = Compressor("fused", params={"fusion": "learned"}).compress_batch(pairs, rate=0.25)
    assert [r.text for r in default] == [r.text for r in learned]


def test_the_learned_fusion_ranks_the_cascades_encoded_units_on_their_own_z_scores():
    from datapruner.scorers.compress_fused import FusedMethod

    rng = np.random.default_rng(0)
    feats = rng.normal(size=(8, len(FEATURES)))
    encoded = np.array([True, False, True, True, False, True, False, True])
    feats[~encoded, FEATURES.index("dense_unit")] = -5.0  # the stand-in of a unit the cascade did not encode
    method = FusedMethod()
    scores = method.fused_scores(feats, encoded)
    np.testing.assert_allclose(scores[encoded], method.learned().score(feats[encoded]))
    assert scores[~encoded].max() < scores[encoded].min()
    lexical = rrf(feats[~encoded][:, [FEATURES.index("bm25_unit"), FEATURES.index("bm25_passage")]])
    assert np.argsort(-scores[~encoded], kind="stable").tolist() == np.argsort(-lexical, kind="stable").tolist()


@pytest.mark.parametrize("method, default", [("fused", "onnx-int8"), ("dense", "torch"), ("mig", "torch")])
def test_each_embedding_method_names_its_encoder_backend_in_params(method, default, tmp_path):
    from datapruner.models import set_encoder_backend
    from datapruner.registry import get_compression_method

    cls = get_compression_method(method)
    before = set_encoder_backend(None)
    try:
        set_encoder_backend("onnx")  # curation's process-wide choice does not reach a compression method
        assert cls().embedder.backend == default
    finally:
        set_encoder_backend(before)
    assert cls(backend="torch").embedder.backend == "torch"
    assert cls(embedder=str(tmp_path)).embedder.backend == "torch"
    with pytest.raises(ConfigError, match=r"params\.backend.*bundled MiniLM only"):
        Compressor(method, params={"embedder": str(tmp_path), "backend": "onnx-int8"})
    with pytest.raises(ConfigError, match=r"params\.backend"):
        Compressor(method, params={"backend": "tensorrt"})


def test_the_default_backend_keeps_what_fp32_torch_keeps_on_real_questions(xquad_cases, answer_recall):
    cases = xquad_cases(12)
    pairs = [(c.question, c.passages) for c in cases]
    int8 = Compressor("fused").compress_batch(pairs, rate=0.25)
    fp32 = Compressor("fused", params={"backend": "torch"}).compress_batch(pairs, rate=0.25)
    assert all(r.tokens_after <= r.budget for r in int8)
    assert answer_recall(cases, [r.text for r in int8]) >= answer_recall(cases, [r.text for r in fp32]) - 1 / 12
