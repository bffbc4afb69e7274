"""Fixtures of the clustering tests: one thread, an SST-2 sample with seeded duplicates, embeddings."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

EDITS = ("exact", "case", "punctuation", "word")
# one-word substitutions that keep the sentence natural
_SWAPS = {"the": "this", "a": "one", "film": "movie", "movie": "film", "is": "was", "and": "&", "of": "about",
          "it": "this", "this": "that", "to": "toward"}


@pytest.fixture(scope="session", autouse=True)
def _one_blas_thread():
    import faiss
    from threadpoolctl import threadpool_limits

    faiss.omp_set_num_threads(1)
    with threadpool_limits(limits=1):
        yield


def read_sst2(test_data: Path, n: int | None = None) -> tuple[list[str], np.ndarray]:
    with open(test_data / "classification" / "sst2_train.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    rows = rows[:n] if n else rows
    return [r["sentence"] for r in rows], np.array([int(r["label"]) for r in rows])


def edit(text: str, kind: str, rng: np.random.Generator) -> str:
    """A light edit of `text`: exact copy, case change, punctuation change, or one word replaced."""
    if kind == "exact":
        return text
    if kind == "case":
        return text.upper() if rng.random() < 0.5 else text.title()
    if kind == "punctuation":  # change the final mark and drop the first comma
        body = text.rstrip(" .!?")
        body = body.replace(" ,", "", 1)
        return body + (" !" if text.rstrip().endswith(".") else " .")
    words = text.split()
    candidates = [i for i, w in enumerate(words) if w.lower() in _SWAPS]
    i = int(rng.choice(candidates)) if candidates else int(rng.integers(len(words)))
    words[i] = _SWAPS.get(words[i].lower(), "really")
    return " ".join(words)


@dataclass
class SeededDuplicates:
    texts: list[str]
    embeddings: np.ndarray  # (n, d) float32 unit norm
    source: np.ndarray  # (n,) index of the original a copy was made from, -1 for originals
    kind: list[str]  # edit kind per row ("" for originals)


@pytest.fixture(scope="session")
def seeded_duplicates(test_data, embedder) -> SeededDuplicates:
    """400 distinct SST-2 sentences plus 80 copies of sentences with >= 8 words (20 per edit kind)."""
    sentences, _ = read_sst2(test_data)
    seen, originals = set(), []
    for s in sentences:
        key = s.strip().lower()
        if key not in seen:
            seen.add(key)
            originals.append(s.strip())
        if len(originals) == 400:
            break
    rng = np.random.default_rng(0)
    long_enough = [i for i, s in enumerate(originals) if len(s.split()) >= 8]
    picks = rng.choice(long_enough, size=4 * 20, replace=False)
    texts, source, kind = list(originals), [-1] * len(originals), [""] * len(originals)
    for j, i in enumerate(picks):
        k = EDITS[j % 4]
        texts.append(edit(originals[i], k, rng))
        source.append(int(i))
        kind.append(k)
    order = rng.permutation(len(texts))  # copies are not all at the end
    texts = [texts[i] for i in order]
    inverse = np.argsort(order)
    source = np.array([inverse[source[i]] if source[i] >= 0 else -1 for i in order])
    kind = [kind[i] for i in order]
    return SeededDuplicates(texts, embedder.embed(texts), source, kind)
