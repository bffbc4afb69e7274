"""The embedding pass of a run: one length-sorted pass over the whole dataset, each vector at its row."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from datapruner.curation.dataset import ColumnMap, Dataset
from datapruner.curation.embedding_cache import EmbeddingRows, embed_dataset
from datapruner.models import Embedder

TEXTS = ["a short one", None, "a much longer sentence about rivers, stones, clouds and the colour of paper in the rain",
         "mid length text here", "", "x", "another fairly long sentence, with commas, that pads a batch a lot more",
         "two words", "the quick brown fox jumps over the lazy dog", "ok", "   ", "final row of the input file"]


class RecordingEmbedder(Embedder):
    """The bundled embedder, recording how many texts each sorted pass was given."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.passes: list[int] = []

    def embed_groups(self, texts):
        self.passes.append(len(texts))
        return super().embed_groups(texts)


def _dataset(tmp_path) -> Dataset:
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"text": pa.array(TEXTS, pa.string())}), path)
    return Dataset(path, format="parquet", columns=ColumnMap(text="text"), batch_size=4)


def test_one_sorted_pass_over_every_input_batch_writes_each_vector_to_its_row(tmp_path):
    dataset = _dataset(tmp_path)
    valid = dataset.ingest().valid
    embedder = RecordingEmbedder(max_tokens_per_batch=64)
    embed_dataset(dataset, embedder, tmp_path / "e.f16")
    assert embedder.passes == [int(valid.sum())]  # one pass over the 3 input batches, not one per batch
    got = np.asarray(EmbeddingRows(tmp_path / "e.f16", n_rows=len(TEXTS), dim=embedder.dim), dtype=np.float32)
    want = embedder.embed([t for t, v in zip(TEXTS, valid) if v])
    np.testing.assert_allclose(got[valid], want, atol=2e-3)
    assert not got[~valid].any()  # null, empty and blank texts get zero rows
    embedder.passes.clear()
    embed_dataset(dataset, embedder, tmp_path / "w.f16", window_rows=4)  # bounded windows: one pass per window
    assert embedder.passes == [3, 3, 3]
    windowed = np.asarray(EmbeddingRows(tmp_path / "w.f16", n_rows=len(TEXTS), dim=embedder.dim), dtype=np.float32)
    np.testing.assert_allclose(windowed, got, atol=2e-3)


def test_embed_groups_sorts_the_whole_list_by_token_length():
    embedder = Embedder(max_tokens_per_batch=64)
    texts = [t for t in TEXTS if t and t.strip()]
    lengths = embedder.token_lengths(texts)
    groups = list(embedder.embed_groups(texts))
    assert len(groups) > 1
    order = np.concatenate([idx for idx, _ in groups])
    assert sorted(order.tolist()) == list(range(len(texts)))
    assert np.all(np.diff(lengths[order]) <= 0)  # longest first across all batches
    for idx, vecs in groups:
        assert len(idx) * lengths[idx].max() <= 64 or len(idx) == 1  # each batch fits the token budget
        np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
