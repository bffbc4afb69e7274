"""Every parameter of a curation config is checked when the config is loaded: a typo in a policy,
a scorer or the Ray options fails through `curate` in well under a second, names the key, and
happens before any row is read or any model loads."""

from __future__ import annotations


import pytest

from datapruner.errors import ConfigError
from datapruner.models.cache import cached_models
from datapruner.pipelines.curate import curate

EMBEDDING_SCORER = [{"name": "prototypicality", "params": {"n_clusters": 4}}]
LM_SCORER = [{"name": "perplexity"}]

CASES = {
    "direction typo": (LM_SCORER, [{"policy": "top_fraction", "score": "perplexity", "keep": 0.5, "direction": "hihg"}],
                       r"selection\[top_fraction\]\.direction.*'hihg'.*'high', 'low'"),
    "band typo": (LM_SCORER, [{"policy": "band", "score": "perplexity", "keep": 0.5, "band": "midle"}],
                  r"selection\[band\]\.band.*'midle'.*'bottom', 'middle', 'top'"),
    "offset out of range": (LM_SCORER, [{"policy": "top_fraction", "score": "perplexity", "keep": 0.5, "offset": 1.0}],
                            r"selection\[top_fraction\]\.offset.*\[0, 1\)"),
    "threshold bounds reversed": (LM_SCORER, [{"policy": "threshold", "score": "perplexity", "min": 50, "max": 10}],
                                  r"selection\[threshold\]\.max.*>= min"),
    "prototypes keep is a fraction": (EMBEDDING_SCORER, [{"policy": "prototypes", "keep": "hard"}],
                                      r"selection\[prototypes\]\.keep.*'hard'.*prefer: hard\|easy"),
    "prototypes prefer typo": (EMBEDDING_SCORER, [{"policy": "prototypes", "keep": 0.5, "prefer": "hrad"}],
                               r"selection\[prototypes\]\.prefer.*'hrad'"),
    "unknown policy key": (EMBEDDING_SCORER, [{"policy": "cluster_quota", "keep": 0.5, "clusters": "dbp_cluster"}],
                           r"selection\[cluster_quota\]\.clusters.*one of \['cluster', 'keep', 'keep_n', 'keep_total', 'score', 'weight'\]"),
    "cluster column not a name": (EMBEDDING_SCORER, [{"policy": "cluster_quota", "keep": 0.5, "cluster": 3}],
                                  r"selection\[cluster_quota\]\.cluster.*a string"),
    "quadrants keep": (LM_SCORER, [{"policy": "quadrants", "keep": 0}], r"selection\[quadrants\]\.keep.*\(0, 1\]"),
    "scorer param": ([{"name": "density", "params": {"assign_rows": 0}}], [], r"scorers\[density\]\.params\.assign_rows"),
    "old clustering batch_size": ([{"name": "semdedup", "params": {"batch_size": 512}}], [],
                                  r"scorers\[semdedup\]\.params\.batch_size.*assign_rows"),
    "proxy param": ([{"name": "el2n", "params": {"n_seeds": 0}}], [], r"scorers\[el2n\]\.params\.n_seeds.*>= 1"),
    "grand proxy param": ([{"name": "grand", "params": {"lr": -1}}], [], r"scorers\[grand\]\.params\.lr"),
    "cv_seeds": ([{"name": "confident_learning", "params": {"cv_seeds": 0}}], [], r"scorers\[confident_learning\]\.params\.cv_seeds.*>= 1"),
    "grand has no folds": ([{"name": "grand", "params": {"cv_seeds": 2}}], [], r"scorers\[grand\]\.params\.cv_seeds"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_parameter_fails_at_load_before_any_model(case, sst2_parquet, curation_config, tmp_path):
    scorers, selection, message = CASES[case]
    cfg = curation_config(sst2_parquet, tmp_path / "out", scorers=scorers, selection=selection)
    models_before = set(cached_models())
    with pytest.raises(ConfigError, match=message):
        curate(cfg)
    assert set(cached_models()) == models_before  # nothing was loaded
    assert not (tmp_path / "out").exists()  # nothing was read or written


def test_bad_ray_option_fails_before_the_input_is_read(sst2_parquet, curation_config, tmp_path):
    cfg = curation_config(sst2_parquet, tmp_path / "out", engine="ray", ray={"concurency": 2})
    with pytest.raises(ConfigError, match=r"ray\.concurency.*'concurrency'"):
        curate(cfg)
    assert not (tmp_path / "out").exists()  # nothing was read or written
    cfg["ray"] = {"threads_per_worker": 0}
    with pytest.raises(ConfigError, match=r"ray\.threads_per_worker.*>= 1"):
        curate(cfg)
