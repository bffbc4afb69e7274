"""Bundled models load offline, behave sanely on real text, and unknown hub names fail fast."""

from __future__ import annotations

import os
import random
import subprocess
import sys

import numpy as np
import pytest

from datapruner.errors import ModelLoadError
from datapruner.models import CausalLM, Embedder, load_tokenizer

pytestmark = pytest.mark.slow


def test_bundled_models_are_offline(embedder, causal_lm):
    vecs = embedder.embed(["a stirring, funny film", "", "a dull movie"])
    assert vecs.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert causal_lm.tokenizer.pad_token_id is not None


def test_embedding_order_is_kept_despite_length_sorting(embedder):
    texts = ["short", "a considerably longer sentence about a film that goes on and on", "mid length text"]
    together = embedder.embed(texts)
    alone = np.stack([embedder.embed([t])[0] for t in texts])
    assert np.allclose(together, alone, atol=1e-4)


def test_natural_text_is_less_perplexing_than_shuffled_words(causal_lm, test_data):
    import csv

    with open(test_data / "classification" / "banking77_train.csv", encoding="utf-8") as f:
        texts = [r["text"] for r in csv.DictReader(f) if len(r["text"].split()) >= 12][:20]
    rng = random.Random(0)
    shuffled = []
    for t in texts:
        words = t.split()
        rng.shuffle(words)
        shuffled.append(" ".join(words))
    natural = [s.perplexity for s in causal_lm.token_stats(texts)]
    mixed = [s.perplexity for s in causal_lm.token_stats(shuffled)]
    assert np.median(natural) * 3 < np.median(mixed)
    assert sum(n < m for n, m in zip(natural, mixed)) >= 18


def test_padding_does_not_change_scores(causal_lm):
    texts = ["The bank charged me twice for one purchase.", "Why?"]
    batched = causal_lm.token_stats(texts, entropy=True)
    single = [causal_lm.token_stats([t], entropy=True)[0] for t in texts]
    for a, b in zip(batched, single):
        assert np.allclose(a.nll, b.nll, atol=1e-4) and np.allclose(a.entropy, b.entropy, atol=1e-3)


def test_response_only_scores_only_response_tokens(causal_lm):
    prompt, response = "What is the capital of France?", " The capital of France is Paris."
    full = causal_lm.token_stats([prompt + response])[0]
    resp = causal_lm.token_stats([response], prompts=[prompt])[0]
    n_resp = len(causal_lm.tokenizer(response, add_special_tokens=False)["input_ids"])
    assert resp.nll.size == n_resp < full.nll.size


def test_long_text_is_reported_truncated(causal_lm):
    stats = causal_lm.token_stats(["word " * 400])[0]
    assert stats.truncated and stats.nll.size == causal_lm.max_length - 1


def test_hub_name_fails_offline_and_says_to_pass_a_folder():
    with pytest.raises(ModelLoadError, match=r"not a local folder.*pass its path with --lm"):
        CausalLM("nobody/does-not-exist-lm").token_stats(["x"])
    with pytest.raises(ModelLoadError, match="--tokenizer"):
        load_tokenizer("nobody/does-not-exist-tok")
    with pytest.raises(ModelLoadError, match="--embedder"):
        Embedder("nobody/no-embedder").embed(["x"])


