"""Label-noise fixtures: the committed SST-2 and Banking77 samples with 20% seeded label flips.

Each flipped row gets a different class drawn uniformly (numpy `default_rng(0)`); the flipped mask
is the ground truth the noise-detection tests score against.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

FLIP_RATE = 0.2

DATASETS = {
    "sst2": ("sst2_train.csv", "sentence", "label"),
    "banking77": ("banking77_train.csv", "text", "category"),
}


@dataclass
class NoisySample:
    name: str
    texts: list[str]
    label_names: list
    clean: np.ndarray  # (N,) true class indices
    noisy: np.ndarray  # (N,) after flipping
    flipped: np.ndarray  # (N,) bool
    embeddings: np.ndarray  # (N, d) float32

    @property
    def n_classes(self) -> int:
        return len(self.label_names)


def flip_labels(labels: np.ndarray, n_classes: int, *, rate: float = FLIP_RATE, random_state: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Flip `rate` of the labels to a different class, uniformly; returns (noisy labels, flipped mask)."""
    rng = np.random.default_rng(random_state)
    n = len(labels)
    rows = rng.choice(n, int(round(rate * n)), replace=False)
    noisy = labels.copy()
    noisy[rows] = (labels[rows] + rng.integers(1, n_classes, len(rows))) % n_classes
    flipped = np.zeros(n, dtype=bool)
    flipped[rows] = True
    return noisy, flipped


def read_sample(test_data: Path, name: str) -> tuple[list[str], list[str]]:
    file, text_col, label_col = DATASETS[name]
    with open(test_data / "classification" / file, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r[text_col] for r in rows], [r[label_col] for r in rows]


def cached_sample_embeddings(test_data: Path, name: str, embedder) -> np.ndarray:
    """Embeddings through the pipeline's on-disk cache, so the config tests reuse them (and vice versa)."""
    from datapruner.curation.dataset import ColumnMap, Dataset
    from datapruner.curation.embedding_cache import cached_embeddings

    file, text_col, label_col = DATASETS[name]
    dataset = Dataset(test_data / "classification" / file, format="csv", columns=ColumnMap(text=text_col, label=label_col))
    return np.asarray(cached_embeddings(dataset, embedder), dtype=np.float32)


@pytest.fixture(scope="session")
def noisy_samples(test_data, embedder) -> dict[str, NoisySample]:
    out = {}
    for name in DATASETS:
        texts, raw = read_sample(test_data, name)
        names = sorted(set(raw))
        clean = np.array([names.index(v) for v in raw], dtype=np.int64)
        noisy, flipped = flip_labels(clean, len(names))
        out[name] = NoisySample(name, texts, names, clean, noisy, flipped, cached_sample_embeddings(test_data, name, embedder))
    return out


@pytest.fixture(scope="session")
def fitted_proxies(noisy_samples):
    """The default proxy (logistic layer, S=5 seeds, E=10 epochs, 5 folds) fitted on the noisy labels."""
    from datapruner.curation.proxy import ProxyClassifier

    return {
        name: ProxyClassifier(random_state=0).fit(s.embeddings, s.noisy, n_classes=s.n_classes)
        for name, s in noisy_samples.items()
    }


def precision_at_k(suspicion: np.ndarray, flipped: np.ndarray) -> float:
    """Share of flipped rows among the k most suspicious rows, k = number of flipped rows."""
    k = int(flipped.sum())
    top = np.argsort(-suspicion, kind="stable")[:k]
    return float(flipped[top].mean())


@pytest.fixture(scope="session")
def precision_at():
    return precision_at_k


@pytest.fixture(scope="session")
def classification_sample(test_data):
    """`(texts, raw labels)` of a committed sample by name ("sst2" or "banking77")."""
    return lambda name: read_sample(test_data, name)
