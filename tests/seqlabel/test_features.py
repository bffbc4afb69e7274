"""The pruner's two input features: the exact-match-with-query indicator (DrQA) and the bundled
bi-encoder's query-unit cosine added to the keep logit (the dense gate)."""

from __future__ import annotations

import numpy as np
import pytest


def test_dense_gate_start_recovers_known_logistic_models():
    from datapruner.pipelines.train_pruner import EncodedWindow, fit_dense_gate

    rng = np.random.default_rng(0)
    cos = rng.uniform(-0.2, 0.9, size=20_000)
    labels = (rng.uniform(size=cos.size) < 1 / (1 + np.exp(-(6.0 * cos - 3.0)))).astype(int)
    windows = []
    for k in range(0, cos.size, 10):  # windows of 10 tokens; rank label ~ sigmoid(4 x max cos - 2)
        c = cos[k : k + 10]
        rank = float(rng.uniform() < 1 / (1 + np.exp(-(4.0 * max(0.0, c.max()) - 2.0))))
        windows.append(EncodedWindow(ids=[0] * 11, types=[0] + [1] * 10, labels=[-100, *labels[k : k + 10].tolist()],
                                     rank_label=rank, source="synthetic", dense=[0.0, *c.tolist()]))
    a, b, c, d = fit_dense_gate(windows)
    assert a == pytest.approx(6.0, abs=0.4) and b == pytest.approx(-3.0, abs=0.25)
    assert c == pytest.approx(4.0, abs=1.5) and d == pytest.approx(-2.0, abs=1.2)


def test_exact_match_flags_shared_content_words_only():
    from transformers import AutoTokenizer

    from datapruner.models.embedder import bundled_embedder_path
    from datapruner.scorers.seqlabel_net import build_pruner_net

    tok = AutoTokenizer.from_pretrained(bundled_embedder_path())
    net = build_pruner_net(bundled_embedder_path(), match_feature=True)
    q = tok("Where was Marie Curie born?", add_special_tokens=False)["input_ids"]
    p = tok("Curie was born in Warsaw, where Marie studied.", add_special_tokens=False)["input_ids"]
    ids = [tok.cls_token_id, *q, tok.sep_token_id, *p, tok.sep_token_id]
    types = [0] * (len(q) + 2) + [1] * (len(p) + 1)
    import torch

    em = net.exact_match(torch.tensor([ids]), torch.tensor([types]))[0].tolist()
    flagged = {tok.convert_ids_to_tokens(i) for i, e in zip(ids, em) if e}
    assert flagged == {"cu", "##rie", "born", "marie"}  # word pieces; "was", "where", "in", punctuation, [SEP]: not content words
    assert not any(em[: len(q) + 2])  # query tokens are never flagged


@pytest.mark.slow
def test_each_unit_gets_its_own_query_cosine_across_passages(bundled_pruner):
    """score_units hands the network the cosine of each token's own unit (passage 2 included):
    the result equals a forward pass fed with cosines computed here from the embedder."""
    import torch

    from datapruner.models.shared import shared_embedder

    backend = bundled_pruner.backend
    if not backend.uses_dense_feature:
        pytest.skip("the shipped pruner has no dense feature")
    query = "Which river flows through Paris?"
    passages = ["The Seine flows through Paris. Lyon lies on the Rhone.", "Berlin is on the Spree. It is cold."]
    spans = [[(0, t.index(".") + 1), (t.index(".") + 2, len(t))] for t in passages]
    (p0, p1), _ = bundled_pruner.score_units(query, passages, spans)

    emb = shared_embedder()
    qv = emb.embed([query])[0]
    tok = backend.tokenizer
    q_ids = tok(query, add_special_tokens=False)["input_ids"]
    for text, units, got in zip(passages, spans, (p0, p1)):
        cos = emb.embed([text[s:e] for s, e in units]) @ qv
        expected = []
        for (s, e), c in zip(units, cos):
            enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
            ids = [tok.cls_token_id, *q_ids, tok.sep_token_id, *enc["input_ids"], tok.sep_token_id]
            n_q = len(q_ids) + 2
            dense = torch.zeros(1, len(ids))
            in_unit = [n_q + k for k, (a, b) in enumerate(enc["offset_mapping"]) if a < e and b > s]
            for j, (u_s, u_e) in enumerate(units):
                members = [n_q + k for k, (a, b) in enumerate(enc["offset_mapping"]) if a < u_e and b > u_s]
                dense[0, members] = float(cos[j])
            types = torch.tensor([[0] * n_q + [1] * (len(ids) - n_q)])
            with torch.inference_mode():
                keep, _ = backend.predict(torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.long), types, dense)
            expected.append(float(keep[0, in_unit].mean()))
        np.testing.assert_allclose(got, expected, atol=1e-5)
    trained_a = float(backend.net.dense_gate[0].detach())
    assert trained_a > 0  # a higher query-unit cosine raises the keep logit


@pytest.mark.slow
def test_the_dense_gate_uses_the_torch_encoder_whatever_curation_chose(bundled_pruner):
    """The gate was fitted on fp32 torch cosines: a process-wide int8 choice (curation's
    models.encoder_backend) must not change the pruner's keep-probabilities."""
    from datapruner.models import set_encoder_backend

    if not bundled_pruner.backend.uses_dense_feature:
        pytest.skip("the shipped pruner has no dense feature")
    query = "Which river flows through Paris?"
    passages = ["The Seine flows through Paris. Lyon lies on the Rhone.", "Berlin is on the Spree. It is cold."]
    spans = [[(0, t.index(".") + 1), (t.index(".") + 2, len(t))] for t in passages]
    reference, _ = bundled_pruner.score_units(query, passages, spans)
    before = set_encoder_backend(None)
    try:
        set_encoder_backend("onnx-int8")
        got, _ = bundled_pruner.score_units(query, passages, spans)
    finally:
        set_encoder_backend(before)
    for a, b in zip(reference, got):
        np.testing.assert_array_equal(a, b)
