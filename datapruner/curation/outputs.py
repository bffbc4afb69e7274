"""The files of a curation run: the audit table (`scores.parquet`) and the pruned dataset (`pruned/`).

Both are written into the run's staging folder (`datapruner.curation.run_folder.RunFolder.stage`)
and checked from disk (`datapruner.curation.output_checks`) before the run is published.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from datapruner.curation.dataset import ID_COLUMN, Dataset
from datapruner.curation.output_checks import check_pruned_folder
from datapruner.curation.score_columns import column_arrow_type, column_rows
from datapruner.errors import ConfigError
from datapruner.io.writers import ShardedParquetWriter, arrow_column

SCORES_FILE = "scores.parquet"
PRUNED_DIR = "pruned"


AUDIT_BATCH_ROWS = 1 << 18  # rows of the audit table built and written at once


class AuditTable:
    """The audit table (`scores.parquet`): `id`, score columns (sorted by name), `keep` (when selected), `reason`.

    Built lazily from the run's columns: `batches()` makes Arrow record batches of
    `AUDIT_BATCH_ROWS` rows at a time, so writing it never holds the whole table (or one Python
    object per row) in memory. `slice` selects a row range, as `pyarrow.Table.slice` does.

    Parameters
    ----------
    ids : (N,) row ids. scores : {column: (N,) array} (a dict or a `ScoreColumns`).
    keep : (N,) bool or None. reason : (N,) str.
    """

    def __init__(self, ids: pa.Array, scores: Mapping[str, np.ndarray], *, keep: np.ndarray | None, reason: np.ndarray,
                 start: int = 0, stop: int | None = None):
        self.ids, self.scores, self.keep, self.reason = ids, scores, keep, reason
        self.start, self.stop = start, len(ids) if stop is None else stop
        self.names = sorted(scores)

    @property
    def num_rows(self) -> int:
        """Rows in the table (or in the slice)."""
        return self.stop - self.start

    def slice(self, offset: int = 0, length: int | None = None) -> "AuditTable":
        """Rows `offset:offset + length` of this table."""
        start = min(self.stop, self.start + offset)
        stop = self.stop if length is None else min(self.stop, start + length)
        return AuditTable(self.ids, self.scores, keep=self.keep, reason=self.reason, start=start, stop=stop)

    @property
    def schema(self) -> pa.Schema:
        """Column types: numeric columns from their dtype, object columns from all their values."""
        fields = [pa.field(ID_COLUMN, pa.string())]
        for name in self.names:
            fields.append(pa.field(name, column_arrow_type(self.scores, name)))
        if self.keep is not None:
            fields.append(pa.field("keep", pa.bool_()))
        fields.append(pa.field("reason", pa.string()))
        return pa.schema(fields)

    def batches(self, rows: int = AUDIT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        """Record batches of at most `rows` rows, in row order, with `schema`."""
        schema = self.schema
        for s in range(self.start, self.stop, rows):
            e = min(self.stop, s + rows)
            arrays = [self.ids.slice(s, e - s).cast(pa.string())]
            arrays += [arrow_column(column_rows(self.scores, name, s, e)).cast(schema.field(name).type) for name in self.names]
            if self.keep is not None:
                arrays.append(pa.array(self.keep[s:e]))
            arrays.append(pa.array(self.reason[s:e].tolist(), pa.string()))
            yield pa.RecordBatch.from_arrays(arrays, schema=schema)


def scores_table(ids: pa.Array, scores: Mapping[str, np.ndarray], *, keep: np.ndarray | None, reason: np.ndarray) -> AuditTable:
    """The audit table of a run (see `AuditTable`)."""
    return AuditTable(ids, scores, keep=keep, reason=reason)


def write_scores(folder: Path, table: AuditTable) -> Path:
    """Write the audit table as `folder/scores.parquet` (`folder` is a staging folder), batch by batch."""
    path = Path(folder) / SCORES_FILE
    with pq.ParquetWriter(path, table.schema, compression="zstd") as writer:
        for batch in table.batches():
            writer.write_batch(batch, row_group_size=AUDIT_BATCH_ROWS)
    return path


def write_pruned(folder: Path, dataset: Dataset, keep: np.ndarray, *, scores: Mapping[str, np.ndarray] | None,
                 shard_rows: int) -> int:
    """Write the kept rows (input schema, plus `scores` columns when given) as `folder/pruned/part-*.parquet`.

    Returns the number of rows written.
    """
    schema = pruned_schema(dataset.ingest().schema, dataset.ingest().ids, scores)
    directory = Path(folder) / PRUNED_DIR
    directory.mkdir()
    with ShardedParquetWriter(directory, schema, shard_rows=shard_rows) as writer:
        start = 0
        for rb in dataset.conformed_batches():
            n = rb.num_rows
            mask = keep[start : start + n]
            if mask.any():
                table = pa.Table.from_batches([rb]).filter(pa.array(mask))
                if scores:
                    for name in sorted(scores):
                        values = column_rows(scores, name, start, start + n)[mask]
                        table = table.append_column(name, arrow_column(values).cast(schema.field(name).type))
                writer.write(table.cast(schema))
            start += n
    return writer.rows_written


def check_pruned(folder: Path, dataset: Dataset) -> None:
    """Check `folder/pruned/` against `folder/scores.parquet` (see `output_checks.check_pruned_folder`)."""
    cols = dataset.columns
    names = dataset.ingest().schema.names
    if cols.id:
        check_pruned_folder(folder, key_column=cols.id, key_is_id=True)
        return
    key = cols.text if cols.text in names else cols.prompt
    check_pruned_folder(folder, key_column=key, key_is_id=False, input_batches=dataset.conformed_batches())


def pruned_schema(input_schema: pa.Schema, ids: pa.Array, scores: Mapping[str, np.ndarray] | None) -> pa.Schema:
    """The schema of `pruned/`: the input columns, then the `scores` columns (sorted by name) when given.

    `ids` are the ingest pass's row ids (the score columns' length). Raises `ConfigError` when a
    score column has the name of an input column.
    """
    if not scores:
        return input_schema
    clash = set(scores) & set(input_schema.names)
    if clash:
        raise ConfigError("output.with_scores", True, f"score columns that do not clash with input columns {sorted(clash)}")
    audit = AuditTable(ids, scores, keep=None, reason=np.array([], dtype=object))
    schema = input_schema
    for score_field in list(audit.schema)[1:-1]:  # between id and reason: the score columns
        schema = schema.append(score_field)
    return schema
