"""The bad-input catalogue: each bad input gives a clear error naming the problem (file or field, line,
value, fix), or is a documented per-row skip or pass-through with nothing lost.

One table, `CASES`: a name, a function that builds the bad input under a folder and makes the call
(readers, configs, policies, scorers, models, compressors, the CLI), the error class expected (None:
no error, the function checks nothing was lost) and a pattern the message must match.
"""

from __future__ import annotations

import gzip
import json
import logging
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datapruner.config import config_from_dict
from datapruner.curation.dataset import ColumnMap, Dataset
from datapruner.errors import ConfigError, InputDataError, ModelLoadError, OutputFolderError
from datapruner.pipelines.curate import curate

TEXT = ColumnMap(text="text")


def ingest(path, columns=TEXT, **kw):
    return Dataset(path, columns=columns, **kw).ingest()


def write(folder, name, data):
    path = folder / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def jsonl(rows) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def gz_truncated(text: str) -> bytes:
    z = gzip.compress(text.encode())
    return z[: len(z) // 2]


def config(folder, path, **over):
    raw = {"input": {"path": str(path)}, "output": {"dir": str(folder / "out"), "plots": False},
           "scorers": ["text_stats"], "selection": [{"policy": "top_fraction", "score": "n_words", "keep": 0.5}]}
    for key, value in over.items():
        raw[key] = value
    return raw


def good_input(folder):
    return write(folder, "good.jsonl", jsonl({"text": f"row number {i} " * (i % 5 + 1), "label": i % 2} for i in range(20)))


def cli(folder, *args):
    from datapruner.cli import main

    return main(list(args))


# ---- readers -------------------------------------------------------------------------------------
def truncated_parquet(d):
    full = d / "full.parquet"
    pq.write_table(pa.table({"text": [f"row {i}" for i in range(500)]}), full)
    ingest(write(d, "t.parquet", full.read_bytes()[: full.stat().st_size // 2]))


def zero_length_parquet(d):
    ingest(write(d, "z.parquet", b""))


def zero_length_jsonl(d):
    ingest(write(d, "z.jsonl", b""))


def zero_length_csv(d):
    ingest(write(d, "z.csv", b""))


def header_only_csv(d):
    ingest(write(d, "h.csv", "text,label\n"))


def header_only_tsv(d):
    ingest(write(d, "h.tsv", "text\tlabel\n"))


def truncated_jsonl_gz(d):
    ingest(write(d, "t.jsonl.gz", gz_truncated(jsonl({"text": f"row {i}"} for i in range(3000)))))


def truncated_csv_gz(d):
    ingest(write(d, "t.csv.gz", gz_truncated("text\n" + "".join(f"row {i}\n" for i in range(30000)))))


def mixed_int_str_column(d):
    ingest(write(d, "m.jsonl", jsonl([{"text": "a", "score": 1}, {"text": "b", "score": 2}, {"text": "c", "score": "high"}])))


def mixed_label_types(d):
    ingest(write(d, "l.jsonl", jsonl([{"text": "a", "label": 0}, {"text": "b", "label": "pos"}])), ColumnMap(text="text", label="label"))


def mixed_types_across_batches(d):
    rows = [{"text": f"r{i}", "n": i} for i in range(10)] + [{"text": "late", "n": "ten"}]
    ingest(write(d, "b.jsonl", jsonl(rows)), batch_size=4)


def ragged_csv_row(d):
    ingest(write(d, "r.csv", "text,label\nhello,1\nworld,0\nthis, row, has four,1\nok,0\n"))


def invalid_json_line(d):
    ingest(write(d, "j.jsonl", '{"text": "a"}\n{"text": "b",,}\n'))


def json_line_not_an_object(d):
    ingest(write(d, "o.jsonl", '{"text": "a"}\n["text", "b"]\n'))


def empty_json_object_line(d):  # found by the fuzzer: main read {} lines as zero rows, losing them
    ingest(write(d, "e.jsonl", '{}\n{}\n'))


def invalid_utf8_jsonl(d):
    ingest(write(d, "u.jsonl", b'{"text": "a"}\n{"text": "caf\xe9"}\n'))


def invalid_utf8_csv(d):
    ingest(write(d, "u.csv", b"text\ncaf\xe9 au lait\n"))


def invalid_utf8_csv_header(d):  # found by the fuzzer: main raised a UnicodeDecodeError traceback
    ingest(write(d, "hdr.csv", b"t\x80xt\nhello\n"))


def wrong_text_column_type(d):
    ingest(write(d, "w.jsonl", jsonl([{"text": 1}, {"text": 2}])))


def missing_text_column(d):
    ingest(write(d, "c.jsonl", jsonl([{"body": "a"}])))


def duplicate_ids(d):
    ingest(write(d, "d.jsonl", jsonl([{"id": "a", "text": "x"}, {"id": "b", "text": "y"}, {"id": "a", "text": "z"}])),
           ColumnMap(text="text", id="id"))


def null_ids(d):
    ingest(write(d, "n.jsonl", jsonl([{"id": "a", "text": "x"}, {"id": None, "text": "y"}])), ColumnMap(text="text", id="id"))


def fractional_labels(d):
    ingest(write(d, "f.jsonl", jsonl([{"text": "a", "label": 0.5}, {"text": "b", "label": 1.0}])), ColumnMap(text="text", label="label"))


def missing_input_path(d):
    ingest(d / "nowhere.parquet")


def unknown_suffix(d):
    ingest(write(d, "data.txt", "hello\n"))


def control_characters_are_text(d):
    rows = [{"text": "bell\x07 and nul\x00 and esc\x1b[31m"}, {"text": "form\x0cfeed\r\n"}, {"text": "plain"}]
    result = curate(config(d, write(d, "ctl.jsonl", jsonl(rows)), selection=[]))
    scores = pq.read_table(result.scores_path)
    assert scores.num_rows == 3 and set(scores.column("reason").to_pylist()) == {"kept"}


def ten_megabyte_row(d):
    rows = [{"text": "short one"}, {"text": "word " * (2 << 20)}, {"text": "short two"}]
    result = curate(config(d, write(d, "big.jsonl", jsonl(rows)), selection=[]))
    table = pq.read_table(result.pruned_dir)
    assert table.num_rows == 3 and len(table.column("text")[1].as_py()) == 5 * (2 << 20)


def null_and_empty_text_are_skipped_with_a_reason(d):
    rows = [{"text": "fine"}, {"text": None}, {"text": "   "}, {"text": "also fine"}]
    result = curate(config(d, write(d, "e.jsonl", jsonl(rows))))
    reasons = pq.read_table(result.scores_path).column("reason").to_pylist()
    assert reasons[1:3] == ["invalid:null_text", "invalid:empty_text"] and result.n_rows == 4


def sparse_integer_labels_are_remapped_with_a_warning(d, caplog=None):
    path = write(d, "s.jsonl", jsonl([{"text": "a", "label": 0}, {"text": "b", "label": 3}, {"text": "c", "label": 3}]))
    info = ingest(path, ColumnMap(text="text", label="label"))
    assert info.labels.tolist() == [0, 1, 1] and info.label_names == [0, 3]


# ---- configs, policies, scorers ----------------------------------------------------------------
def unknown_config_section(d):
    config_from_dict(config(d, good_input(d), outptu={}))


def unknown_input_key(d):
    raw = config(d, good_input(d))
    raw["input"]["colums"] = {}
    config_from_dict(raw)


def zero_batch_size(d):
    raw = config(d, good_input(d))
    raw["input"]["batch_size"] = 0
    config_from_dict(raw)


def overwrite_not_a_boolean(d):
    raw = config(d, good_input(d))
    raw["output"]["overwrite"] = "yes"
    config_from_dict(raw)


def threads_not_a_number(d):
    config_from_dict(config(d, good_input(d), models={"threads": "two"}))


def policy_keep_out_of_range(d):
    config_from_dict(config(d, good_input(d), selection=[{"policy": "band", "score": "n_words", "keep": 1.5}]))


def unknown_policy(d):
    config_from_dict(config(d, good_input(d), selection=[{"policy": "median"}]))


def policy_names_a_scorer_not_a_column(d):
    curate(config(d, good_input(d), selection=[{"policy": "top_fraction", "score": "text_stats", "keep": 0.5}]))


def policy_names_a_missing_column(d):
    curate(config(d, good_input(d), selection=[{"policy": "top_fraction", "score": "n_wrds", "keep": 0.5}]))


def unknown_scorer(d):
    config_from_dict(config(d, good_input(d), scorers=["el2m"]))


def unknown_scorer_param(d):
    config_from_dict(config(d, good_input(d), scorers=[{"name": "text_stats", "params": {"foo": 1}}]))


def semdedup_eps_out_of_range(d):
    config_from_dict(config(d, good_input(d), scorers=[{"name": "semdedup", "params": {"eps": 1.2}}]))


def scorer_needs_labels(d):
    curate(config(d, write(d, "nl.jsonl", jsonl({"text": f"t {i}"} for i in range(5))),
                  scorers=["confident_learning"], selection=[]))


# ---- models ---------------------------------------------------------------------------------------
def model_folder_without_weights(d):
    from datapruner.models.causal_lm import resolve_lm

    folder = d / "half-copied-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    resolve_lm(str(folder))


def missing_model_folder(d):
    from datapruner.models.causal_lm import resolve_lm

    resolve_lm(str(d / "models" / "not-there"))


def unreachable_hub_with_downloads_on(d):
    import os

    from datapruner.models.causal_lm import resolve_lm

    old = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "HF_ENDPOINT")}
    os.environ.update({"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9"})  # a closed port: no network used
    try:
        resolve_lm("someorg/some-model-not-cached")
    finally:
        for k, v in old.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


# ---- compressors (library call) --------------------------------------------------------------
def compress_option_wrong_type(d):
    from datapruner import compress

    compress("what is it?", ["It is a test. Nothing more."], method="mig", target_tokens=10, params={"alpha": "abc"})


def compress_passages_not_a_list(d):
    from datapruner import compress

    compress("what is it?", "It is a test.", method="lead", target_tokens=10)


def compress_budget_zero(d):
    from datapruner import compress

    compress("what is it?", ["It is a test."], method="lead", target_tokens=0)


# ---- outputs --------------------------------------------------------------------------------------
def output_folder_holds_other_files(d):
    (d / "out").mkdir()
    (d / "out" / "notes.md").write_text("mine")
    curate(config(d, good_input(d)))


def output_is_the_input_folder(d):
    path = good_input(d)
    curate(config(d, path, output={"dir": str(d), "plots": False}))


# ---- the CLI ------------------------------------------------------------------------------------
def cli_param_without_equals(d):
    assert cli(d, "prune", "--input", str(good_input(d)), "--scorer", "text_stats", "--score-column", "n_words",
               "--keep", "0.5", "--param", "text_stats.foo", "--out", str(d / "o")) == 2
    raise_last_cli_error()


def cli_prune_without_score_column(d):
    assert cli(d, "prune", "--input", str(good_input(d)), "--scorer", "text_stats", "--keep", "0.5", "--out", str(d / "o")) == 2
    raise_last_cli_error()


def cli_missing_config_file(d):
    assert cli(d, "run", str(d / "nope.yaml")) == 2
    raise_last_cli_error()


_CAPTURED: dict = {}


def raise_last_cli_error():
    """Re-raise what the CLI printed as one `error:` line, so the table checks its text like the others."""
    err = _CAPTURED["capsys"].readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err, err
    raise InputDataError(err)


R, C, M, O = InputDataError, ConfigError, ModelLoadError, OutputFolderError
CASES = [
    (truncated_parquet, R, r"t\.parquet is not a readable Parquet file"),
    (zero_length_parquet, R, r"z\.parquet is not a readable Parquet file"),
    (zero_length_jsonl, R, r"z\.jsonl' has no rows; check input\.path"),
    (zero_length_csv, R, r"z\.csv' has no rows"),
    (header_only_csv, R, r"h\.csv' has no rows"),
    (header_only_tsv, R, r"h\.tsv' has no rows"),
    (truncated_jsonl_gz, R, r"t\.jsonl\.gz: the compressed file is truncated or corrupt after line \d+ .*gzip -t"),
    (truncated_csv_gz, R, r"t\.csv\.gz: the compressed file is truncated or corrupt"),
    (mixed_int_str_column, R, r"m\.jsonl, line 3: column 'score' has the string value 'high', but its values are numbers \(first on line 1\); make every value"),
    (mixed_label_types, R, r"l\.jsonl, line 2: column 'label' has the string value 'pos'"),
    (mixed_types_across_batches, R, r"b\.jsonl, line 11: column 'n' has the string value 'ten'"),
    (ragged_csv_row, R, r"r\.csv, line 4: the row has 4 fields, the header 2; quote values"),
    (invalid_json_line, R, r"j\.jsonl, line 2: invalid JSON"),
    (json_line_not_an_object, R, r"o\.jsonl, line 2: expected a JSON object per line, got list"),
    (empty_json_object_line, R, r"e\.jsonl, line 1: an empty JSON object \{\} has no columns"),
    (invalid_utf8_jsonl, R, r"u\.jsonl, line 2: not valid UTF-8.*re-encode"),
    (invalid_utf8_csv, R, r"column 'text' holds text that is not valid UTF-8.*re-encode"),
    (invalid_utf8_csv_header, R, r"hdr\.csv: the header row is not valid UTF-8.*re-encode"),
    (wrong_text_column_type, R, r"text column 'text' has type int64, expected strings"),
    (missing_text_column, R, r"input has no text column 'text'; columns are \['body'\]"),
    (duplicate_ids, R, r"id column 'id' has duplicate values \(e\.g\. 'a'\)"),
    (null_ids, R, r"id column 'id' has null values in .*n\.jsonl"),
    (fractional_labels, R, r"label column 'label' has type double with non-integer values \(e\.g\. \[0\.5\]\)"),
    (missing_input_path, R, r"nowhere\.parquet' does not exist; check input\.path \(--input\)"),
    (unknown_suffix, R, r"cannot tell the format of input .*data\.txt.*set input\.format \(--format\)"),
    (control_characters_are_text, None, None),
    (ten_megabyte_row, None, None),
    (null_and_empty_text_are_skipped_with_a_reason, None, None),
    (sparse_integer_labels_are_remapped_with_a_warning, None, None),
    (unknown_config_section, C, r"config key 'outptu'.*a known section"),
    (unknown_input_key, C, r"'input\.colums'.*expected one of"),
    (zero_batch_size, C, r"'input\.batch_size' has value 0; expected an integer >= 1"),
    (overwrite_not_a_boolean, C, r"'output\.overwrite' has value 'yes'"),
    (threads_not_a_number, C, r"'models\.threads' has value 'two'"),
    (policy_keep_out_of_range, C, r"'selection\[band\]\.keep' has value 1\.5; expected a number in \(0, 1\]"),
    (unknown_policy, C, r"'selection\[\]\.policy' has value 'median'; expected one of"),
    (policy_names_a_scorer_not_a_column, C, r"'selection\[top_fraction\]\.score' has value 'text_stats'.*\['alpha_ratio', 'n_chars', 'n_words'\].*--score-column"),
    (policy_names_a_missing_column, C, r"'selection\[top_fraction\]\.score' has value 'n_wrds'; expected a score column"),
    (unknown_scorer, C, r"'scorers\[\]\.name' has value 'el2m'; expected one of"),
    (unknown_scorer_param, C, r"'scorers\[text_stats\]\.params\.foo'"),
    (semdedup_eps_out_of_range, C, r"'scorers\[semdedup\]\.params\.eps' has value 1\.2"),
    (scorer_needs_labels, R, r"scorer 'confident_learning' needs labels; map the label column"),
    (model_folder_without_weights, M, r"half-copied-model' has no model weights .*it holds \['config\.json'\].*--lm"),
    (missing_model_folder, M, r"not-there' is not a local folder and is not in the Hugging Face cache.*--lm"),
    (unreachable_hub_with_downloads_on, M, r"'someorg/some-model-not-cached'.*the hub \(http://127\.0\.0\.1:9\) cannot be reached.*--lm"),
    (compress_option_wrong_type, C, r"'params\.alpha' has value 'abc'; expected a finite number"),
    (compress_passages_not_a_list, R, r"passages must be a list of strings, got one string"),
    (compress_budget_zero, C, r"'target_tokens' has value 0; expected an integer >= 1"),
    (output_folder_holds_other_files, O, r"out' is not empty and holds no datapruner run .*notes\.md"),
    (output_is_the_input_folder, R, r"is the input's location"),
    (cli_param_without_equals, R, r"error: config key '--param' has value 'text_stats\.foo'; expected KEY=VALUE"),
    (cli_prune_without_score_column, R, r"error: .*'text_stats'.*--score-column"),
    (cli_missing_config_file, R, r"error: .*nope\.yaml"),
]


@pytest.mark.parametrize("build, error, pattern", CASES, ids=[c[0].__name__ for c in CASES])
def test_bad_input(tmp_path, build, error, pattern, capsys):
    _CAPTURED["capsys"] = capsys
    if error is None:
        build(tmp_path)
        return
    with pytest.raises(error, match=pattern):
        build(tmp_path)


def test_sparse_labels_warning_names_the_mapping(tmp_path, caplog):
    path = write(tmp_path, "s.jsonl", jsonl([{"text": "a", "label": 0}, {"text": "b", "label": 3}]))
    with caplog.at_level(logging.WARNING):
        ingest(path, ColumnMap(text="text", label="label"))
    assert "label column 'label' has the integer values [0, 3], not 0..1" in caplog.text and "3->1" in caplog.text


@pytest.fixture()
def tiny_disk(tmp_path):
    """A 64 KiB tmpfs (root only); skipped where mounting is not allowed."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.decode().strip()}); run as root to test a full disk")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_disk_full_is_a_clear_error_and_leaves_nothing(tmp_path, tiny_disk):
    import random

    rng = random.Random(0)
    rows = [{"text": " ".join("".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=6)) for _ in range(40))} for i in range(2000)]
    path = write(tmp_path, "in.jsonl", jsonl(rows))
    out = tiny_disk / "out"
    with pytest.raises(OutputFolderError, match=r"the disk holding '.*tiny' is full .*the output folder is as before"):
        curate(config(tmp_path, path, output={"dir": str(out), "plots": False}))
    assert not out.exists() and not [p for p in tiny_disk.iterdir() if ".tmp-" in p.name]


@pytest.mark.slow
def test_header_only_csv_exits_2_not_134(tmp_path):
    """Six fresh CLI processes (main aborted in about 1 of 6: a CSV reader thread left running at exit)."""
    path = write(tmp_path, "h.tsv", "text\tlabel\n")
    code = ("import sys; from datapruner.cli import main; sys.exit(main(['prune', '--input', sys.argv[1], '--scorer', "
            "'text_stats', '--score-column', 'n_words', '--keep', '0.5', '--out', sys.argv[2]]))")
    for i in range(6):
        proc = subprocess.run([sys.executable, "-c", code, str(path), str(tmp_path / f"o{i}")], capture_output=True, text=True)
        assert proc.returncode == 2 and "has no rows" in proc.stderr and "terminate called" not in proc.stderr, proc.stderr
