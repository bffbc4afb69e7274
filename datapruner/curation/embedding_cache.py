"""On-disk embedding cache: one float16 memory map per (model, text content).

Key: the embedder's model id and the sha256 of every row's text in order (the ingest fingerprint).
A second run over the same texts re-embeds nothing; a changed text changes the key. The file is
written under a temporary name (`.<entry>.tmp-<pid>`) and renamed when complete, under the
entry's file lock, so a killed run never leaves a half-written cache entry; the next writer of
the entry (who holds the lock, so no other writer is alive) deletes temporary files killed
writers left.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from datapruner.paths import atomic_path, cache_dir, file_lock
from datapruner.progress import progress_bar

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class EmbeddingFile:
    """A complete cache entry: where the (n_rows, dim) float16 embeddings lie on disk.

    Small and picklable, so another process (a Ray worker) can open the same memory map.
    """

    path: Path
    n_rows: int
    dim: int

    def open(self) -> np.ndarray:
        """(n_rows, dim) read-only float16 memory map."""
        return np.memmap(self.path, dtype=np.float16, mode="r", shape=(self.n_rows, self.dim))


def cache_path(model_id: str, fingerprint: str) -> Path:
    """The cache file of embedder `model_id` over the texts with ingest fingerprint `fingerprint`."""
    return cache_dir() / "embeddings" / model_id / f"{fingerprint}.f16"


def _complete(path: Path) -> EmbeddingFile | None:
    meta = path.with_suffix(".json")
    if not (path.exists() and meta.exists()):
        return None
    info = json.loads(meta.read_text())
    return EmbeddingFile(path=path, n_rows=int(info["n_rows"]), dim=int(info["dim"]))


def cached_embeddings(dataset, embedder) -> np.ndarray:
    """(N, d) float16 memmap of the dataset's text embeddings, computing only what is not cached.

    Rows with invalid (null or empty) text get a zero vector; steps must consult `valid`.
    """
    return cached_embedding_file(dataset, embedder).open()


def cached_embedding_file(dataset, embedder) -> EmbeddingFile:
    """The cache entry of the dataset's text embeddings under `embedder`, computed once when missing.

    Parameters
    ----------
    dataset : `datapruner.curation.dataset.Dataset`
    embedder : `datapruner.models.Embedder` (its `model_id` is part of the key)

    Returns
    -------
    EmbeddingFile
    """
    info = dataset.ingest()
    path = cache_path(embedder.model_id, info.text_fingerprint)
    found = _complete(path)
    if found is not None:
        log.info("embedding cache hit: %s", path)
        return found
    with file_lock(path.with_suffix(".lock")):
        found = _complete(path)
        if found is not None:
            return found
        dim = embedder.dim

        def embed_into(tmp: Path) -> None:
            out = np.memmap(tmp, dtype=np.float16, mode="w+", shape=(info.n_rows, dim))
            with progress_bar("embedding", total=info.n_rows) as bar:
                for batch in dataset.batches():
                    rows = np.flatnonzero(batch.valid)
                    vecs = embedder.embed([batch.texts[i] for i in rows])
                    block = np.zeros((len(batch), dim), dtype=np.float16)
                    block[rows] = vecs.astype(np.float16)
                    out[batch.start : batch.start + len(batch)] = block
                    bar.advance(len(batch))
            out.flush()

        return _publish(path, embed_into, model_id=embedder.model_id, n_rows=info.n_rows, dim=dim)


def store_embeddings(model_id: str, fingerprint: str, write: Callable[[Path], Any], *, n_rows: int, dim: int) -> EmbeddingFile:
    """Publish embeddings as the cache entry of (`model_id`, `fingerprint`), atomically.

    Parameters
    ----------
    model_id : the embedder's `model_id`.
    fingerprint : the ingest pass's `text_fingerprint` of the dataset the rows belong to.
    write : called with a temporary path; writes the (n_rows, dim) float16 raw array there (e.g.
        through `numpy.memmap`). The entry appears under its final name only once it is complete,
        so a killed writer never leaves a half-written entry.
    n_rows, dim : the array's shape.

    Returns
    -------
    EmbeddingFile
        The new entry (what `cached_embedding_file` returns from then on). Benchmarks use this to
        place synthetic vectors in the cache without knowing its file layout.
    """
    path = cache_path(model_id, fingerprint)
    with file_lock(path.with_suffix(".lock")):
        return _publish(path, write, model_id=model_id, n_rows=n_rows, dim=dim)


def _publish(path: Path, write: Callable[[Path], Any], *, model_id: str, n_rows: int, dim: int) -> EmbeddingFile:
    """Write the entry at `path` through a temporary file; the caller holds the entry's lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.tmp-*"):  # left by killed writers (the lock is ours)
        log.info("removing %s, left by a killed embedding pass", stale)
        stale.unlink(missing_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    with atomic_path(path.with_suffix(".json")) as meta:
        meta.write_text(json.dumps({"n_rows": int(n_rows), "dim": int(dim), "model": model_id}))
    return EmbeddingFile(path=path, n_rows=int(n_rows), dim=int(dim))
