"""Streaming readers: every format becomes `pyarrow.RecordBatch`es of at most `batch_size` rows.

Supported: Parquet (file, directory or glob), JSONL / JSONL.gz, CSV / TSV (optionally .gz), and a
Hugging Face `datasets` dataset saved with `save_to_disk`. Rows are never dropped here: a row that
cannot be decoded is an error naming the file and line, not a silent skip.
"""

from __future__ import annotations

import glob
import gzip
import io
import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pyarrow as pa

from datapruner.errors import InputDataError
from datapruner.validation import check_choice, check_positive_int

FORMATS = ("parquet", "jsonl", "csv", "tsv", "hf_disk")


@dataclass(frozen=True)
class SourceBatch:
    """A batch plus where it came from; `first_row` is the row number inside `source`."""

    batch: pa.RecordBatch
    source: str
    first_row: int


def detect_format(path: str | Path) -> str:
    """Guess the format from the path; raise naming the allowed values when it cannot."""
    p = Path(path)
    if p.is_dir():
        if (p / "dataset_info.json").exists() or (p / "state.json").exists() or (p / "dataset_dict.json").exists():
            return "hf_disk"
        if any(p.glob("*.parquet")):
            return "parquet"
        raise InputDataError(f"input folder {str(p)!r} holds no *.parquet files and is not a saved `datasets` dataset")
    name = p.name.lower()
    for suffix, fmt in ((".parquet", "parquet"), (".jsonl", "jsonl"), (".jsonl.gz", "jsonl"), (".ndjson", "jsonl"),
                        (".json", "jsonl"), (".csv", "csv"), (".csv.gz", "csv"), (".tsv", "tsv"), (".tsv.gz", "tsv")):
        if name.endswith(suffix):
            return fmt
    raise InputDataError(
        f"cannot tell the format of input {str(p)!r} from its name; set input.format (--format) to one of {list(FORMATS)}"
    )


def expand_paths(path: str | Path) -> list[Path]:
    """A file, a folder of Parquet files, or a glob -> sorted list of files (error if none)."""
    text = str(path)
    if any(ch in text for ch in "*?["):
        files = sorted(Path(p) for p in glob.glob(text, recursive=True))
    else:
        p = Path(text)
        if not p.exists():
            raise InputDataError(f"input path {text!r} does not exist; check input.path (--input)")
        files = sorted(p.glob("**/*.parquet")) if p.is_dir() else [p]
    files = [f for f in files if f.is_file()]
    if not files:
        raise InputDataError(f"input path {text!r} matches no files")
    return files


def read_batches(path: str | Path, *, format: str = "auto", batch_size: int = 1024) -> Iterator[SourceBatch]:
    """Stream the input as record batches of at most `batch_size` rows, in a stable order.

    Parameters
    ----------
    path : a file, a folder of Parquet files, a glob, or a saved Hugging Face dataset folder.
    format : "auto" (from the path) or one of `FORMATS`.
    batch_size : rows per batch (``input.batch_size``).

    Yields
    ------
    SourceBatch
    """
    check_positive_int("input.batch_size", batch_size)
    check_choice("input.format", format, ("auto", *FORMATS))
    fmt = detect_format(path if not any(c in str(path) for c in "*?[") else expand_paths(path)[0]) if format == "auto" else format
    if fmt == "hf_disk":
        yield from _read_hf_disk(Path(path), batch_size)
        return
    for file in expand_paths(path):
        reader = {"parquet": _read_parquet, "jsonl": _read_jsonl, "csv": _read_csv, "tsv": _read_csv}[fmt]
        yield from reader(file, batch_size, delimiter="\t" if fmt == "tsv" else ",")


def _rebatch(batches: Iterator[pa.RecordBatch], source: str, batch_size: int) -> Iterator[SourceBatch]:
    row = 0
    for batch in batches:
        for start in range(0, batch.num_rows, batch_size):
            part = batch.slice(start, batch_size)
            if part.num_rows:
                yield SourceBatch(part, source, row)
                row += part.num_rows


def _read_parquet(file: Path, batch_size: int, **_) -> Iterator[SourceBatch]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(file)
    except pa.ArrowInvalid as exc:
        raise InputDataError(f"{file} is not a readable Parquet file: {exc}") from None
    yield from _rebatch(pf.iter_batches(batch_size=batch_size), str(file), batch_size)


def _open_text(file: Path):
    raw = gzip.open(file, "rb") if file.name.lower().endswith(".gz") else open(file, "rb")
    return raw


CORRUPT_COMPRESSED = (EOFError, gzip.BadGzipFile, zlib.error)


def _corrupt_file_error(file: Path, lineno: int, exc: BaseException) -> InputDataError:
    where = f" after line {lineno}" if lineno else ""
    return InputDataError(
        f"{file}: the compressed file is truncated or corrupt{where} ({exc}); "
        f"re-download or re-compress it (gzip -t {file.name} checks it)"
    )


