"""`datapruner compress --passages`: JSON, JSONL and text files, stdin included, and their errors."""

from __future__ import annotations

import io
import json

import pytest

from datapruner.cli import main
from datapruner.cli.passage_files import read_passages
from datapruner.errors import InputDataError

PASSAGES = ["The Eiffel Tower was completed in 1889.", "Bananas are rich in potassium."]


def given(tmp_path, monkeypatch, name: str, text: str) -> str:
    """The --passages argument for `text`: stdin for ``-``, else a file `name` holding it."""
    if name == "-":
        monkeypatch.setattr("sys.stdin", io.StringIO(text))
        return "-"
    (tmp_path / name).write_text(text, encoding="utf-8")
    return str(tmp_path / name)


@pytest.mark.parametrize(
    "name, text, fmt",
    [
        ("p.json", json.dumps(PASSAGES), "auto"),
        ("p.json", json.dumps([PASSAGES[0], {"text": PASSAGES[1]}]), "auto"),
        ("p.json", json.dumps({"query": "q", "passages": PASSAGES}), "auto"),
        ("p.jsonl", "\n".join(json.dumps(p) for p in PASSAGES) + "\n\n", "auto"),
        ("p.ndjson", "\n".join(json.dumps({"text": p}) for p in PASSAGES), "auto"),
        ("p.txt", "\n\n".join(PASSAGES) + "\n", "auto"),
        ("p.data", json.dumps(PASSAGES), "json"),
        ("-", json.dumps(PASSAGES), "auto"),  # the reported bug: read as one text passage
        ("-", "\n".join(json.dumps({"text": p}) for p in PASSAGES), "auto"),
        ("-", "\n\n".join(PASSAGES), "auto"),
        ("-", "\n".join(json.dumps(p) for p in PASSAGES), "jsonl"),
    ],
)
def test_every_format_reads_the_same_passages(tmp_path, monkeypatch, name, text, fmt):
    assert read_passages(given(tmp_path, monkeypatch, name, text), fmt=fmt) == PASSAGES


@pytest.mark.parametrize(
    "name, text, fmt, message",
    [
        ("p.json", '["a",\n 3]', "auto", "item 1: a passage must be a string"),
        ("p.json", '["a",\n "b"', "auto", "p.json:2:5: invalid JSON"),
        ("p.json", '{"docs": []}', "auto", "needs a 'passages' list"),
        ("p.json", "[]", "auto", "holds no passage"),
        ("p.jsonl", '"a"\n{"txt": "b"}\n', "auto", "p.jsonl:2: an object needs a 'text' field"),
        ("p.jsonl", '"a"\n{"text": 3}\n', "auto", "p.jsonl:2: field 'text' must be a string"),
        ("p.jsonl", '"a"\nnot json\n', "auto", "p.jsonl:2: invalid JSON"),
        ("p.txt", "\n\n  \n", "auto", "is empty"),
        ("-", "[1] cited, not JSON", "auto", "stdin:1:5: invalid JSON"),
        ("p.txt", "x", "yaml", "--passages-format 'yaml'"),
    ],
)
def test_errors_name_the_source_the_line_and_the_fix(tmp_path, monkeypatch, name, text, fmt, message):
    with pytest.raises(InputDataError) as err:
        read_passages(given(tmp_path, monkeypatch, name, text), fmt=fmt)
    assert message in str(err.value)
    if "invalid JSON" in message and name == "-":
        assert "--passages-format text" in str(err.value)


def test_a_missing_file_names_the_flag():
    with pytest.raises(InputDataError, match=r"--passages 'nope.json' is not a file"):
        read_passages("nope.json")


def test_compress_reads_a_json_list_from_stdin(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(PASSAGES)))
    rc = main(["compress", "--query", "When was the tower completed?", "--passages", "-", "--method", "lead",
               "--rate", "1.0", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and [u["passage"] for u in out["units"]] == [0, 1]
    assert out["text"].startswith(PASSAGES[0]) and "[" not in out["text"]


def test_an_empty_result_for_non_empty_input_says_why(monkeypatch, capsys, caplog):
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(PASSAGES)))
    rc = main(["compress", "--query", "q?", "--passages", "-", "--method", "lead", "--target-tokens", "1"])
    assert rc == 0 and capsys.readouterr().out.strip() == ""
    assert "the compressed text is empty" in caplog.text and "--target-tokens" in caplog.text


def test_bad_stdin_is_an_error_exit_not_an_empty_line(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO('["unterminated'))
    rc = main(["compress", "--query", "q?", "--passages", "-", "--method", "lead"])
    captured = capsys.readouterr()
    assert rc == 2 and captured.out == "" and "stdin:1:2: invalid JSON" in captured.err
