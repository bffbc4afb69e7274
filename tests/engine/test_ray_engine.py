"""The same steps on a real local Ray cluster give the same scores as the local engine."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from datapruner.pipelines.curate import curate

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    import os

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_engine_matches_local(tmp_path, sst2_parquet, curation_config, ray_cluster):
    local = curate(curation_config(sst2_parquet, tmp_path / "local"))
    distributed = curate(curation_config(sst2_parquet, tmp_path / "ray", engine="ray", ray={"concurrency": 2}))
    a = pq.read_table(local.scores_path)
    b = pq.read_table(distributed.scores_path)
    assert a.equals(b)
    assert distributed.manifest["config"]["engine"] == "ray"


def test_ray_engine_runs_a_model_step(tmp_path, sst2_parquet, curation_config, ray_cluster, causal_lm):
    cfg = curation_config(sst2_parquet, tmp_path / "ray", engine="ray", ray={"concurrency": 1},
                          scorers=[{"name": "perplexity"}], selection=[{"policy": "band", "score": "perplexity", "keep": 0.5}])
    cfg["input"]["batch_size"] = 40
    result = curate(cfg)
    ppl = pq.read_table(result.scores_path).column("perplexity").to_numpy()
    assert np.all(np.isfinite(ppl)) and len(ppl) == 120
    expected = [s.perplexity for s in causal_lm.token_stats(pq.read_table(sst2_parquet).column("sentence").to_pylist()[:5])]
    assert np.allclose(ppl[:5], expected, rtol=1e-3)


def test_ray_workers_read_embeddings_from_the_cache(tmp_path, sst2_parquet, curation_config, ray_cluster):
    """An embedding step on Ray: workers open the driver's cache entry (an `EmbeddingFile`) and score
    exactly what the local engine scores."""
    scorers = [{"name": "prototypicality", "params": {"n_clusters": 4}}]
    selection = [{"policy": "prototypes", "keep": 0.5, "prefer": "easy"}]
    local = curate(curation_config(sst2_parquet, tmp_path / "local", scorers=scorers, selection=selection))
    distributed = curate(curation_config(sst2_parquet, tmp_path / "ray", engine="ray", ray={"concurrency": 1},
                                         scorers=scorers, selection=selection))
    assert pq.read_table(local.scores_path).equals(pq.read_table(distributed.scores_path))
