"""Cheap text statistics (no model): length in characters and words, and the share of
alphabetic characters. Useful as a first filter (drop tiny or symbol-heavy rows) before model scores."""

from __future__ import annotations

import numpy as np

from datapruner.curation.dataset import Batch
from datapruner.curation.steps import ScoreStep


def text_statistics(texts: list[str]) -> dict[str, np.ndarray]:
    """Per text: `n_chars`, `n_words` (whitespace-separated) and `alpha_ratio` (letters / non-space chars).

    Returns (N,) arrays; `alpha_ratio` is NaN for a text with no non-space character.
    """
    n_chars = np.array([len(t) for t in texts], dtype=np.int64)
    n_words = np.array([len(t.split()) for t in texts], dtype=np.int64)
    alpha = np.full(len(texts), np.nan)
    for i, t in enumerate(texts):
        visible = [c for c in t if not c.isspace()]
        if visible:
            alpha[i] = sum(c.isalpha() for c in visible) / len(visible)
    return {"n_chars": n_chars, "n_words": n_words, "alpha_ratio": alpha}


class TextStatsStep(ScoreStep):
    """Adds `n_chars`, `n_words` and `alpha_ratio` (no model, no parameters)."""

    name = "text_stats"
    needs = frozenset({"text"})
    columns = {
        "n_chars": "characters in the text",
        "n_words": "whitespace-separated words",
        "alpha_ratio": "letters / non-space characters (NaN when none)",
    }
    params_doc = {}

    def score_batch(self, batch: Batch) -> dict[str, np.ndarray]:
        """Length and alphabetic share of each row (NaN ratio for invalid rows)."""
        stats = text_statistics(batch.texts)
        stats["alpha_ratio"][~batch.valid] = np.nan
        return stats
