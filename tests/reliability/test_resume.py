"""A killed curation run resumes: finished steps are reused from the work folder, outputs byte-identical."""

from __future__ import annotations

import pytest

from datapruner.pipelines.curate import curate


def _config(helpers, input_path, out):
    cfg = helpers.text_stats_config(input_path, out)
    cfg["scorers"] = [{"name": "text_stats"}, {"name": "prototypicality", "params": {"n_clusters": 4}}]
    cfg["selection"] = [{"policy": "top_fraction", "score": "proto_distance", "keep": 0.5}]
    cfg["random_state"] = 3
    return cfg


def test_text_stats_step_is_reused_after_a_kill(tmp_path, sst2_input, helpers):
    cfg = helpers.text_stats_config(sst2_input, tmp_path / "run")
    proc = helpers.run_config(cfg, tmp_path, kill_at="step:text_stats")
    assert proc.returncode == -9, proc.stderr
    assert not (tmp_path / "run").exists()
    resumed = curate(cfg)
    assert resumed.manifest["resume"]["reused_steps"] == ["text_stats"]
    fresh = curate(helpers.text_stats_config(sst2_input, tmp_path / "fresh"))
    assert fresh.manifest["resume"]["reused_steps"] == []
    assert helpers.data_digests(resumed.out_dir) == helpers.data_digests(fresh.out_dir)


@pytest.mark.slow
def test_killed_after_the_kmeans_step_resumes_byte_identical(tmp_path, sst2_input, helpers):
    run = tmp_path / "run"
    proc = helpers.run_config(_config(helpers, sst2_input, run), tmp_path, kill_at="step:prototypicality")
    assert proc.returncode == -9, proc.stderr
    work = tmp_path / ".run.work"
    assert list(work.glob("clusters/*/centroids.npz")) and len(list(work.glob("steps/*/done.json"))) == 2
    resumed = curate(_config(helpers, sst2_input, run))
    assert resumed.manifest["resume"]["reused_steps"] == ["text_stats", "prototypicality"]
    fresh = curate(_config(helpers, sst2_input, tmp_path / "fresh"))  # its own work folder: all computed
    assert fresh.manifest["resume"]["computed_steps"] == ["text_stats", "prototypicality"]
    assert helpers.data_digests(resumed.out_dir) == helpers.data_digests(fresh.out_dir)


def test_a_changed_config_recomputes(tmp_path, sst2_input, helpers):
    cfg = helpers.text_stats_config(sst2_input, tmp_path / "run")
    curate(cfg)
    cfg["output"]["overwrite"] = True
    assert curate(cfg).manifest["resume"]["reused_steps"] == ["text_stats"]
    cfg["input"]["batch_size"] = 16
    assert curate(cfg).manifest["resume"]["reused_steps"] == []
