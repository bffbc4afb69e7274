"""Finished scorer steps saved under a run's work folder, so a rerun of a killed run reuses them.

Each step's columns are stored in `<work>/steps/<key>/columns.parquet`, written and read back a
slice of rows at a time (a step's columns are never whole in memory), then a completion marker
`done.json` is written; only a step with a marker is reused. The key (`StepStore.key`) covers
the input (the ingest fingerprint and every input file's size and modification time), the config
parts a score depends on (input mapping and batch size, models, threads, random_state, the scorer's
name and params), the datapruner version and the keys of the steps before it (a step may read
earlier columns), so any change recomputes. Reused columns are bit-identical to computed ones
(Parquet round trip), so a resumed run writes byte-identical outputs.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from datapruner.curation.score_columns import PendingColumns, column_arrow_type, column_rows
from datapruner.io.writers import arrow_column, release_unused_arrow_memory
from datapruner.paths import atomic_path

MARKER = "done.json"
SLICE_ROWS = 1 << 20
"""Rows per slice when a step's columns are saved or read back (and per Parquet row group)."""


def _file_stamp(path: str) -> list[Any]:
    try:
        st = os.stat(path)
    except OSError:
        return [path, None, None]
    return [path, st.st_size, st.st_mtime_ns]


class StepStore:
    """The finished steps of runs over one input, under `work_dir/steps/`.

    Parameters
    ----------
    work_dir : the run's work folder (`datapruner.curation.run_folder.work_dir_of`).
    context : what every step's result depends on besides its own params (JSON-serialisable).
    sources : the input files (their size and modification time join the key).
    """

    def __init__(self, work_dir: Path, *, context: dict[str, Any], sources: list[str]):
        from datapruner import __version__

        self.directory = Path(work_dir) / "steps"
        self.base = {"context": context, "files": [_file_stamp(s) for s in sources], "version": __version__}

    def key(self, name: str, params: dict[str, Any], previous: list[str]) -> str:
        """The key of scorer `name` with `params`, run after the steps with keys `previous`."""
        payload = {**self.base, "step": name, "params": params, "previous": previous}
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:24]

    def load(self, key: str, into: PendingColumns) -> PendingColumns | None:
        """Read a finished step's saved columns into `into` (a slice of rows at a time), or None
        when the step has no completion marker."""
        folder = self.directory / key
        if not (folder / MARKER).exists():
            return None
        marker = json.loads((folder / MARKER).read_text())
        if "object_columns" not in marker:  # saved by a version that did not record them: recompute
            return None
        objects = set(marker["object_columns"])
        parquet = pq.ParquetFile(folder / "columns.parquet")
        start = 0
        for batch in parquet.iter_batches(batch_size=SLICE_ROWS):
            rows = np.arange(start, start + batch.num_rows)
            for name, col in zip(batch.schema.names, batch.columns):
                values = np.array(col.to_pylist(), dtype=object) if name in objects else col.to_numpy(zero_copy_only=False)
                into.put(name, rows, values)
            start += batch.num_rows
            del batch
            release_unused_arrow_memory()  # else the pool keeps every slice's pages resident
        for field in parquet.schema_arrow:  # a table of no rows still names its columns
            if field.name not in into:
                into.put(field.name, np.zeros(0, dtype=np.int64),
                         np.zeros(0, dtype=object if field.name in objects else field.type.to_pandas_dtype()))
        return into

    def save(self, key: str, name: str, columns: PendingColumns) -> None:
        """Save a finished step's columns (a slice of rows at a time), then its completion marker."""
        folder = self.directory / key
        folder.mkdir(parents=True, exist_ok=True)
        names = list(columns)
        objects = [c for c in names if columns.dtype(c) == object]
        schema = pa.schema([(c, column_arrow_type(columns, c)) for c in names])
        with atomic_path(folder / "columns.parquet") as tmp:
            with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
                for start in range(0, max(columns.n_rows, 1), SLICE_ROWS):
                    stop = min(columns.n_rows, start + SLICE_ROWS)
                    writer.write_table(pa.table([arrow_column(column_rows(columns, c, start, stop)).cast(schema.field(c).type) for c in names],
                                                schema=schema))
                    release_unused_arrow_memory()
        with atomic_path(folder / MARKER) as tmp:
            tmp.write_text(json.dumps({"step": name, "columns": sorted(names), "object_columns": sorted(objects)}))
