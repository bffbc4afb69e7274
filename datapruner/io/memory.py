"""In-memory tables in and out: `datasets.Dataset`, polars and pandas DataFrames, `pyarrow.Table`.

In: `curate(table, config)` writes the table once to a Parquet file in the run's work folder
(`write_input_parquet`), which the streaming readers then read like any input; ids are
``rows.parquet:<row position>`` unless ``input.columns.id`` names an id column.
Out: `take_rows(table, keep)` returns the kept rows in the input's own type (a pandas frame keeps
its index and dtypes, a `datasets.Dataset` its features).
`compress_batch` reads ``(query, passages)`` pairs from the same table types (`pairs_from_table`).

The libraries are never imported here: a table's type is recognised by the modules already loaded.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from datapruner.errors import InputDataError

TABLE_KINDS = ("pyarrow", "pandas", "polars", "datasets")
MEMORY_INPUT_NAME = "rows.parquet"


def table_kind(data: Any) -> str | None:
    """Which of `TABLE_KINDS` `data` is, or None when it is none of them."""
    checks = (("pyarrow", "Table"), ("pandas", "DataFrame"), ("polars", "DataFrame"), ("datasets", "Dataset"))
    for module, cls in checks:
        mod = sys.modules.get(module)
        if mod is not None and isinstance(data, getattr(mod, cls)):
            return module
    return None


def check_table(data: Any, *, what: str = "data") -> str:
    """The kind of an in-memory table; an `InputDataError` naming the accepted types otherwise."""
    kind = table_kind(data)
    if kind is None:
        raise InputDataError(
            f"{what} is a {type(data).__module__}.{type(data).__name__}; pass a datasets.Dataset, a polars or "
            f"pandas DataFrame, or a pyarrow.Table (or a path in input.path)"
        )
    return kind


def to_arrow(data: Any) -> pa.Table:
    """The table as a `pyarrow.Table` (a pandas index is not a column; rows keep their order)."""
    kind = check_table(data)
    if kind == "pyarrow":
        return data
    if kind == "polars":
        return data.to_arrow()
    if kind == "datasets":
        return data.with_format("arrow")[:]
    try:
        return pa.Table.from_pandas(data, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InputDataError(f"the pandas DataFrame cannot be converted to Arrow ({exc}); give each column one type") from None


def write_input_parquet(data: Any, directory: Path) -> Path:
    """Write an in-memory table to `directory/rows.parquet` (replacing an earlier one); return the path."""
    import pyarrow.parquet as pq

    from datapruner.paths import atomic_path

    table = to_arrow(data)
    if table.num_rows == 0:
        raise InputDataError("the in-memory data has no rows")
    path = Path(directory) / MEMORY_INPUT_NAME
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return path


def take_rows(data: Any, keep: np.ndarray) -> Any:
    """The rows of `data` where `keep` is true, in `data`'s own type and row order."""
    kind = check_table(data)
    keep = np.asarray(keep, dtype=bool)
    n = len(data) if kind != "pyarrow" else data.num_rows
    if len(keep) != n:
        raise InputDataError(f"the in-memory data has {n} rows but the run decided {len(keep)}; pass the same data")
    rows = np.flatnonzero(keep)
    if kind == "pyarrow":
        return data.take(pa.array(rows, pa.int64()))
    if kind == "pandas":
        return data.iloc[rows]
    if kind == "polars":
        return data.filter(pa.array(keep).to_pylist())
    return data.select(rows.tolist())


def pairs_from_table(data: Any, *, query_column: str = "query", passages_column: str = "passages") -> list[tuple[Any, Any]]:
    """``(query, passages)`` pairs from a table with a query column and a list-of-strings passages column."""
    table = to_arrow(data)
    for column in (query_column, passages_column):
        if column not in table.column_names:
            raise InputDataError(f"the table has no column {column!r} (columns: {table.column_names}); "
                                 f"compress_batch reads columns {query_column!r} and {passages_column!r}")
    return list(zip(table.column(query_column).to_pylist(), table.column(passages_column).to_pylist()))


def read_output_table(directory: Path) -> pa.Table:
    """A written `pruned/` folder (Parquet shards, or a `datasets` folder with ``output.format: hf``) as one table."""
    from datapruner.io.readers import detect_format

    directory = Path(directory)
    if detect_format(directory) == "hf_disk":
        from datasets import load_from_disk

        return load_from_disk(str(directory)).with_format("arrow")[:]
    import pyarrow.parquet as pq

    return pq.read_table(directory)
