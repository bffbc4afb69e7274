"""Prototypicality (A4) sanity checks on Banking77 (77 classes, 1200 rows) with k = classes."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from datapruner.curation.kmeans import SphericalKMeans
from datapruner.errors import ConfigError
from datapruner.scorers.prototypicality import (
    class_prototype_distances,
    class_prototypes,
    prototypicality_scores,
)
from datapruner.selection.quotas import Prototypes


@pytest.fixture(scope="module")
def banking(test_data, embedder):
    with open(test_data / "classification" / "banking77_train.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    names = sorted({r["category"] for r in rows})
    labels = np.array([names.index(r["category"]) for r in rows])
    return embedder.embed([r["text"] for r in rows]), labels, len(names)


def test_flipped_labels_lie_farther_from_their_class_prototype(banking):
    x, labels, k = banking
    rng = np.random.default_rng(0)
    flipped = rng.random(len(labels)) < 0.1
    noisy = labels.copy()
    noisy[flipped] = (labels[flipped] + rng.integers(1, k, flipped.sum())) % k  # always a different class
    prototypes = class_prototypes(x, noisy, n_classes=k)
    d = class_prototype_distances(x, noisy, prototypes)
    gap = d[flipped].mean() - d[~flipped].mean()
    print(f"class-prototype distance: flipped {d[flipped].mean():.3f}, clean {d[~flipped].mean():.3f}")
    assert gap > 0.15  # measured about 0.3 on this sample


def test_self_supervised_distance_on_real_data(banking):
    x, labels, k = banking
    dist = prototypicality_scores(x, labels=labels, random_state=0)  # default k = 77 classes
    assert dist.shape == (len(x),) and np.all((dist >= 0) & (dist <= 2))
    model = SphericalKMeans(k, random_state=0).fit(x)
    cluster, d2 = model.assign(x)
    np.testing.assert_allclose(dist, d2)  # the same fit and assignment
    # rows whose class is rare in their k-means cluster are atypical of it: farther from its centroid
    majority = np.zeros(len(x), dtype=bool)
    for j in np.unique(cluster):
        members = cluster == j
        majority[members] = labels[members] == np.bincount(labels[members]).argmax()
    print(f"self-supervised distance: majority {dist[majority].mean():.3f}, minority {dist[~majority].mean():.3f}")
    assert dist[~majority].mean() > dist[majority].mean()
    # the score ignores labels: another labelling with the same k gives the same scores
    shuffled = np.random.default_rng(1).permutation(labels)
    np.testing.assert_array_equal(dist, prototypicality_scores(x, labels=shuffled, random_state=0))


def test_prototypes_policy_keeps_hard_or_easy(banking):
    x, labels, _ = banking
    dist = prototypicality_scores(x, n_clusters=30, random_state=0)
    scores = {"proto_distance": dist}
    all_rows = np.ones(len(dist), dtype=bool)
    hard = Prototypes(keep=0.25).select(scores, all_rows)
    easy = Prototypes(keep=0.25, prefer="easy").select(scores, all_rows)
    assert hard.sum() == easy.sum() == 300
    assert dist[hard].min() >= dist[~hard].max()
    assert dist[easy].max() <= dist[~easy].min()
    # every parameter is checked when the policy is built, before any scores exist
    with pytest.raises(ConfigError, match=r"selection\[prototypes\]\.prefer.*'hard', 'easy'"):
        Prototypes(keep=0.5, prefer="medium")
    with pytest.raises(ConfigError, match=r"selection\[prototypes\]\.keep.*\(0, 1\]"):
        Prototypes(keep=0)
    with pytest.raises(ConfigError, match=r"selection\[prototypes\]\.keep.*prefer: hard\|easy"):
        Prototypes(keep="hard")  # the old spelling says where the choice moved
    with pytest.raises(ConfigError, match=r"selection\[prototypes\]\.fraction"):
        Prototypes(fraction=0.5)
