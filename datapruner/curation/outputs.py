"""The files of a curation run: the audit table (`scores.parquet`) and the pruned dataset (`pruned/`).

Both are written into the run's staging folder (`datapruner.curation.run_folder.RunFolder.stage`)
and checked from disk (`datapruner.curation.output_checks`) before the run is published.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from datapruner.curation.dataset import ID_COLUMN, Dataset
from datapruner.curation.output_checks import check_pruned_folder
from datapruner.errors import ConfigError
from datapruner.io.writers import ShardedParquetWriter, arrow_column

SCORES_FILE = "scores.parquet"
PRUNED_DIR = "pruned"


def scores_table(ids: pa.Array, scores: dict[str, np.ndarray], *, keep: np.ndarray | None, reason: np.ndarray) -> pa.Table:
    """The audit table: `id`, score columns (sorted by name), `keep` (when selected), `reason`.

    Parameters
    ----------
    ids : (N,) row ids. scores : {column: (N,) array}. keep : (N,) bool or None. reason : (N,) str.
    """
    arrays = {ID_COLUMN: ids}
    for name in sorted(scores):
        arrays[name] = arrow_column(scores[name])
    if keep is not None:
        arrays["keep"] = pa.array(keep)
    arrays["reason"] = pa.array(reason.tolist(), pa.string())
    return pa.table(arrays)


def write_scores(folder: Path, table: pa.Table) -> Path:
    """Write the audit table as `folder/scores.parquet` (`folder` is a staging folder)."""
    path = Path(folder) / SCORES_FILE
    pq.write_table(table, path, compression="zstd")
    return path


def write_pruned(folder: Path, dataset: Dataset, keep: np.ndarray, *, scores: dict[str, np.ndarray] | None,
                 shard_rows: int) -> int:
    """Write the kept rows (input schema, plus `scores` columns when given) as `folder/pruned/part-*.parquet`.

    Returns the number of rows written.
    """
    schema = dataset.ingest().schema
    if scores:
        clash = set(scores) & set(schema.names)
        if clash:
            raise ConfigError("output.with_scores", True, f"score columns that do not clash with input columns {sorted(clash)}")
        for name in sorted(scores):
            schema = schema.append(pa.field(name, arrow_column(scores[name]).type))
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
                    idx = np.flatnonzero(mask) + start
                    for name in sorted(scores):
                        table = table.append_column(name, arrow_column(scores[name][idx]))
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
