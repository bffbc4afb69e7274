"""Checks of a run's outputs read back from disk, before the run is published.

`check_scores_file` reads `scores.parquet` and checks it holds every ingested id exactly once, in
input order, and that `keep` and `reason` agree (`reason == "kept"` exactly where `keep`). It
returns the row counts taken from the file, which the manifest records.
`check_pruned_folder` checks that `pruned/` holds exactly the rows with `keep = true`: the row
count from the shards' metadata, and a digest of a key column compared with the digest of the
same column of the kept rows. The key column is the mapped id column when there is one (compared
with the kept ids of `scores.parquet`), else the text column (compared with the input's text,
re-streamed and filtered by the `keep` read from disk). Digests hash Arrow buffers, so no
per-row Python objects are made, whatever the run's size.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from datapruner.errors import OutputCheckError

KEPT = "kept"


class ColumnDigest:
    """An order-sensitive digest of a string column fed in chunks (independent of how it is chunked)."""

    def __init__(self):
        self._lengths, self._data, self._nulls = hashlib.sha256(), hashlib.sha256(), hashlib.sha256()
        self.n = 0

    def update(self, array: pa.Array | pa.ChunkedArray) -> None:
        """Add the values of `array` (cast to strings)."""
        chunks = array.chunks if isinstance(array, pa.ChunkedArray) else [array]
        for chunk in chunks:
            chunk = chunk.cast(pa.large_string())
            if len(chunk) == 0:
                continue
            offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int64)[chunk.offset : chunk.offset + len(chunk) + 1]
            data = chunk.buffers()[2]
            self._lengths.update(np.diff(offsets).tobytes())
            if data is not None:
                self._data.update(memoryview(data)[offsets[0] : offsets[-1]])
            self._nulls.update(pc.is_null(chunk).to_numpy(zero_copy_only=False).tobytes())
            self.n += len(chunk)

    def hexdigest(self) -> str:
        """The digest of every value added so far."""
        return hashlib.sha256(self._lengths.digest() + self._data.digest() + self._nulls.digest()).hexdigest()


def _fail(folder: Path, what: str) -> None:
    raise OutputCheckError(
        f"output check failed in {str(folder)!r}: {what}. The run was not published (the output folder is "
        f"as before); this is a bug in datapruner, please report it with the config"
    )


CHECK_BATCH_ROWS = 1 << 18  # rows of scores.parquet read back at once


def check_scores_file(folder: Path, ids: pa.Array, *, selected: bool) -> dict:
    """Check `folder/scores.parquet` against the ingested `ids`; return counts read from the file.

    The file is read back in batches of `CHECK_BATCH_ROWS` rows. Its ids must equal the ingested
    ids row for row (which ingest checked are unique, so the file holds each id exactly once).

    Returns
    -------
    dict with rows_in, kept, dropped and dropped_by_reason (when `selected`).
    """
    folder = Path(folder)
    file = pq.ParquetFile(folder / "scores.parquet")
    n = file.metadata.num_rows
    if n != len(ids):
        _fail(folder, f"scores.parquet has {n} rows; {len(ids)} rows were read from the input")
    n_kept, by_reason, start = 0, {}, 0
    for batch in file.iter_batches(batch_size=CHECK_BATCH_ROWS, columns=["id", "reason"] + (["keep"] if selected else [])):
        on_disk = batch.column("id")
        if on_disk.null_count:
            _fail(folder, "scores.parquet holds a null id")
        expected = ids.slice(start, len(on_disk)).cast(pa.string())
        if not on_disk.cast(pa.string()).equals(expected):
            first = start + int(np.flatnonzero(~pc.fill_null(pc.equal(on_disk.cast(pa.string()), expected), False).to_numpy(zero_copy_only=False))[0])
            _fail(folder, f"scores.parquet row {first} has id {on_disk[first - start].as_py()!r}, the input {ids[first].as_py()!r}")
        start += len(on_disk)
        if not selected:
            continue
        keep = batch.column("keep")
        if keep.null_count:
            _fail(folder, "scores.parquet has null values in keep")
        reason = batch.column("reason")
        if not pc.fill_null(pc.equal(reason, KEPT), False).equals(keep):
            _fail(folder, "scores.parquet has keep and reason that disagree (reason must be 'kept' exactly where keep is true)")
        n_kept += int(pc.sum(keep).as_py() or 0)
        dropped = pc.filter(reason, pc.invert(keep))
        for v in pc.value_counts(dropped).to_pylist() if len(dropped) else []:
            by_reason[v["values"]] = by_reason.get(v["values"], 0) + int(v["counts"])
    if not selected:
        return {"rows_in": n}
    if any(r is None or r == "" for r in by_reason):
        _fail(folder, "scores.parquet has dropped rows without a reason")
    if n_kept + sum(by_reason.values()) != n:
        _fail(folder, f"kept ({n_kept}) + dropped ({sum(by_reason.values())}) != rows in ({n})")
    return {"rows_in": n, "kept": n_kept, "dropped": n - n_kept, "dropped_by_reason": dict(sorted(by_reason.items()))}


def _kept_values(batches: Iterable[pa.RecordBatch], column: str, keep: np.ndarray) -> ColumnDigest:
    digest, start = ColumnDigest(), 0
    for rb in batches:
        n = rb.num_rows
        mask = keep[start : start + n]
        if mask.any():
            digest.update(pc.filter(rb.column(column), pa.array(mask)))
        start += n
    return digest


def check_pruned_folder(folder: Path, *, key_column: str, key_is_id: bool, input_batches=None) -> None:
    """Check that `folder/pruned/` holds exactly the rows of `folder/scores.parquet` with keep = true.

    Parameters
    ----------
    folder : the staged run folder.
    key_column : the input column compared (present in `pruned/`).
    key_is_id : `key_column` is the mapped id column: compare with the kept ids of scores.parquet.
        Otherwise compare with `input_batches` (the input re-streamed), filtered by the kept rows.
    input_batches : iterable of the input's record batches, in input order (when not `key_is_id`).
    """
    folder = Path(folder)
    keep = pq.read_table(folder / "scores.parquet", columns=["keep"]).column("keep").to_numpy()
    n_kept = int(keep.sum())
    shards = sorted((folder / "pruned").glob("*.parquet"))
    n_pruned = sum(pq.ParquetFile(p).metadata.num_rows for p in shards)
    if n_pruned != n_kept:
        _fail(folder, f"pruned/ holds {n_pruned} rows; scores.parquet keeps {n_kept}")
    written = ColumnDigest()
    for p in shards:
        for batch in pq.ParquetFile(p).iter_batches(batch_size=CHECK_BATCH_ROWS, columns=[key_column]):
            written.update(batch.column(key_column))
    if key_is_id:
        expected = ColumnDigest()
        for batch in pq.ParquetFile(folder / "scores.parquet").iter_batches(batch_size=CHECK_BATCH_ROWS, columns=["id", "keep"]):
            expected.update(pc.filter(batch.column("id"), batch.column("keep")))
    else:
        expected = _kept_values(input_batches, key_column, keep)
    if written.hexdigest() != expected.hexdigest():
        _fail(folder, f"pruned/ does not hold the kept rows: its {key_column!r} column differs from the rows with keep = true")
