"""SphericalKMeans (Part C): fit on a sample, streaming assignment, save/load, resume, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from datapruner.curation.clustering import assign_resumable
from datapruner.curation.kmeans import SphericalKMeans, default_n_clusters
from datapruner.errors import ConfigError, InputDataError, NotFittedError


def test_default_n_clusters_follows_methods():
    assert default_n_clusters(800, n_classes=2) == 2
    assert default_n_clusters(800) == 28  # round(sqrt(800))
    assert default_n_clusters(10**9) == 10_000  # capped
    assert default_n_clusters(3, n_classes=77) == 3  # never more than the rows


def test_fit_assign_on_real_embeddings(seeded_duplicates):
    x = seeded_duplicates.embeddings
    model = SphericalKMeans(8, random_state=0, max_points_per_centroid=40).fit(x)
    assert model.centroids_.shape == (8, x.shape[1])
    assert model.n_samples_fit_ == 8 * 40  # the sample respects max_points_per_centroid
    np.testing.assert_allclose(np.linalg.norm(model.centroids_, axis=1), 1.0, atol=1e-5)
    labels, dist = model.assign(x.astype(np.float16), assign_rows=37)  # float16 like the cache, odd batches
    sims = x @ model.centroids_.T
    np.testing.assert_array_equal(labels, sims.argmax(1))  # nearest centroid
    np.testing.assert_allclose(dist, 1 - sims.max(1), atol=2e-3)
    assert len(np.unique(labels)) == 8


def test_rows_left_out_get_null_values(seeded_duplicates):
    x = seeded_duplicates.embeddings[:100].copy()
    rows = np.ones(100, dtype=bool)
    rows[[3, 50]] = False
    x[[3, 50]] = 0.0  # invalid rows of the cache are zero vectors; they must be skipped, not rejected
    model = SphericalKMeans(4, random_state=1).fit(x, rows=rows)
    labels, dist = model.assign(x, rows=rows)
    assert labels[3] == labels[50] == -1 and np.isnan(dist[[3, 50]]).all()
    assert (labels[rows] >= 0).all()


def test_same_random_state_same_centroids(seeded_duplicates):
    x = seeded_duplicates.embeddings
    a = SphericalKMeans(10, random_state=3).fit(x).centroids_
    b = SphericalKMeans(10, random_state=3).fit(x).centroids_
    c = SphericalKMeans(10, random_state=4).fit(x).centroids_
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_save_load_assigns_new_data(tmp_path, seeded_duplicates):
    x = seeded_duplicates.embeddings
    model = SphericalKMeans(6, random_state=0).fit(x[:300])
    path = model.save(tmp_path / "c.npz")
    again = SphericalKMeans.load(path)
    np.testing.assert_array_equal(again.centroids_, model.centroids_)
    np.testing.assert_array_equal(again.assign(x[300:])[0], model.assign(x[300:])[0])
    with pytest.raises(InputDataError, match="does not exist"):
        SphericalKMeans.load(tmp_path / "missing.npz")


def test_not_fitted():
    with pytest.raises(NotFittedError, match="fit"):
        SphericalKMeans(3).assign(np.eye(3, dtype=np.float32))


def test_bad_input(seeded_duplicates):
    x = seeded_duplicates.embeddings[:20].copy()
    with pytest.raises(ConfigError, match=r"n_clusters.*21.*at most the number of rows to cluster \(20\)"):
        SphericalKMeans(21).fit(x)
    with pytest.raises(ConfigError, match="n_clusters"):
        SphericalKMeans(0)
    bad = x.copy()
    bad[7, 5] = np.nan
    with pytest.raises(InputDataError, match="row 7 contains NaN"):
        SphericalKMeans(2).fit(bad)
    zero = x.copy()
    zero[4] = 0.0
    with pytest.raises(InputDataError, match="row 4 is a zero vector"):
        SphericalKMeans(2).fit(zero)
    model = SphericalKMeans(2).fit(x)
    with pytest.raises(InputDataError, match="row 4 is a zero vector"):
        model.assign(zero)
    rows = np.ones(20, dtype=bool)
    rows[:5] = False  # rows left out shift positions: the message must still name the global row
    bad[7, 5], bad[12, 0] = 0.0, np.inf
    with pytest.raises(InputDataError, match="row 12 contains NaN or inf"):
        SphericalKMeans(2).fit(bad, rows=rows)
    with pytest.raises(InputDataError, match="row 12 contains NaN or inf"):
        model.assign(bad, rows=rows, assign_rows=8)


def test_assignment_resumes_from_shards(tmp_path, seeded_duplicates):
    x = seeded_duplicates.embeddings
    rows = np.ones(len(x), dtype=bool)
    model = SphericalKMeans(5, random_state=0).fit(x)
    labels, dist, stats = assign_resumable(model, x, rows=rows, directory=tmp_path, shard_rows=100)
    assert stats == {"shards": 5, "skipped": 0, "computed": 5}
    shard = next(tmp_path.glob("assign-*/shard-00002.npz"))
    shard.unlink()  # as if the pass had been killed before writing shard 2
    labels2, dist2, stats2 = assign_resumable(model, x, rows=rows, directory=tmp_path, shard_rows=100)
    assert stats2 == {"shards": 5, "skipped": 4, "computed": 1}
    np.testing.assert_array_equal(labels, labels2)
    np.testing.assert_array_equal(dist, dist2)
