"""Real score columns for the policy tests: the committed Banking77 sample (1,200 rows, 77 classes).

Scores come from the library's own components on the sample's cached MiniLM embeddings: a logistic
proxy (one seed, in-sample) gives EL2N and the error / uncertainty of the EU plane; the distance to
the class centre is the moderate-coreset distance.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass

import numpy as np
import pytest

from datapruner.selection import SelectionContext


@dataclass
class PolicyInputs:
    scores: dict[str, np.ndarray]
    labels: np.ndarray
    embeddings: np.ndarray

    @property
    def n(self) -> int:
        return len(self.labels)

    def context(self, random_state: int = 0) -> SelectionContext:
        return SelectionContext(labels=self.labels, embeddings=lambda: self.embeddings, random_state=random_state)


@pytest.fixture(scope="session")
def policy_inputs(test_data, embedder) -> PolicyInputs:
    from datapruner.curation.dataset import ColumnMap, Dataset
    from datapruner.curation.embedding_cache import cached_embeddings
    from datapruner.curation.proxy import ProxyClassifier
    from datapruner.selection.moderate import class_centre_distances
    from datapruner.scorers.el2n import el2n_scores
    from datapruner.scorers.eu_quadrants import error_uncertainty

    path = test_data / "classification" / "banking77_train.csv"
    with open(path, encoding="utf-8") as f:
        raw = [r["category"] for r in csv.DictReader(f)]
    names = sorted(set(raw))
    labels = np.array([names.index(v) for v in raw], dtype=np.int64)
    dataset = Dataset(path, format="csv", columns=ColumnMap(text="text", label="category"))
    emb = np.asarray(cached_embeddings(dataset, embedder), dtype=np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    probs = ProxyClassifier(n_seeds=1, epochs=5, n_folds=0, random_state=0).fit(emb, labels, n_classes=len(names)).seed_pred_probs_[0]
    el2n = el2n_scores(labels, probs)
    error, uncertainty = error_uncertainty(labels, probs)
    scores = {
        "el2n": el2n,
        "eu_error": error,
        "eu_uncertainty": uncertainty,
        "centre_distance": class_centre_distances(emb, labels),
        "label_class": labels.astype(np.float64),
        "uniform_weight": np.full(len(labels), 1.0 / len(names)),
        "hard_flag": el2n > np.quantile(el2n, 0.9),
    }
    return PolicyInputs(scores=scores, labels=labels, embeddings=emb)
