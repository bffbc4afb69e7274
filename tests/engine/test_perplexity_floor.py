"""Perplexity at the LM's floor: gathered NLL, length bucketing across input batches, a per-row cache."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from datapruner.models.causal_lm import CausalLM, token_nll
from datapruner.pipelines.curate import curate


def test_gathered_nll_equals_log_softmax():
    import torch

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 7, 50, generator=g) * 4
    target = torch.randint(0, 50, (3, 7), generator=g)
    logp = torch.log_softmax(logits, dim=-1)
    expected = -logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    nll, ent = token_nll(logits, target)
    assert ent is None and torch.allclose(nll, expected, atol=1e-5)
    nll2, ent2 = token_nll(logits, target, entropy=True)
    assert torch.allclose(nll2, expected, atol=1e-6)
    assert torch.allclose(ent2, -(logp.exp() * logp).sum(-1), atol=1e-6)


@pytest.mark.slow
def test_token_stats_match_a_full_log_softmax(causal_lm, sst2_rows):
    """The model's own logits through a full log-softmax (the former path) give the same NLL."""
    import torch

    texts = [r["sentence"] for r in sst2_rows[:6]]
    stats = causal_lm.token_stats(texts)
    for text, s in zip(texts, stats):
        ids, first, _ = causal_lm.encode([text])
        x = torch.tensor(ids)
        with torch.inference_mode():
            logp = torch.log_softmax(causal_lm.model(input_ids=x).logits[:, :-1].float(), dim=-1)
        ref = -logp.gather(-1, x[:, 1:].unsqueeze(-1)).squeeze(-1)[0, first[0] - 1 :].numpy()
        assert s.entropy is None
        np.testing.assert_allclose(s.nll, ref, rtol=1e-4, atol=1e-4)


def _ppl_config(path, out, batch_size=32):
    return {
        "input": {"path": str(path), "columns": {"text": "sentence", "label": "label"}, "batch_size": batch_size},
        "output": {"dir": str(out), "plots": False},
        "models": {"lm_max_length": 256},
        "scorers": [{"name": "perplexity"}],
        "selection": [{"policy": "band", "score": "perplexity", "keep": 0.5, "band": "middle"}],
    }


@pytest.fixture()
def fresh_cache(tmp_path, monkeypatch, causal_lm):
    """An empty DATAPRUNER_CACHE (the LM is already loaded in this process, so nothing re-converts)."""
    monkeypatch.setenv("DATAPRUNER_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.slow
def test_rerun_reads_perplexity_from_the_row_cache(tmp_path, sst2_parquet, fresh_cache, monkeypatch):
    calls: list[int] = []
    original = CausalLM.token_stats

    def counting(self, texts, **kw):
        calls.append(len(texts))
        return original(self, texts, **kw)

    monkeypatch.setattr(CausalLM, "token_stats", counting)
    first = curate(_ppl_config(sst2_parquet, tmp_path / "a"))
    assert sum(calls) == 120
    # bucketing across input batches: 120 rows in batches of 32 reach the LM in one window
    assert calls == [120]
    calls.clear()
    again = curate(_ppl_config(sst2_parquet, tmp_path / "b", batch_size=7))
    assert calls == []
    assert pq.read_table(first.scores_path).equals(pq.read_table(again.scores_path))
    assert list((fresh_cache / "row-scores" / "perplexity").glob("*.sqlite"))


@pytest.mark.slow
def test_row_cache_recomputes_only_changed_texts(tmp_path, sst2_rows, fresh_cache, monkeypatch):
    import pyarrow as pa

    rows = [dict(r) for r in sst2_rows[:30]]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "a.parquet")
    rows[3]["sentence"] = rows[3]["sentence"] + " indeed"
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "b.parquet")
    first = curate(_ppl_config(tmp_path / "a.parquet", tmp_path / "out-a"))
    seen: list[list[str]] = []
    original = CausalLM.token_stats
    monkeypatch.setattr(CausalLM, "token_stats", lambda self, texts, **kw: seen.append(list(texts)) or original(self, texts, **kw))
    second = curate(_ppl_config(tmp_path / "b.parquet", tmp_path / "out-b"))
    assert seen == [[rows[3]["sentence"]]]
    a, b = first.scores["perplexity"], second.scores["perplexity"]
    assert np.array_equal(np.delete(a, 3), np.delete(b, 3)) and a[3] != b[3]
    # the cached values are what the LM computes on its own
    direct = np.array([s.perplexity for s in original(CausalLM(max_length=256), [r["sentence"] for r in rows[:5]])])
    np.testing.assert_allclose(b[:5], direct, rtol=1e-5)
