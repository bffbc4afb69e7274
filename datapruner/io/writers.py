"""Parquet writers: shards written under a temporary name and renamed when complete."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from datapruner.errors import InputDataError
from datapruner.validation import check_positive_int


def check_output_location(out_dir: Path, input_path: str | Path) -> None:
    """Refuse an output folder that would write into the input's location.

    Refused: the input itself, the folder holding an input file, anything inside an input folder,
    and an output folder whose `pruned/` holds the input (a rerun would overwrite it).
    """
    out = Path(out_dir).resolve()
    src = Path(str(input_path).split("*")[0] or ".").resolve()
    src_dir = src if src.is_dir() else src.parent
    inside_input = src.is_dir() and src in out.parents
    input_in_outputs = (out / "pruned") in [src, *src.parents]
    if out in (src, src_dir) or inside_input or input_in_outputs:
        raise InputDataError(
            f"output folder {str(out)!r} is the input's location {str(src)!r}; "
            f"choose another folder with output.dir (--out) so the input is never overwritten"
        )


def release_unused_arrow_memory() -> None:
    """Hand back to the OS the freed memory that Arrow's allocator keeps cached for reuse.

    Arrow's default pool (mimalloc or jemalloc) holds freed pages for a while; on a 10M-row run
    that was a few hundred MiB of resident memory while `pruned/` was written. Called after each
    scoring step and each written shard, so the peak is the live data, not the cache.
    """
    pa.default_memory_pool().release_unused()


class ShardedParquetWriter:
    """Write record batches into `part-00000.parquet`, `part-00001.parquet`, ... of at most `shard_rows` rows.

    Each shard is written as `.part-NNNNN.parquet.tmp` and renamed when closed, so a reader never sees
    a half-written shard. An input with no kept rows still gets one empty shard carrying the schema.
    """

    def __init__(self, directory: Path, schema: pa.Schema, *, shard_rows: int = 100_000, compression: str = "zstd"):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.schema = schema
        self.shard_rows = check_positive_int("output.shard_rows", shard_rows)
        self.compression = compression
        self.paths: list[Path] = []
        self._writer: pq.ParquetWriter | None = None
        self._tmp: Path | None = None
        self._rows_in_shard = 0
        self.rows_written = 0

    def _open(self) -> None:
        final = self.directory / f"part-{len(self.paths):05d}.parquet"
        self._tmp = final.with_name(f".{final.name}.tmp")
        self._writer = pq.ParquetWriter(self._tmp, self.schema, compression=self.compression)
        self.paths.append(final)
        self._rows_in_shard = 0

    def _close_shard(self) -> None:
        if self._writer is not None:
            self._writer.close()
            os.replace(self._tmp, self.paths[-1])
            self._writer = None
            release_unused_arrow_memory()

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:
        """Append a table (cast to the writer's schema), starting a new shard every `shard_rows` rows."""
        table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
        offset = 0
        while offset < table.num_rows:
            if self._writer is None or self._rows_in_shard >= self.shard_rows:
                self._close_shard()
                self._open()
            take = min(self.shard_rows - self._rows_in_shard, table.num_rows - offset)
            self._writer.write_table(table.slice(offset, take))
            self._rows_in_shard += take
            self.rows_written += take
            offset += take

    def close(self) -> list[Path]:
        """Finish the open shard."""
        if not self.paths:
            self._open()
        self._close_shard()
        return self.paths

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *_):
        if exc_type is None:
            self.close()
        elif self._writer is not None:
            self._writer.close()
            self._tmp.unlink(missing_ok=True)


def arrow_column(values) -> pa.Array:
    """A numpy score column as an Arrow array (object arrays through their Python values, so None is null)."""
    import numpy as np

    values = np.asarray(values)
    if values.dtype == object:
        return pa.array(values.tolist())
    return pa.array(values)


def write_table_atomic(table: pa.Table, path: Path) -> None:
    """Write one Parquet file atomically (temporary name, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)
