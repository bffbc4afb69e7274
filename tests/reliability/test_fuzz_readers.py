"""Fuzzing the readers: random JSONL / CSV content never crashes other than with our own clear errors,
and every row is accounted for (rows in the file == rows read == valid rows + rows reported invalid)."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datapruner.curation.dataset import ColumnMap, Dataset
from datapruner.errors import DataprunerError
from datapruner.io.readers import read_batches

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=6,
)
json_rows = st.lists(st.dictionaries(st.sampled_from(["text", "label", "x", "y"]), json_values, max_size=4), min_size=1, max_size=25)
garbage_lines = st.lists(st.one_of(st.text(max_size=40), st.binary(max_size=40).map(lambda b: b.decode("latin-1"))), max_size=3)


def _account(path: Path, expected_rows: int | None, batch_size: int) -> None:
    """Read `path`; either a DataprunerError, or every row read and accounted for."""
    try:
        batches = [b.batch for b in read_batches(path, batch_size=batch_size)]
    except DataprunerError:
        return
    n_read = sum(b.num_rows for b in batches)
    if expected_rows is not None:
        assert n_read == expected_rows
    try:
        info = Dataset(path, columns=ColumnMap(text="text"), batch_size=batch_size).ingest()
    except DataprunerError:
        return
    texts = [t for b in batches for t in b.column("text").to_pylist()]
    blank = sum(t is None or not str(t).strip() for t in texts)
    assert info.n_rows == n_read and int((~info.valid).sum()) == blank
    assert len(info.ids) == info.n_rows and set(info.invalid_reason[~info.valid]) <= {"null_text", "empty_text"}


@FUZZ
@given(rows=json_rows, garbage=garbage_lines, batch_size=st.integers(1, 7))
def test_random_jsonl_is_read_whole_or_refused_clearly(rows, garbage, batch_size):
    lines = [json.dumps(r) for r in rows]
    for i, g in enumerate(garbage):  # random lines spliced in: errors naming the line, or blank lines
        lines.insert((i * 7) % (len(lines) + 1), g.replace("\n", " ").replace("\r", " "))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "fuzz.jsonl"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
        expected = None if garbage else len(rows)
        _account(path, expected, batch_size)


csv_cells = st.one_of(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20),
                      st.integers(-1000, 1000).map(str), st.sampled_from(["", "NA", "null", "1.5", "true"]))


@FUZZ
@given(rows=st.lists(st.tuples(csv_cells, csv_cells), min_size=1, max_size=25), delimiter=st.sampled_from([",", "\t"]),
       batch_size=st.integers(1, 7))
def test_random_csv_is_read_whole_or_refused_clearly(rows, delimiter, batch_size):
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(["text", "label"])
    writer.writerows(rows)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / ("fuzz.tsv" if delimiter == "\t" else "fuzz.csv")
        path.write_text(buf.getvalue(), encoding="utf-8")
        _account(path, len(rows), batch_size)


@FUZZ
@given(data=st.binary(max_size=300), suffix=st.sampled_from([".csv", ".tsv", ".jsonl"]))
def test_random_bytes_never_crash_the_readers(data, suffix):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"fuzz{suffix}"
        path.write_bytes(data)
        _account(path, None, 4)
