"""`datapruner report OUT_DIR` on a finished run, and its errors for folders that are not runs."""

from __future__ import annotations

import json

from datapruner.cli import main


def test_report_prints_counts_top_reasons_and_files(run, capsys):
    assert main(["report", str(run.out_dir)]) == 0
    out = capsys.readouterr().out
    assert f"rows in: {run.n_rows}  kept: {run.n_kept}" in out
    for reason, count in run.dropped_by_reason.items():
        assert f"{count:>8}  {reason}" in out
    top = max(run.dropped_by_reason.items(), key=lambda kv: kv[1])
    assert f"  1. {top[0]}: {top[1]} rows" in out
    for path in (run.pruned_dir, run.scores_path, run.manifest_path, run.report_path):
        assert str(path) in out


def test_a_folder_that_is_not_a_run_is_a_clear_error(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["report", str(tmp_path)]) == 2
    assert "is not a curation run: it has no manifest.json" in capsys.readouterr().err
    (tmp_path / "manifest.json").write_text(json.dumps({"something": "else"}))
    assert main(["report", str(tmp_path)]) == 2
    assert "not a curation run manifest" in capsys.readouterr().err
