"""On-disk embedding cache: one raw float16 (n_rows, dim) file per (model, text content).

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

    def open(self) -> "EmbeddingRows":
        """(n_rows, dim) read-only float16 rows, read from the file on demand."""
        return EmbeddingRows(self.path, n_rows=self.n_rows, dim=self.dim)


class EmbeddingRows:
    """A read-only (n_rows, dim) float16 array on disk, read with positional reads.

    Indexing (`rows[5]`, `rows[a:b]`, an index array or a boolean mask) returns a fresh in-memory
    float16 array; `numpy.asarray(rows)` reads the whole file. Nothing stays resident between reads.
    Picklable (path and shape), so another process can read the same entry.
    """

    dtype = np.dtype(np.float16)
    ndim = 2

    def __init__(self, path: Path, *, n_rows: int, dim: int):
        self.path = Path(path)
        self.shape = (int(n_rows), int(dim))
        self._row_bytes = self.shape[1] * self.dtype.itemsize
        self._fd: int | None = None

    def __getstate__(self):
        return {**self.__dict__, "_fd": None}

    def __del__(self):
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)

    def __len__(self) -> int:
        return self.shape[0]

    def _read(self, start: int, stop: int) -> np.ndarray:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        n = max(0, stop - start)
        buf = bytearray(n * self._row_bytes)
        view, done = memoryview(buf), 0
        while done < len(buf):
            got = os.preadv(self._fd, [view[done:]], start * self._row_bytes + done)
            if got == 0:
                raise OSError(f"embedding cache file {self.path} is shorter than {self.shape[0]} rows; delete it to recompute")
            done += got
        return np.frombuffer(buf, dtype=self.dtype).reshape(n, self.shape[1])

    def __getitem__(self, key) -> np.ndarray:
        n = self.shape[0]
        if isinstance(key, tuple):
            rows, rest = key[0], key[1:]
            return self[rows][(slice(None), *rest)]
        if isinstance(key, (int, np.integer)):
            i = int(key) + (n if key < 0 else 0)
            if not 0 <= i < n:
                raise IndexError(f"row {int(key)} is outside 0..{n - 1}")
            return self._read(i, i + 1)[0]
        if isinstance(key, slice):
            start, stop, step = key.indices(n)
            if step == 1:
                return self._read(start, stop)
            return self[np.arange(start, stop, step)]
        index = np.asarray(key)
        if index.dtype == bool:
            if index.shape != (n,):
                raise IndexError(f"boolean mask has shape {index.shape}; expected ({n},)")
            index = np.flatnonzero(index)
        index = index.astype(np.int64, copy=False).reshape(-1)
        index = np.where(index < 0, index + n, index)
        if index.size and (index.min() < 0 or index.max() >= n):
            raise IndexError(f"row index outside 0..{n - 1}")
        unique, inverse = np.unique(index, return_inverse=True)
        out = np.empty((len(unique), self.shape[1]), dtype=self.dtype)
        breaks = np.flatnonzero(np.diff(unique) != 1) + 1
        for lo, hi in zip(np.r_[0, breaks], np.r_[breaks, len(unique)]):
            if hi > lo:
                out[lo:hi] = self._read(int(unique[lo]), int(unique[hi - 1]) + 1)
        return out[inverse.reshape(-1)]

    def __array__(self, dtype=None, copy=None):
        out = self._read(0, self.shape[0])
        return out if dtype is None else out.astype(dtype, copy=False)


def cache_path(model_id: str, fingerprint: str) -> Path:
    """The cache file of embedder `model_id` over the texts with ingest fingerprint `fingerprint`."""
    return cache_dir() / "embeddings" / model_id / f"{fingerprint}.f16"


def _complete(path: Path) -> EmbeddingFile | None:
    meta = path.with_suffix(".json")
    if not (path.exists() and meta.exists()):
        return None
    info = json.loads(meta.read_text())
    return EmbeddingFile(path=path, n_rows=int(info["n_rows"]), dim=int(info["dim"]))


def cached_embeddings(dataset, embedder) -> EmbeddingRows:
    """(N, d) float16 rows of the dataset's text embeddings, computing only what is not cached.

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
        return _publish(path, lambda tmp: embed_dataset(dataset, embedder, tmp), model_id=embedder.model_id,
                        n_rows=info.n_rows, dim=dim)


EMBED_WINDOW_ROWS = 1 << 20  # rows whose texts are held (and length-sorted together) at once


def embed_dataset(dataset, embedder, path: Path, *, window_rows: int = EMBED_WINDOW_ROWS) -> None:
    """Write the (N, dim) float16 embeddings of every row of `dataset` to `path` (zero rows where text is invalid).

    One pass: the valid texts of each window of `window_rows` rows (the whole dataset when it is
    smaller) are length-sorted together by `Embedder.embed_groups`, so batches pad to similar
    lengths across the whole window, not per input batch; each vector is written to its row.
    """
    info = dataset.ingest()
    dim = embedder.dim
    row_bytes = dim * 2
    with open(path, "wb") as f:
        f.truncate(info.n_rows * row_bytes)  # a sparse file: invalid rows read back as zeros
    fd = os.open(path, os.O_WRONLY)
    try:
        with progress_bar("embedding", total=int(info.valid.sum())) as bar:
            for rows, texts in _text_windows(dataset, window_rows):
                for positions, vecs in embedder.embed_groups(texts):
                    _write_rows(fd, rows[positions], vecs.astype(np.float16), row_bytes)
                    bar.advance(len(positions))
        os.fsync(fd)
    finally:
        os.close(fd)


def _text_windows(dataset, window_rows: int):
    """(global row indices, texts) of the valid rows, `window_rows` input rows at a time."""
    rows: list[np.ndarray] = []
    texts: list[str] = []
    held = 0
    for batch in dataset.batches():
        idx = np.flatnonzero(batch.valid)
        rows.append(batch.start + idx)
        texts.extend(batch.texts[i] for i in idx)
        held += len(batch)
        if held >= window_rows:
            yield np.concatenate(rows), texts
            rows, texts, held = [], [], 0
    if texts:
        yield np.concatenate(rows), texts


def _write_rows(fd: int, rows: np.ndarray, vecs: np.ndarray, row_bytes: int) -> None:
    """Write `vecs[i]` at row `rows[i]` of the file, one write per run of consecutive rows."""
    order = np.argsort(rows, kind="stable")
    rows, vecs = rows[order], vecs[order]
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    for lo, hi in zip(np.r_[0, breaks], np.r_[breaks, len(rows)]):
        if hi > lo:
            os.pwrite(fd, np.ascontiguousarray(vecs[lo:hi]).tobytes(), int(rows[lo]) * row_bytes)


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
