"""Per-row score columns kept on disk, read column by column.

A run's score columns (every scorer's output and the policies' audit columns) would cost 8 bytes
per row and column if they stayed in memory; at 10M rows and a dozen columns that is about 1 GB.
`ScoreColumns` is the mapping a run keeps them in instead: each numeric or boolean column is one
raw file under the run's work folder, read back whole when a step or a policy asks for it (and
freed when that caller drops it) or a row range at a time (`read_rows`) by the writers. Columns
of Python objects (strings, None) stay in memory, as they have no fixed-width form.

A scoring step's columns reach it through `PendingColumns` (`ScoreColumns.pending`): each part
of rows a step scores is written into the column files in place as it comes back, so no column is
ever assembled whole in memory; `ScoreColumns.adopt` then takes the files over.

`ScoresFileColumns` is the same read-only mapping over a published `scores.parquet`, which is
what `RunResult.scores` hands back after the work folder has been cleaned up.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Mapping

import numpy as np

_instances = itertools.count()


def _is_fixed_width(values: np.ndarray) -> bool:
    return values.ndim == 1 and values.dtype.kind in "biuf"


class ScoreColumns(MutableMapping):
    """{column name: (N,) array}, numeric and boolean columns stored as raw files under `directory`.

    Parameters
    ----------
    parent : a folder of the run's work folder; the columns go into a fresh sub-folder of it,
        removed by `remove` (or, for a killed run, by the next `ScoreColumns` made there).

    `columns[name]` returns a fresh in-memory copy each time (a caller that changes it must assign
    it back); `read_rows(name, start, stop)` reads one row range.
    """

    def __init__(self, parent: Path):
        parent = Path(parent)
        _remove_dead(parent)
        self.directory = parent / f"{os.getpid()}-{next(_instances)}"
        self.directory.mkdir(parents=True, exist_ok=True)
        self._files: dict[str, tuple[Path, np.dtype, int]] = {}
        self._memory: dict[str, np.ndarray] = {}
        self._order: list[str] = []
        self._paths = itertools.count()

    def __setitem__(self, name: str, values) -> None:
        values = np.asarray(values)
        self._drop(name)
        if _is_fixed_width(values):
            path = self._new_path()
            np.ascontiguousarray(values).tofile(path)
            self._files[name] = (path, values.dtype, len(values))
        else:
            self._memory[name] = values
        self._order.append(name)

    def _new_path(self) -> Path:
        return self.directory / f"column-{next(self._paths):05d}.bin"

    def pending(self, n_rows: int) -> "PendingColumns":
        """An empty set of `n_rows`-row columns for one step to fill (`PendingColumns.put`), with
        its files in this mapping's folder; `adopt` makes them columns of this mapping."""
        return PendingColumns(n_rows, self._new_path)

    def adopt(self, pending: "PendingColumns") -> None:
        """Make every column of `pending` a column of this mapping (its files are taken over, not copied)."""
        for name in pending:
            self._drop(name)
            if name in pending.memory:
                self._memory[name] = pending.memory[name]
            else:
                self._files[name] = (pending.files[name][0], pending.files[name][1], pending.n_rows)
            self._order.append(name)
        pending.files.clear()
        pending.memory.clear()

    def __getitem__(self, name: str) -> np.ndarray:
        if name in self._memory:
            return self._memory[name]
        if name not in self._files:
            raise KeyError(name)
        path, dtype, n = self._files[name]
        return np.fromfile(path, dtype=dtype, count=n)

    def read_rows(self, name: str, start: int, stop: int) -> np.ndarray:
        """Rows `start:stop` of column `name`, read from its file."""
        if name in self._memory:
            return self._memory[name][start:stop]
        path, dtype, n = self._files[name]
        start, stop = max(0, start), min(n, stop)
        return np.fromfile(path, dtype=dtype, count=max(0, stop - start), offset=start * dtype.itemsize)

    def dtype(self, name: str) -> np.dtype:
        """The column's dtype (without reading it)."""
        return self._memory[name].dtype if name in self._memory else self._files[name][1]

    def _drop(self, name: str) -> None:
        if name in self._files:
            self._files.pop(name)[0].unlink(missing_ok=True)
        self._memory.pop(name, None)
        if name in self._order:
            self._order.remove(name)

    def __delitem__(self, name: str) -> None:
        if name not in self:
            raise KeyError(name)
        self._drop(name)

    def __contains__(self, name) -> bool:
        return name in self._files or name in self._memory

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._order))

    def __len__(self) -> int:
        return len(self._order)

    def remove(self) -> None:
        """Delete the column files (the mapping is empty afterwards)."""
        shutil.rmtree(self.directory, ignore_errors=True)
        self._files.clear()
        self._memory.clear()
        self._order.clear()


