"""Finished scorer steps saved under a run's work folder, so a rerun of a killed run reuses them.

Each step's columns are stored in `<work>/steps/<key>/columns.parquet`, then a completion marker
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

from datapruner.io.writers import arrow_column
from datapruner.paths import atomic_path

MARKER = "done.json"


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

    def load(self, key: str) -> dict[str, np.ndarray] | None:
        """The saved columns of a finished step, or None when it has no completion marker."""
        folder = self.directory / key
        if not (folder / MARKER).exists():
            return None
        path = folder / "columns.parquet"
        out = {}
        for name in pq.read_schema(path).names:  # a column at a time, copied out of Arrow's memory
            col = pq.read_table(path, columns=[name]).column(name)
            if pa.types.is_string(col.type) or pa.types.is_large_string(col.type) or pa.types.is_null(col.type) or col.null_count:
                out[name] = np.array(col.to_pylist(), dtype=object)
            else:
                out[name] = np.array(col.to_numpy(zero_copy_only=False))
            del col
            pa.default_memory_pool().release_unused()  # else the pool keeps every column's pages resident
        return out

    def save(self, key: str, name: str, columns: dict[str, np.ndarray]) -> None:
        """Save a finished step's columns, then its completion marker."""
        folder = self.directory / key
        folder.mkdir(parents=True, exist_ok=True)
        table = pa.table({c: arrow_column(columns[c]) for c in columns}) if columns else pa.table({})
        with atomic_path(folder / "columns.parquet") as tmp:
            pq.write_table(table, tmp, compression="zstd")
        with atomic_path(folder / MARKER) as tmp:
            tmp.write_text(json.dumps({"step": name, "columns": sorted(columns)}))