def _value_kind(value) -> str:
    """The JSON type of a value, as a column's values must share it ("number" covers int and float)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return "null"


def _read_jsonl(file: Path, batch_size: int, **_) -> Iterator[SourceBatch]:
    """Stream a JSON Lines file; every column's values must share one JSON type across the file."""
    rows: list[dict] = []
    lines: list[int] = []
    first = 0
    kinds: dict[str, tuple[str, int]] = {}  # column -> (JSON type, line it was first seen on)
    lineno = 0
    with _open_text(file) as handle:
        try:
            for lineno, raw in enumerate(handle, start=1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise InputDataError(
                        f"{file}, line {lineno}: not valid UTF-8 ({exc.reason} at byte {exc.start}); "
                        f"re-encode the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
                    ) from None
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputDataError(f"{file}, line {lineno}: invalid JSON ({exc.msg}); fix or remove the line") from None
                if not isinstance(obj, dict):
                    raise InputDataError(f"{file}, line {lineno}: expected a JSON object per line, got {type(obj).__name__}")
                if not obj:
                    raise InputDataError(
                        f"{file}, line {lineno}: an empty JSON object {{}} has no columns, so it cannot be a row; remove "
                        f"the line or write its columns (e.g. {{\"text\": null}} for a row without text)"
                    )
                _check_kinds(obj, kinds, file, lineno)
                rows.append(obj)
                lines.append(lineno)
                if len(rows) == batch_size:
                    yield SourceBatch(_rows_to_batch(rows, lines, file), str(file), first)
                    first += len(rows)
                    rows, lines = [], []
        except CORRUPT_COMPRESSED as exc:
            raise _corrupt_file_error(file, lineno, exc) from None
    if rows:
        yield SourceBatch(_rows_to_batch(rows, lines, file), str(file), first)


def _check_kinds(obj: dict, kinds: dict[str, tuple[str, int]], file: Path, lineno: int) -> None:
    for key, value in obj.items():
        kind = _value_kind(value)
        if kind == "null":
            continue
        seen = kinds.setdefault(key, (kind, lineno))
        if seen[0] != kind:
            raise InputDataError(
                f"{file}, line {lineno}: column {key!r} has the {kind} value {str(value)[:40]!r}, but its values are "
                f"{seen[0]}s (first on line {seen[1]}); make every value of {key!r} the same type "
                f"(e.g. write numbers as strings) or remove the line"
            )


def _rows_to_batch(rows: list[dict], lines: list[int], file: Path) -> pa.RecordBatch:
    try:
        return pa.RecordBatch.from_pylist(rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InputDataError(
            f"{file}, lines {lines[0]}-{lines[-1]}: rows cannot form one table ({exc}); give each column values of one type"
        ) from None


def _ragged_row(file: Path, delimiter: str) -> tuple[int, int, int] | None:
    """The first row whose field count differs from the header's: (line, fields, expected), or None."""
    import csv

    with _open_text(file) as raw, io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            expected = len(next(reader))
        except StopIteration:
            return None
        for row in reader:
            if row and len(row) != expected:
                return reader.line_num, len(row), expected
    return None


def _read_csv(file: Path, batch_size: int, *, delimiter: str) -> Iterator[SourceBatch]:
    """Stream a CSV/TSV; column types are inferred from the first 16 MB block.

    pyarrow opens the file itself (gzip from the name), and the reader is closed on every path:
    a reader left open holds a thread that aborts the process at exit.
    """
    import pyarrow.csv as pacsv

    kind = "TSV" if delimiter == "\t" else "CSV"
    try:
        with _open_text(file) as handle:
            if not handle.read(1):
                return
    except CORRUPT_COMPRESSED as exc:
        raise _corrupt_file_error(file, 0, exc) from None
    reader = None
    try:
        reader = pacsv.open_csv(
            str(file),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            read_options=pacsv.ReadOptions(block_size=16 << 20),
        )
        try:
            reader.schema.names
        except UnicodeDecodeError as exc:
            raise InputDataError(
                f"{file}: the header row is not valid UTF-8 ({exc.reason} at byte {exc.start} of a column name); "
                f"re-encode the file as UTF-8"
            ) from None
        yield from _rebatch((_reject_binary(b, file) for b in reader), str(file), batch_size)
    except pa.ArrowInvalid as exc:
        if "Expected" in str(exc) and "columns" in str(exc):
            ragged = _ragged_row(file, delimiter)
            if ragged is not None:
                line, got, expected = ragged
                raise InputDataError(
                    f"{file}, line {line}: the row has {got} fields, the header {expected}; quote values that "
                    f"contain the delimiter {delimiter!r}, or fix the row"
                ) from None
        hint = "re-encode the file as UTF-8" if "UTF8" in str(exc) else "check the file's quoting and delimiter"
        raise InputDataError(f"{file}: cannot parse as {kind} ({exc}); {hint}") from None
    except (OSError, *CORRUPT_COMPRESSED) as exc:
        if isinstance(exc, OSError) and not file.name.lower().endswith(".gz"):
            raise
        raise _corrupt_file_error(file, 0, exc) from None
    finally:
        if reader is not None:
            reader.close()


def _reject_binary(batch: pa.RecordBatch, file: Path) -> pa.RecordBatch:
    """pyarrow reads a CSV column holding invalid UTF-8 as binary; name it instead of passing bytes on."""
    for field in batch.schema:
        if pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type):
            for value in batch.column(field.name).to_pylist():
                try:
                    value is None or value.decode("utf-8")
                except UnicodeDecodeError:
                    raise InputDataError(
                        f"{file}: column {field.name!r} holds text that is not valid UTF-8 (e.g. {value[:40]!r}); "
                        f"re-encode the file as UTF-8"
                    ) from None
    return batch


def _read_hf_disk(path: Path, batch_size: int) -> Iterator[SourceBatch]:
    from datasets import DatasetDict, load_from_disk

    ds = load_from_disk(str(path))
    if isinstance(ds, DatasetDict):
        raise InputDataError(
            f"{path} is a DatasetDict with splits {list(ds)}; point input.path at one split folder, "
            f"e.g. {path}/{next(iter(ds))}"
        )
    table = ds.data.table if hasattr(ds.data, "table") else ds.data
    if ds._indices is not None:  # a filtered/shuffled dataset: materialise its row order
        ds = ds.flatten_indices()
        table = ds.data.table
    yield from _rebatch(iter(table.to_batches(max_chunksize=batch_size)), str(path), batch_size)