class PendingColumns(Mapping):
    """One step's (N,) columns, filled part by part as its scored rows come back (`put`).

    A fixed-width column (1-D bool, int or float) is a file of N values from its first part on, and
    every part is written into it at its rows' offsets, so the column is never whole in memory; any
    other column (strings, None) is an in-memory array. The first part of a column fixes its dtype
    (later parts are cast to it, as assigning into an array would); rows no part wrote read 0
    (None for object columns). Reading (`read_rows`, `dtype`, iteration) works as on
    `ScoreColumns`; `ScoreColumns.adopt` then takes the columns over.
    """

    def __init__(self, n_rows: int, new_path):
        self.n_rows = int(n_rows)
        self._new_path = new_path
        self.files: dict[str, tuple[Path, np.dtype]] = {}
        self.memory: dict[str, np.ndarray] = {}
        self._order: list[str] = []

    def put(self, name: str, rows: np.ndarray, values: np.ndarray) -> None:
        """Write `values` into rows `rows` (int indices) of column `name`."""
        values = np.asarray(values)
        if name not in self._order:
            self._order.append(name)
            if _is_fixed_width(values):
                path = self._new_path()
                with open(path, "wb") as f:
                    f.truncate(self.n_rows * values.dtype.itemsize)  # zeros, without writing them
                self.files[name] = (path, values.dtype)
            else:
                dtype = object if values.dtype.kind in "OUS" else values.dtype
                self.memory[name] = np.full(self.n_rows, None if dtype == object else 0, dtype=dtype)
        if name in self.memory:
            self.memory[name][rows] = values
            return
        path, dtype = self.files[name]
        values = np.ascontiguousarray(values, dtype=dtype)
        if len(rows) and bool(np.all(np.diff(rows) == 1)):
            with open(path, "r+b") as f:  # one contiguous range: a plain write at its offset
                f.seek(int(rows[0]) * dtype.itemsize)
                f.write(values.tobytes())
        elif len(rows):
            mapped = np.memmap(path, dtype=dtype, mode="r+", shape=(self.n_rows,))
            mapped[rows] = values
            mapped.flush()
            del mapped

    def read_rows(self, name: str, start: int, stop: int) -> np.ndarray:
        """Rows `start:stop` of column `name`."""
        if name in self.memory:
            return self.memory[name][start:stop]
        path, dtype = self.files[name]
        start, stop = max(0, start), min(self.n_rows, stop)
        return np.fromfile(path, dtype=dtype, count=max(0, stop - start), offset=start * dtype.itemsize)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.read_rows(name, 0, self.n_rows)

    def dtype(self, name: str) -> np.dtype:
        """The column's dtype (without reading it)."""
        return self.memory[name].dtype if name in self.memory else self.files[name][1]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._order))

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, name) -> bool:
        return name in self._order


def _remove_dead(parent: Path) -> None:
    """Remove column folders left by runs whose process is gone (killed runs)."""
    if not parent.exists():
        return
    for folder in parent.iterdir():
        pid = folder.name.split("-", 1)[0]
        if folder.is_dir() and pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ScoresFileColumns(Mapping):
    """{column name: (N,) array} read from a `scores.parquet` (its columns other than `exclude`)."""

    def __init__(self, path: Path, *, exclude: tuple[str, ...] = ()):
        import pyarrow.parquet as pq

        self.path = Path(path)
        self._names = [n for n in pq.read_schema(self.path).names if n not in exclude]

    def __getitem__(self, name: str) -> np.ndarray:
        import pyarrow.parquet as pq

        if name not in self._names:
            raise KeyError(name)
        return pq.read_table(self.path, columns=[name]).column(name).to_numpy()

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def column_dtype(scores: Mapping, name: str) -> np.dtype:
    """The dtype of column `name` of any score mapping (`ScoreColumns` and `PendingColumns` say it without reading the column)."""
    if isinstance(scores, (ScoreColumns, PendingColumns)):
        return scores.dtype(name)
    return np.asarray(scores[name]).dtype


def column_arrow_type(scores: Mapping, name: str):
    """The Arrow type of column `name` of any score mapping: from its dtype, or for an object column from all
    its values (so a slice of only None, written on its own, still gets the column's type)."""
    import pyarrow as pa

    dtype = column_dtype(scores, name)
    return pa.infer_type(scores[name]) if dtype == object else pa.from_numpy_dtype(dtype)


def column_rows(scores: Mapping, name: str, start: int, stop: int) -> np.ndarray:
    """Rows `start:stop` of column `name` of any score mapping (`ScoreColumns` and `PendingColumns` read only those rows)."""
    if isinstance(scores, (ScoreColumns, PendingColumns)):
        return scores.read_rows(name, start, stop)
    return np.asarray(scores[name])[start:stop]
