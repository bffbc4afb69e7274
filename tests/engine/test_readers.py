"""Every reader yields the same rows, in batches of the requested size, with stable ids."""

from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datapruner.curation.dataset import ColumnMap, Dataset
from datapruner.errors import InputDataError
from datapruner.io.readers import read_batches


def _write_all_formats(tmp_path, rows):
    paths = {}
    table = pa.Table.from_pylist(rows)
    paths["parquet"] = tmp_path / "d.parquet"
    pq.write_table(table, paths["parquet"])
    folder = tmp_path / "shards"
    folder.mkdir()
    pq.write_table(table.slice(0, 50), folder / "a.parquet")
    pq.write_table(table.slice(50), folder / "b.parquet")
    paths["parquet_dir"] = folder
    paths["parquet_glob"] = str(folder / "*.parquet")
    paths["jsonl"] = tmp_path / "d.jsonl"
    paths["jsonl"].write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    paths["jsonl_gz"] = tmp_path / "d.jsonl.gz"
    with gzip.open(paths["jsonl_gz"], "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    paths["csv"] = tmp_path / "d.csv"
    _write_csv(paths["csv"], rows, ",")
    paths["tsv"] = tmp_path / "d.tsv"
    _write_csv(paths["tsv"], rows, "\t")
    from datasets import Dataset as HFDataset

    paths["hf_disk"] = tmp_path / "hf"
    HFDataset.from_list(rows).save_to_disk(str(paths["hf_disk"]))
    return paths


def _write_csv(path, rows, delimiter):
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter=delimiter)
        w.writeheader()
        w.writerows(rows)


@pytest.mark.parametrize("fmt", ["parquet", "parquet_dir", "parquet_glob", "jsonl", "jsonl_gz", "csv", "tsv", "hf_disk"])
def test_every_format_yields_all_rows_in_order(tmp_path, sst2_rows, fmt):
    path = _write_all_formats(tmp_path, sst2_rows)[fmt]
    batches = list(read_batches(path, batch_size=32))
    assert all(b.batch.num_rows <= 32 for b in batches)
    texts = [t for b in batches for t in b.batch.column("sentence").to_pylist()]
    labels = [int(v) for b in batches for v in b.batch.column("label").to_pylist()]
    assert texts == [r["sentence"] for r in sst2_rows]
    assert labels == [r["label"] for r in sst2_rows]


def test_ids_are_file_and_row_and_stable(tmp_path, sst2_rows):
    path = _write_all_formats(tmp_path, sst2_rows)["parquet_dir"]
    ds = Dataset(path, columns=ColumnMap(text="sentence"), batch_size=16)
    ids = ds.ingest().ids.to_pylist()
    assert ids[0] == "a.parquet:0" and ids[50] == "b.parquet:0" and ids[-1] == f"b.parquet:{len(sst2_rows) - 51}"
    again = Dataset(path, columns=ColumnMap(text="sentence"), batch_size=7).ingest().ids.to_pylist()
    assert again == ids


def test_id_column_is_used_and_duplicates_rejected(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"uid": "x", "text": "a"}\n{"uid": "y", "text": "b"}\n')
    assert Dataset(path, columns=ColumnMap(id="uid")).ingest().ids.to_pylist() == ["x", "y"]
    path.write_text('{"uid": "x", "text": "a"}\n{"uid": "x", "text": "b"}\n')
    with pytest.raises(InputDataError, match="duplicate values"):
        Dataset(path, columns=ColumnMap(id="uid")).ingest()


def test_non_utf8_jsonl_line_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"text": "fine"}\n{"text": "caf\xe9"}\n')
    with pytest.raises(InputDataError, match=r"bad.jsonl, line 2: not valid UTF-8"):
        Dataset(path).ingest()


def test_non_utf8_csv_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"text\nfine\ncaf\xe9\n")
    with pytest.raises(InputDataError, match="UTF-8"):
        Dataset(path).ingest()


@pytest.mark.parametrize("name", ["empty.jsonl", "empty.csv"])
def test_empty_input_file(tmp_path, name):
    path = tmp_path / name
    path.write_text("")
    with pytest.raises(InputDataError, match="has no rows"):
        Dataset(path).ingest()


def test_missing_text_column_lists_columns(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"body": "hello"}\n')
    with pytest.raises(InputDataError, match=r"no text column 'text'; columns are \['body'\].*input.columns.text"):
        Dataset(path).ingest()


def test_label_column_of_wrong_type(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "a", "label": 0.5}\n{"text": "b", "label": 1.0}\n')
    with pytest.raises(InputDataError, match="label column 'label' has type double with non-integer values"):
        Dataset(path, columns=ColumnMap(label="label")).ingest()
    path.write_text('{"text": "a", "label": [1]}\n')
    with pytest.raises(InputDataError, match="labels must be integers or strings"):
        Dataset(path, columns=ColumnMap(label="label")).ingest()


def test_string_labels_map_to_sorted_classes(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "a", "label": "b"}\n{"text": "b", "label": "a"}\n{"text": "c", "label": null}\n')
    info = Dataset(path, columns=ColumnMap(label="label")).ingest()
    assert info.labels.tolist() == [1, 0, -1] and info.label_names == ["a", "b"]


def test_null_and_empty_text_are_marked_invalid_not_dropped(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "real words"}\n{"text": null}\n{"text": "   "}\n')
    info = Dataset(path).ingest()
    assert info.n_rows == 3
    assert info.valid.tolist() == [True, False, False]
    assert info.invalid_reason.tolist() == ["", "null_text", "empty_text"]


def test_unknown_format_is_rejected(tmp_path):
    path = tmp_path / "d.xyz"
    path.write_text("x")
    with pytest.raises(InputDataError, match="input.format"):
        Dataset(path).ingest()
