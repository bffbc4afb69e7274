"""The recommended recipe (config file, `prune --recipe`) and the quadrant populations in audit + manifest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from datapruner.config import load_config
from datapruner.errors import ConfigError
from datapruner.selection.base import count_for
from datapruner.selection.recipes import RECOMMENDED_SCORERS, RECOMMENDED_SWITCH, recipe_selection, recommended

CONFIGS = Path(__file__).parents[2] / "configs"


def test_recommended_is_coverage_per_class_unless_a_switch_is_given():
    assert RECOMMENDED_SWITCH is None
    for keep, beta in ((0.1, 0.3), (0.3, 0.1), (0.4, 0.0), (0.5, 0.0), (0.9, 0.0)):  # CCS's cut: max(0, 0.4 - keep)
        chain = recommended(keep)
        assert [p["policy"] for p in chain] == ["drop_label_issues", "coverage"]
        assert chain[0]["min_keep_total"] == keep and chain[1]["per_class"] is True and chain[1]["beta"] == pytest.approx(beta)
    below, above = recommended(0.2, switch=0.5), recommended(0.5, switch=0.5)
    assert [p["policy"] for p in below] == ["drop_label_issues", "top_fraction"] and below[1]["direction"] == "low"
    assert [p["policy"] for p in above] == ["drop_label_issues", "coverage"]
    with pytest.raises(ConfigError, match=r"--recipe.*'recommended'"):
        recipe_selection("recomended", 0.3)
    with pytest.raises(ConfigError, match=r"--keep.*\(0, 1\]"):
        recommended(0.0)


def test_shipped_config_is_the_recipe():
    raw = yaml.safe_load((CONFIGS / "curate-recommended.yaml").read_text())
    keep = raw["selection"][-1]["keep_total"]
    assert raw["selection"] == recommended(keep)
    assert [{"params": {}, **s} for s in raw["scorers"]] == list(RECOMMENDED_SCORERS)
    load_config(CONFIGS / "curate-recommended.yaml", out="unused")  # valid at load


def test_recipe_flags_are_checked_before_any_data_is_read(tmp_path, capsys):
    from datapruner.cli import main

    missing = str(tmp_path / "missing.csv")  # never read: the flags fail first
    base = ["prune", "--input", missing, "--recipe", "recommended", "--keep", "0.3", "--out", str(tmp_path / "o")]
    assert main(base) != 0
    assert "--label-column" in capsys.readouterr().err
    assert main([*base, "--label-column", "label", "--band", "middle"]) != 0
    assert "--band" in capsys.readouterr().err


@pytest.mark.slow
def test_prune_recipe_recommended_end_to_end(test_data, tmp_path):
    from datapruner.cli import main

    out = tmp_path / "rec"
    code = main(["prune", "--input", str(test_data / "classification" / "banking77_train.csv"), "--text-column", "text",
                 "--label-column", "category", "--recipe", "recommended", "--keep", "0.3", "--out", str(out)])
    assert code == 0
    audit = pq.read_table(out / "scores.parquet").to_pydict()
    keep = np.array(audit["keep"])
    assert keep.sum() == count_for(0.3, len(keep))
    reasons = {r.split("(")[0] for r, k in zip(audit["reason"], keep) if not k}
    assert reasons == {"drop_label_issues", "coverage"}
    labels = np.array(audit["suggested_label"], dtype=object)  # present: the confident_learning scorer ran
    assert len(labels) == len(keep)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["selection"] == recommended(0.3)
    used = {s["name"]: s.get("params", {}) for s in manifest["config"]["scorers"]}
    assert used == {s["name"]: s["params"] for s in RECOMMENDED_SCORERS}  # the recipe's detector, not the default


@pytest.mark.slow
def test_quadrant_populations_and_shortfall_reach_audit_and_manifest(test_data, tmp_path, caplog):
    from datapruner.pipelines.curate import curate

    cfg = {
        "input": {"path": str(test_data / "classification" / "banking77_train.csv"), "format": "csv",
                  "columns": {"text": "text", "label": "category"}},
        "output": {"dir": str(tmp_path / "q"), "plots": False},
        "scorers": [{"name": "eu_quadrants", "params": {"n_seeds": 1}}],
        "selection": [{"policy": "quadrants", "keep_total": 0.5}],
    }
    with caplog.at_level("WARNING"):
        result = curate(cfg)
    audit = pq.read_table(result.scores_path).to_pydict()
    quadrant = np.array(audit["quadrant"], dtype=object)
    topped = np.array(audit["quadrant_topped_up"], dtype=object)
    entry = result.manifest["report"]["eu_quadrants"]["quadrants"]
    assert entry["populations"] == {q: int((quadrant == q).sum()) for q in ("Q1", "Q2", "Q3", "Q4", "unassigned")}
    assert entry["topped_up"] == int((topped == True).sum())  # noqa: E712 (object column)
    # classification data: error and uncertainty move together, so Q2 + Q4 cannot hold half the rows
    assert entry["populations"]["Q2"] + entry["populations"]["Q4"] < result.n_kept
    assert entry["shortfall"] is True and "prompt/response" in entry["warning"]
    assert any("fewer than the budget" in r.message for r in caplog.records)
    assert result.n_kept == count_for(0.5, result.n_rows)
