"""Run outputs are all or nothing: staged beside the output folder, renamed over it, never mixed."""

from __future__ import annotations

import json
import logging
import os
import stat

import pyarrow.parquet as pq
import pytest

from datapruner.errors import OutputFolderError
from datapruner.pipelines.curate import curate, score


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_an_earlier_run_is_replaced_only_with_overwrite_and_whole(tmp_path, sst2_input, helpers, caplog):
    out = tmp_path / "out"
    curate(helpers.text_stats_config(sst2_input, out, plots=True))
    (out / "pruned" / "notes.txt").write_text("the user's own file")
    (out / "report" / "hist_old_column.png").write_bytes(b"stale")
    with pytest.raises(OutputFolderError, match=r"holds an earlier datapruner run.*pruned/notes.txt.*--overwrite"):
        curate(helpers.text_stats_config(sst2_input, out))
    assert (out / "pruned" / "notes.txt").read_text() == "the user's own file"  # refused: nothing touched
    with caplog.at_level(logging.WARNING):
        result = curate(helpers.text_stats_config(sst2_input, out, overwrite=True))
    assert "pruned/notes.txt" in caplog.text  # said what was replaced
    assert not (out / "pruned" / "notes.txt").exists() and not (out / "report" / "hist_old_column.png").exists()  # whole
    assert result.manifest["replaced_earlier_run"] is True
    assert sorted(result.manifest["files"]) == sorted(p for p in helpers_files(out) if p != "manifest.json")
    assert helpers.siblings(out) == [".out.work"]


def helpers_files(out):
    return [p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()]


def test_a_folder_that_is_not_a_run_is_never_written_unless_empty(tmp_path, sst2_input, helpers):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("keep me")
    for overwrite in (False, True):
        with pytest.raises(OutputFolderError, match=r"'.*mine' is not empty and holds no datapruner run.*thesis.tex"):
            curate(helpers.text_stats_config(sst2_input, out, overwrite=overwrite))
    assert sorted(p.name for p in out.iterdir()) == ["thesis.tex"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert curate(helpers.text_stats_config(sst2_input, empty)).n_kept == 60


def test_outputs_share_one_permission_mode(tmp_path, sst2_input, helpers):
    out = tmp_path / "out"
    curate(helpers.text_stats_config(sst2_input, out))
    umask = os.umask(0)
    os.umask(umask)
    assert _mode(out) == _mode(out / "pruned") == 0o777 & ~umask  # main: pruned/ was 0700
    assert _mode(out / "scores.parquet") == _mode(next((out / "pruned").glob("*.parquet"))) == 0o666 & ~umask


def test_score_only_runs_are_all_or_nothing_too(tmp_path, sst2_input, helpers):
    out = tmp_path / "scores"
    path = score(helpers.text_stats_config(sst2_input, out, overwrite=False) | {"selection": []})
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["mode"] == "score" and manifest["counts"] == {"rows_in": 120, "invalid_rows": 0}
    with pytest.raises(OutputFolderError, match="--overwrite"):
        score(helpers.text_stats_config(sst2_input, out) | {"selection": []})
    assert pq.read_table(path).num_rows == 120


def test_killed_while_replacing_a_run_leaves_the_previous_run_then_no_leftovers(tmp_path, sst2_input, helpers):
    out = tmp_path / "out"
    first = curate(helpers.text_stats_config(sst2_input, out))
    before = {**helpers.data_digests(out), "manifest.json": helpers.digest(out / "manifest.json")}
    changed = helpers.text_stats_config(sst2_input, out, overwrite=True)
    changed["selection"][0]["keep"] = 0.25
    proc = helpers.run_config(changed, tmp_path, kill_at="write:scores")
    assert proc.returncode == -9, proc.stderr
    assert {**helpers.data_digests(out), "manifest.json": helpers.digest(out / "manifest.json")} == before
    assert json.loads((out / "manifest.json").read_text())["counts"]["kept"] == first.n_kept
    assert any(n.startswith(".out.tmp-") for n in helpers.siblings(out))  # what the killed run staged
    again = curate(changed)
    assert again.n_kept == 30 and helpers.siblings(out) == [".out.work"]


def test_a_new_run_killed_before_the_rename_leaves_nothing(tmp_path, sst2_input, helpers):
    out = tmp_path / "out"
    proc = helpers.run_config(helpers.text_stats_config(sst2_input, out), tmp_path, kill_at="commit")
    assert proc.returncode == -9, proc.stderr
    assert not out.exists()
    curate(helpers.text_stats_config(sst2_input, out))
    assert helpers.siblings(out) == [".out.work"] and (out / "manifest.json").exists()


def test_cli_overwrite_flag(tmp_path, sst2_input, helpers, capsys):
    from datapruner.cli import main

    args = ["prune", "--input", str(sst2_input), "--text-column", "sentence", "--scorer", "text_stats",
            "--score-column", "n_words", "--keep", "0.5", "--out", str(tmp_path / "o")]
    assert main(args) == 0
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0
