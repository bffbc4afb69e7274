"""The compression benchmark's LMReuse: the perplexity method's LM passes shared across ratios
(benchmarks/compression.py), with the bundled SmolLM2."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import compression as bench  # noqa: E402


def test_lm_reuse_scores_each_sequence_once_and_returns_what_a_fresh_pass_gives(causal_lm, monkeypatch):
    from datapruner.scorers import perplexity_chunks as pc

    calls = []
    original = pc.PerplexityScorer.score

    def counting(scorer, contexts, questions, *, context_nll=True):
        calls.append(len(contexts))
        return original(scorer, contexts, questions, context_nll=context_nll)

    monkeypatch.setattr(pc.PerplexityScorer, "score", counting)  # restored after the test, LMReuse's patch with it
    reuse = bench.LMReuse()
    scorer = pc.PerplexityScorer(causal_lm)
    tok = causal_lm.tokenizer
    a = scorer.tokenize_units(["Paris is the capital of France.", "It lies on the Seine."], " ")
    b = scorer.tokenize_units(["The bank charged me twice."], " ")
    q = list(tok(" What is the capital of France?", add_special_tokens=False)["input_ids"])

    fresh = scorer.score([a, b], [q, q])  # inactive: the plain pass
    assert calls == [2] and not reuse.store
    reuse.active = True
    first = scorer.score([a, b, a], [q, q, q])  # the repeated sequence is scored once
    again = scorer.score([b, a], [q, q])
    assert calls == [2, 2] and len(reuse.store) == 2
    for x, y in zip(first, [*fresh, fresh[0]]):
        np.testing.assert_allclose(x.question_nll, y.question_nll, atol=1e-4)
        for ux, uy in zip(x.unit_nll, y.unit_nll):
            np.testing.assert_allclose(ux, uy, atol=1e-4)
    assert again[0] is first[1] and again[1] is first[0]
    # the same tokens cut into other units, or scored without context NLLs, are other sequences
    merged = [a[0] + a[1]]
    scorer.score([merged], [q])
    scorer.score([a], [q], context_nll=False)
    assert calls == [2, 2, 1, 1] and len(reuse.store) == 4
