"""Every registered scorer meets the same contract, on the same small real dataset:
one value per row for each declared column, null/NaN for invalid rows, identical output from two
independent computations with the same random_state, and a ConfigError (not a traceback) for an
unknown parameter."""

from __future__ import annotations

import csv

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datapruner.config import config_from_dict
from datapruner.errors import ConfigError
from datapruner.registry import get_scorer, scorer_catalog
from datapruner.pipelines.curate import score_dataset

# Small settings so the whole contract runs in seconds per scorer; the methods are unchanged.
FAST_PARAMS = {
    "el2n": {"n_seeds": 2, "epochs": 3, "n_folds": 3},
    "grand": {"n_seeds": 2},
    "confident_learning": {"n_seeds": 1, "epochs": 3, "n_folds": 3},
    "eu_quadrants": {"n_seeds": 1, "epochs": 3},
    "prototypicality": {"n_clusters": 4},
    "density": {"n_clusters": 4},
    "semdedup": {"n_clusters": 4},
}
SCORERS = sorted(scorer_catalog())


@pytest.fixture(scope="module")
def labelled_input(tmp_path_factory, test_data):
    with open(test_data / "classification" / "sst2_train.csv", encoding="utf-8") as f:
        rows = [{"sentence": r["sentence"], "label": int(r["label"])} for r in list(csv.DictReader(f))[:90]]
    rows[5]["sentence"] = None
    rows[11]["sentence"] = "  "
    path = tmp_path_factory.mktemp("conformance") / "in.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def _score(path, out, name, params):
    cfg = config_from_dict({
        "input": {"path": str(path), "columns": {"text": "sentence", "label": "label"}, "batch_size": 32},
        "output": {"dir": str(out), "plots": False},
        "scorers": [{"name": name, "params": params}],
        "models": {"lm_max_length": 64},
        "random_state": 3,
    })
    return score_dataset(cfg).view


@pytest.mark.slow
@pytest.mark.parametrize("name", SCORERS)
def test_scorer_contract(name, labelled_input, tmp_path, embedder, causal_lm, monkeypatch):
    step_cls = get_scorer(name)
    monkeypatch.setenv("DATAPRUNER_CACHE", str(tmp_path / "cache-a"))  # no embedding or row score from an earlier run
    params = FAST_PARAMS.get(name, {})
    first = _score(labelled_input, tmp_path / "a", name, params)
    # every produced column is declared (some, e.g. eu_quadrants' generation-only columns, depend on the data)
    assert first.scores and set(first.scores) <= set(step_cls.columns)
    invalid = ~first.valid
    assert invalid.sum() == 2
    for column, values in first.scores.items():
        assert len(values) == 90, column
        if values.dtype.kind == "f":
            assert np.all(np.isnan(values[invalid])), f"{column} must be NaN for invalid rows"
            assert np.isfinite(values[~invalid]).mean() > 0.5, f"{column} scored too few valid rows"
        elif values.dtype == object:
            assert all(v is None for v in values[invalid]), f"{column} must be null for invalid rows"
    # determinism: a second run in another output folder, with its own cache, computes everything
    # again (embeddings, per-row perplexity; proxies live in the run's view, centroids in its work folder)
    monkeypatch.setenv("DATAPRUNER_CACHE", str(tmp_path / "cache-b"))
    second = _score(labelled_input, tmp_path / "b", name, params)
    assert first.fitted.keys() == second.fitted.keys()
    assert all(first.fitted[k] is not second.fitted[k] for k in first.fitted)
    for column, values in first.scores.items():
        other = second.scores[column]
        if values.dtype.kind == "f":
            assert np.array_equal(values, other, equal_nan=True), f"{column} differs between runs"
        else:
            assert values.tolist() == other.tolist(), f"{column} differs between runs"


@pytest.mark.parametrize("name", SCORERS)
def test_unknown_parameter_is_a_config_error(name):
    with pytest.raises(ConfigError, match=rf"scorers\[{name}\]\.params\.no_such_option"):
        get_scorer(name)(no_such_option=1)
