"""Perplexity band pruning end to end: the README's one-liner and the shipped config."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datapruner.cli import main
from datapruner.curation.embedding_cache import cache_path
from datapruner.pipelines.curate import curate

pytestmark = pytest.mark.slow
CONFIGS = Path(__file__).parents[2] / "configs"


def test_exact_readme_prune_command(tmp_path, sst2_rows, monkeypatch, causal_lm):
    rows = [{"text": r["sentence"], "label": r["label"]} for r in sst2_rows[:40]]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "data.parquet")
    monkeypatch.chdir(tmp_path)
    code = main("prune --input data.parquet --scorer perplexity --keep 0.5 --band middle --out out/ --threads 1".split())
    assert code == 0
    scores = pq.read_table(tmp_path / "out" / "scores.parquet").to_pydict()
    ppl = np.array(scores["perplexity"])
    keep = np.array(scores["keep"])
    assert keep.sum() == 20 and np.all(np.isfinite(ppl))
    # a middle band: everything kept lies between the dropped lowest and highest
    assert ppl[keep].min() > ppl.min() and ppl[keep].max() < ppl.max()
    assert pq.read_table(tmp_path / "out" / "pruned").schema.names == ["text", "label"]


def test_shipped_perplexity_config_runs(tmp_path, causal_lm):
    result = curate(CONFIGS / "curate-perplexity.yaml", out=str(tmp_path / "o"))
    assert result.n_rows == 800 and result.n_kept == 400
    manifest = json.loads(result.manifest_path.read_text())
    assert manifest["models"]["lm"] == "bundled-smollm2"
    assert (tmp_path / "o" / "report" / "hist_perplexity.png").exists()


def test_second_run_reembeds_nothing(tmp_path, sst2_parquet, embedder, monkeypatch):
    from datapruner.curation.dataset import ColumnMap, Dataset
    from datapruner.curation.embedding_cache import cached_embeddings

    monkeypatch.setenv("DATAPRUNER_CACHE", str(tmp_path / "cache"))
    ds = Dataset(sst2_parquet, columns=ColumnMap(text="sentence"), batch_size=50)
    first = np.array(cached_embeddings(ds, embedder))
    path = cache_path(embedder.model_id, ds.ingest().text_fingerprint)
    assert path.exists()
    calls = []
    for name in ("embed", "embed_groups"):  # the cache fills a missing entry through embed_groups
        monkeypatch.setattr(embedder, name, lambda *args, name=name, **kwargs: calls.append(name))
    again = np.array(cached_embeddings(Dataset(sst2_parquet, columns=ColumnMap(text="sentence"), batch_size=7), embedder))
    assert calls == [] and np.array_equal(first, again)
    assert first.dtype == np.float16 and np.allclose(np.linalg.norm(first.astype(np.float32), axis=1), 1, atol=1e-2)
