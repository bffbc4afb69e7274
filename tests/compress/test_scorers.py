"""Pure functions of B2 (perplexity chunks) and B3 (marginal information gain), on arrays."""

from __future__ import annotations

import numpy as np
import pytest

from datapruner.scorers import mig, perplexity_chunks as pc


def _unit(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def test_mig_scores_formula():
    e = np.stack([_unit([1, 0, 0]), _unit([1, 0.1, 0]), _unit([0, 1, 0])])
    q = _unit([1, 0, 0])
    got = mig.mig_scores(e, q, alpha=1.0, beta=1.0)
    sim = e @ e.T
    expected = [e[0] @ q - sim[0, 1], e[1] @ q - sim[1, 0], e[2] @ q - max(sim[2, 0], sim[2, 1])]
    np.testing.assert_allclose(got, expected)
    assert mig.mig_scores(e[:1], q).tolist() == pytest.approx([1.0])  # a single unit has no redundancy


def test_mig_order_gives_the_more_relevant_group_the_larger_share_of_every_prefix():
    q = _unit([1, 0, 0])
    near = [_unit([1, 0.1 * k, 0]) for k in range(1, 6)]
    far = [_unit([0.1, 0.1 * k, 1]) for k in range(1, 6)]
    e = np.stack(near + far)
    groups = np.array([0] * 5 + [1] * 5)
    order = mig.mig_order(e, q, np.full(10, 4), groups, np.zeros(10, dtype=bool), temperature=0.1)
    assert sorted(order.tolist()) == list(range(10))  # every unit once
    first_half = order[:5]
    assert (groups[first_half] == 0).sum() >= 4  # the relevant group holds most of any short prefix
    keep = mig.fill_in_order(np.full(10, 4), order, 20, np.zeros(10, dtype=bool))
    assert keep.sum() == 5 and keep[order[:5]].all()


def test_mmr_skips_a_duplicate_of_a_selected_unit():
    q = _unit([1, 1, 0])
    e = np.stack([_unit([1, 0.9, 0]), _unit([1, 0.9, 0.001]), _unit([0.3, 1, 0])])
    keep = mig.select_mig(e, q, np.array([5, 5, 5]), np.zeros(3, dtype=int), capacity=10)
    assert keep.tolist() == [True, False, True]


def test_spike_threshold_is_computed_on_the_differences():
    ppl = np.array([100, 101, 120, 102, 101, 100, 101, 100])
    d = np.abs(np.diff(ppl))
    theta = d.mean() + 0.2 * d.std()
    assert pc.spike_boundaries(ppl).tolist() == [2]
    # a threshold computed on the raw values (the original code's bug) would find no spike here
    raw_theta = ppl.mean() + 0.2 * ppl.std()
    assert not (ppl[2] - ppl[1] >= raw_theta) and ppl[2] - ppl[1] >= theta
    assert pc.blocks_from_boundaries(8, pc.spike_boundaries(ppl)) == [(0, 3), (3, 8)]
    assert pc.spike_boundaries(np.array([5.0, 6.0])).size == 0


def test_ami_and_longllmlingua_directions():
    base = np.array([3.0, 3.0])
    relevant, unrelated = np.array([1.0, 1.0]), np.array([3.0, 2.5])
    ami = pc.ami_scores(base, [relevant, unrelated])
    assert ami[0] > ami[1] and ami[0] == pytest.approx(np.exp(3) - np.exp(1))
    assert pc.longllmlingua_scores([relevant, unrelated]).tolist() == [1.0, 2.75]  # lower = more relevant


def test_chunk_rates_and_budgets():
    rel = np.array([10.0, 0.0, 5.0])
    np.testing.assert_allclose(pc.chunk_rates(rel, 0.2, beta=0.5), [0.3, 0.1, 0.2])
    budgets = pc.allocate_chunk_budgets(rel, np.array([100, 100, 100]), 60)
    assert budgets.sum() <= 60 and budgets[0] > budgets[2] > budgets[1]
    capped = pc.allocate_chunk_budgets(rel, np.array([10, 100, 100]), 150)
    assert capped[0] == 10 and capped.sum() >= 149  # the full chunk passes its excess on


def test_split_large_blocks_and_select_blocks():
    ppl = np.array([5, 6, 40, 7, 8, 50, 9])
    w = np.full(7, 10)
    blocks = pc.split_large_blocks([(0, 7)], ppl, w, 30)
    assert blocks == [(0, 2), (2, 5), (5, 7)] and all(w[a:b].sum() <= 30 for a, b in blocks)
    keep = pc.select_blocks(blocks, np.array([0.1, 1.0, 0.5]), w, 45, mandatory=np.eye(7, dtype=bool)[0])
    assert keep.tolist() == [True, False, True, True, True, False, False]


def test_long_chunks_are_split_into_windows_of_whole_units():
    scorer = pc.PerplexityScorer(lm=None, max_context=64)
    units = [[1] * 20, [2] * 20, [3] * 20, [4] * 100, [5] * 5]
    windows = scorer.windows(units, question_len=10)
    assert windows == [(0, 2), (2, 3), (3, 4), (4, 5)]  # every unit scored, none cut; room = 53 tokens
    assert [i for a, b in windows for i in range(a, b)] == list(range(len(units)))


@pytest.mark.slow
def test_batch_tokens_sizes_the_lm_batches_and_never_changes_the_scores(causal_lm, monkeypatch):
    from datapruner.scorers.compress_perplexity import PerplexityChunks

    monkeypatch.setattr("datapruner.scorers.compress_perplexity.shared_causal_lm", lambda name: causal_lm)
    assert PerplexityChunks().scorer().max_tokens_per_batch == pc.DEFAULT_BATCH_TOKENS
    assert PerplexityChunks(batch_tokens=64).scorer().max_tokens_per_batch == 64
    tok = causal_lm.tokenizer
    texts = ["Paris is the capital of France. It lies on the Seine.", "The bank charged me twice.",
             "A cat sat on the mat, and then it slept for a very long time in the afternoon sun."]
    contexts = [pc.PerplexityScorer(causal_lm).tokenize_units(t.split(". "), ". ") for t in texts]
    questions = [list(tok(" What is the capital of France?", add_special_tokens=False)["input_ids"])] * 3
    original, rows = pc.forward_with_cache, []  # rows: the batch size of each forward call
    monkeypatch.setattr(pc, "forward_with_cache", lambda model, **k: rows.append(k["input_ids"].shape[0]) or original(model, **k))
    forwards = []
    for budget in (1, 4096):  # one sequence per batch, then all three in one padded batch
        rows.clear()
        forwards.append((pc.PerplexityScorer(causal_lm, max_tokens_per_batch=budget).score(contexts, questions), list(rows)))
    (small, small_calls), (large, large_calls) = forwards
    assert max(small_calls) == 1 and max(large_calls) == 3  # the budget decides the batch rows
    for a, b in zip(small, large):
        np.testing.assert_allclose(a.question_nll, b.question_nll, atol=1e-4)
        for ua, ub in zip(a.unit_nll, b.unit_nll):
            np.testing.assert_allclose(ua, ub, atol=1e-4)


@pytest.mark.slow
def test_embed_full_splits_texts_beyond_the_embedder_window(embedder):
    from datapruner.compression.embedding import embed_full

    long_text = " ".join(f"sentence {i} talks about topic {i % 7}." for i in range(120))  # ~900 tokens
    short = "A short sentence."
    out = embed_full(embedder, [short, long_text])
    assert out.shape == (2, embedder.dim)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(out[0], embedder.embed([short])[0], rtol=1e-5, atol=1e-6)
    truncated = embedder.embed([long_text])[0]  # what the window alone would see
    assert float(out[1] @ truncated) < 0.999
