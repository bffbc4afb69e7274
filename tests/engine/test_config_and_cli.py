"""Config validation names key, value and allowed values; the CLI runs configs and one-line prunes."""

from __future__ import annotations

import subprocess
import sys

import pyarrow.parquet as pq
import pytest
import yaml

from datapruner.cli import main
from datapruner.config import config_from_dict, load_config
from datapruner.errors import ConfigError


@pytest.mark.parametrize(
    "patch, pattern",
    [
        ({"engine": "spark"}, r"config key 'engine' has value 'spark'; expected one of \['local', 'ray'\]"),
        ({"input": {"path": "x.csv", "batch_size": 0}}, r"'input.batch_size' has value 0; expected an integer >= 1"),
        ({"input": {"path": "x.csv", "colums": {}}}, r"'input.colums'.*expected one of \['batch_size', 'columns', 'format', 'path'\]"),
        ({"selection": [{"policy": "band", "score": "n_words", "keep": 1.5}]},
         r"'selection\[band\]\.keep' has value 1.5; expected a number in \(0, 1\]"),  # at load, before scoring
        ({"selection": [{"policy": "median"}]}, r"'selection\[\]\.policy' has value 'median'; expected one of"),
        ({"scorers": [{"name": "text_stats", "params": {"foo": 1}}]}, r"'scorers\[text_stats\]\.params\.foo'"),
        ({"models": {"threads": "two"}}, r"'models.threads' has value 'two'"),
        ({"models": {"threads": 0}}, r"'models.threads' has value 0; expected an integer >= 1"),
        ({"outptu": {}}, r"config key 'outptu'.*a known section"),
    ],
)
def test_config_errors_name_key_value_and_allowed(tmp_path, patch, pattern):
    raw = {"input": {"path": "x.csv"}, "output": {"dir": str(tmp_path)}, "scorers": ["text_stats"]}
    raw.update(patch)
    with pytest.raises(ConfigError, match=pattern):
        config_from_dict(raw)


def test_relative_paths_resolve_against_config_folder_and_out_overrides(tmp_path):
    folder = tmp_path / "cfg"
    folder.mkdir()
    path = folder / "c.yaml"
    path.write_text(yaml.safe_dump({"input": {"path": "data/x.csv"}, "output": {"dir": "o"}, "scorers": ["text_stats"]}))
    cfg = load_config(path)
    assert cfg.input.path == str(folder / "data" / "x.csv") and cfg.output.dir == str(folder / "o")
    assert load_config(path, out=str(tmp_path / "elsewhere")).output.dir == str(tmp_path / "elsewhere")


def test_cli_prune_one_liner(tmp_path, sst2_parquet, capsys):
    code = main(["prune", "--input", str(sst2_parquet), "--text-column", "sentence", "--scorer", "text_stats",
                 "--score-column", "n_words", "--keep", "0.25", "--band", "top", "--out", str(tmp_path / "o")])
    assert code == 0
    printed = capsys.readouterr().out
    assert "kept: 30" in printed and "scores.parquet" in printed
    assert pq.read_table(tmp_path / "o" / "pruned").num_rows == 30


def test_cli_error_is_one_line_not_a_traceback(tmp_path, sst2_parquet, capsys):
    code = main(["prune", "--input", str(sst2_parquet), "--scorer", "text_stats", "--score-column", "n_words", "--keep", "0.5",
                 "--out", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: input has no text column 'text'") and "Traceback" not in err


def test_cli_run_config_with_out_override(tmp_path, sst2_parquet, curation_config, capsys):
    cfg = curation_config(sst2_parquet, tmp_path / "ignored")
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["run", str(path), "--out", str(tmp_path / "o2")]) == 0
    assert (tmp_path / "o2" / "manifest.json").exists() and not (tmp_path / "ignored").exists()


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys; from datapruner.cli import build_parser; build_parser().format_help(); "
        "heavy = [m for m in ('torch', 'transformers', 'faiss', 'sentence_transformers', 'ray') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
