"""Exact and MinHash dedup on real text with seeded exact and near copies: precision and recall floors."""

from __future__ import annotations

import numpy as np
import pytest

from datapruner.config import config_from_dict
from datapruner.errors import ConfigError
from datapruner.pipelines.curate import score_dataset
from datapruner.registry import get_scorer
from datapruner.scorers.exact_dedup import normalise_text
from datapruner.scorers.minhash_dedup import word_shingles


def _scores(path, out, scorers, random_state=0):
    cfg = config_from_dict({
        "input": {"path": str(path), "columns": {"text": "text", "id": "id"}, "batch_size": 64},
        "output": {"dir": str(out), "plots": False},
        "scorers": scorers,
        "random_state": random_state,
    })
    return score_dataset(cfg).view.scores


def _precision_recall(flagged: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    tp = int((flagged & truth).sum())
    return tp / max(int(flagged.sum()), 1), tp / max(int(truth.sum()), 1)


def test_normalisation_follows_methods_a9():
    assert normalise_text("  Hello,   WORLD!  ") == "hello world"
    assert normalise_text("e-mail \u201cquoted\u201d ...") == "e-mail quoted"
    assert normalise_text("\uff21\uff22\uff23 x") == "abc x"  # NFKC folds full-width letters
    assert word_shingles("one two three", 5) == [b"one two three"]
    assert len(word_shingles("a b c d e f g", 5)) == 3


def test_exact_dedup_finds_every_seeded_copy_and_nothing_else(seeded_duplicates, tmp_path):
    path, rows = seeded_duplicates
    scores = _scores(path, tmp_path, [{"name": "exact_dedup"}])
    flagged = np.array([bool(v) for v in scores["exact_duplicate"]])
    truth = np.array([r["kind"] == "exact" for r in rows])
    precision, recall = _precision_recall(flagged, truth)
    assert (precision, recall) == (1.0, 1.0)
    for row, of in zip(rows, scores["exact_duplicate_of"]):
        if row["kind"] == "exact":
            assert of == row["copy_of"]


def test_minhash_finds_near_and_exact_copies(seeded_duplicates, tmp_path):
    path, rows = seeded_duplicates
    scores = _scores(path, tmp_path, [{"name": "minhash"}])
    flagged = np.array([bool(v) for v in scores["minhash_duplicate"]])
    truth = np.array([r["kind"] != "distinct" for r in rows])
    precision, recall = _precision_recall(flagged, truth)
    near = np.array([r["kind"] == "near" for r in rows])
    near_recall = flagged[near].mean()
    print(f"minhash precision={precision:.3f} recall={recall:.3f} near-copy recall={near_recall:.3f} "
          f"flagged={int(flagged.sum())} seeded={int(truth.sum())} rows={len(rows)}")
    assert precision >= 0.95 and recall >= 0.9 and near_recall >= 0.85
    hits = [(r, of) for r, of, f in zip(rows, scores["minhash_duplicate_of"], flagged) if f and r["kind"] != "distinct"]
    assert np.mean([of == r["copy_of"] for r, of in hits]) >= 0.95
    assert np.all(np.isfinite(scores["minhash_jaccard"]))


def test_minhash_is_deterministic_for_a_seed_and_depends_on_it(seeded_duplicates, tmp_path):
    path, _ = seeded_duplicates
    a = _scores(path, tmp_path / "a", [{"name": "minhash"}], random_state=5)
    b = _scores(path, tmp_path / "b", [{"name": "minhash"}], random_state=5)
    c = _scores(path, tmp_path / "c", [{"name": "minhash", "params": {"seed": 6}}], random_state=5)
    assert np.array_equal(a["minhash_jaccard"], b["minhash_jaccard"])
    assert a["minhash_duplicate_of"].tolist() == b["minhash_duplicate_of"].tolist()
    assert not np.array_equal(a["minhash_jaccard"], c["minhash_jaccard"])


@pytest.mark.parametrize("params,key", [
    ({"threshold": 0}, "threshold"), ({"threshold": 1.5}, "threshold"), ({"num_perm": 1}, "num_perm"),
    ({"ngram": 0}, "ngram"), ({"seed": -1}, "seed"), ({"seed": "x"}, "seed"),
])
def test_minhash_params_are_checked_at_construction(params, key):
    with pytest.raises(ConfigError, match=rf"scorers\[minhash\]\.params\.{key}"):
        get_scorer("minhash")(**params)