def test_any_local_hf_folder_loads_through_the_normal_path(tmp_path):
    """A user's own causal LM folder (here: a tiny llama saved with save_pretrained) scores text."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from datapruner.models.causal_lm import bundled_lm_folder

    config = LlamaConfig(vocab_size=49152, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2)
    LlamaForCausalLM(config).save_pretrained(tmp_path / "tiny")
    load_tokenizer("bundled-smollm2").save_pretrained(tmp_path / "tiny")
    stats = CausalLM(str(tmp_path / "tiny")).token_stats(["hello there"])[0]
    assert stats.nll.size > 0 and np.isfinite(stats.perplexity)
    assert bundled_lm_folder().is_dir()


def test_concurrent_conversion_into_a_fresh_cache(tmp_path):
    """Two processes converting the bundled GGUF at once both succeed and leave one folder."""
    code = "from datapruner.models.causal_lm import bundled_lm_folder; print(bundled_lm_folder())"
    env = {**os.environ, "DATAPRUNER_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-500:] for o in outs]
    folders = {o[0].strip() for o in outs}
    assert len(folders) == 1
    models = tmp_path / "cache" / "models"
    assert sorted(p.name for p in models.iterdir() if not p.name.endswith(".lock")) == ["SmolLM2-135M-Instruct"]


# ------------------------------------------------------------------ encoder backends


def _hotpot_sentences(test_data, n=120):
    import json

    records = json.loads((test_data / "qa" / "hotpotqa_heldout30.json").read_text(encoding="utf-8"))
    sents = [s for r in records for s in r["para_a"] + r["para_b"]]
    return [r["question"] for r in records[:10]] + sents[:n] + ["", "word " * 400]


def test_onnx_backends_match_torch_on_real_text(embedder, test_data):
    texts = _hotpot_sentences(test_data)
    ref = embedder.embed(texts)
    fp32 = Embedder(backend="onnx").embed(texts)
    int8 = Embedder(backend="onnx-int8").embed(texts)
    assert fp32.shape == int8.shape == ref.shape
    assert np.abs(fp32 - ref).max() < 1e-4
    cos = (int8 * ref).sum(1)
    assert cos.min() > 0.95 and cos.mean() > 0.98
    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-4)
    assert not np.allclose(int8, ref, atol=1e-4)  # int8 really is a different network


def test_encoder_backend_is_chosen_one_way(monkeypatch):
    from datapruner.models import encoder_backend, set_encoder_backend, shared_embedder

    before = encoder_backend()
    try:
        set_encoder_backend("onnx-int8")
        assert shared_embedder().backend == "onnx-int8"
        assert shared_embedder().model_id.endswith("onnx-int8")
        ids = {Embedder(backend=b).model_id for b in ("torch", "onnx", "onnx-int8")}
        assert len(ids) == 3  # every backend's vectors are cached apart
        assert shared_embedder(backend="torch").backend == "torch"
        assert Embedder("/models/my-st-folder").backend == "torch"  # a named folder always runs on torch
    finally:
        set_encoder_backend(before)
    with pytest.raises(ModelLoadError, match="tensorrt.*torch, onnx, onnx-int8"):
        set_encoder_backend("tensorrt")
    with pytest.raises(ModelLoadError, match="bundled embedder only"):
        Embedder("/models/my-st-folder", backend="onnx")


def test_missing_onnxruntime_names_the_package(monkeypatch):
    from datapruner.models.onnx_encoder import bundled_onnx_path

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    with pytest.raises(ModelLoadError, match="needs the package 'onnxruntime'.*encoder_backend: torch"):
        bundled_onnx_path("onnx")


def test_concurrent_onnx_export_into_a_fresh_cache(tmp_path):
    """Two processes exporting the bundled encoder at once both succeed and leave one graph of each kind."""
    code = ("from datapruner.models.onnx_encoder import bundled_onnx_path; "
            "print(bundled_onnx_path('onnx-int8'), bundled_onnx_path('onnx'))")
    env = {**os.environ, "DATAPRUNER_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-500:] for o in outs]
    assert len({o[0].strip() for o in outs}) == 1
    folder = tmp_path / "cache" / "models" / "all-MiniLM-L6-v2-onnx"
    assert sorted(p.name for p in folder.iterdir()) == ["model-int8.onnx", "model.onnx"]


def test_perplexity_scorer_question_nll_without_context_logits(causal_lm, caplog, monkeypatch):
    """The block pass computes the LM head on the last context position only: same question NLL,
    the cache passed the supported way (no deprecation warning from transformers)."""
    import logging

    from datapruner.scorers import perplexity_chunks as pc

    scorer = pc.PerplexityScorer(causal_lm, segment_tokens=16)  # several segments: the cache is carried
    tok = causal_lm.tokenizer
    contexts = [scorer.tokenize_units(["Paris is the capital of France.", "It lies on the Seine river, in the north."], " "),
                scorer.tokenize_units(["The bank charged me twice."], " ")]
    questions = [list(tok(" What is the capital of France?", add_special_tokens=False)["input_ids"])] * 2
    monkeypatch.setattr(logging.getLogger("transformers"), "propagate", True)  # let caplog see its warnings
    with caplog.at_level(logging.WARNING):
        full = scorer.score(contexts, questions)
        fast = scorer.score(contexts, questions, context_nll=False)
    assert not [r for r in caplog.records if "deprecated" in r.getMessage()]
    for a, b in zip(full, fast):
        np.testing.assert_allclose(a.question_nll, b.question_nll, atol=1e-4)
    assert all(u.size and u.sum() > 0 for u in full[0].unit_nll)
    assert full[0].question_nll.mean() < full[1].question_nll.mean()  # the relevant context helps
