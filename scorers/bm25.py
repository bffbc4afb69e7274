"""Okapi BM25 (Robertson et al.; the Lucene ``+1`` IDF form) over a fixed set of documents.

``score(q, d) = sum over query words w of IDF(w) * f(w, d) * (k1 + 1) / (f(w, d) + k1 * (1 - b + b * |d| / avgdl))``
with ``IDF(w) = ln(1 + (N - df(w) + 0.5) / (df(w) + 0.5))``. Words are lower-cased ``\\w+`` runs
without common English stop words. The ``bm25`` compression method
(:mod:`datapruner.scorers.compress_bm25`) scores units against the query with it; the benchmark
uses it to pick hard distractor passages.
"""

from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np

_WORD = re.compile(r"\w+", re.UNICODE)
STOP_WORDS = frozenset(
    "a an the of in on at to for by with from and or is are was were be been being what which who whom whose "
    "when where why how did do does that this these those it its as into than then there their his her he she "
    "they them i you we our your not no".split()
)


def words(text: str) -> list[str]:
    """Lower-cased word tokens of `text` without common stop words."""
    return [w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS]


class BM25Index:
    """BM25 over a fixed list of documents (IDF, lengths and postings computed once).

    Parameters
    ----------
    docs : the documents.
    k1 : term-frequency saturation (> 0; default 1.5).
    b : length normalisation in [0, 1] (default 0.75).
    """

    def __init__(self, docs: list[str], *, k1: float = 1.5, b: float = 0.75):
        self.k1, self.b = k1, b
        toks = [words(d) for d in docs]
        self.n = len(docs)
        self.dl = np.array([len(t) for t in toks], dtype=np.float64)
        self.avgdl = max(float(self.dl.mean()) if self.n else 0.0, 1e-9)
        self.df = Counter(w for t in toks for w in set(t))
        self.postings: dict[str, list[tuple[int, int]]] = {}
        for i, t in enumerate(toks):
            for w, f in Counter(t).items():
                self.postings.setdefault(w, []).append((i, f))

    def scores(self, query: str, *, distinct_terms: bool = False) -> np.ndarray:
        """(n_docs,) BM25 scores of `query` against every document.

        Parameters
        ----------
        query : the query text.
        distinct_terms : count each query word once; by default a word repeated in the query
            counts once per occurrence.
        """
        q = words(query)
        out = np.zeros(self.n)
        for w in (set(q) if distinct_terms else q):
            post = self.postings.get(w)
            if not post:
                continue
            idf = math.log(1.0 + (self.n - self.df[w] + 0.5) / (self.df[w] + 0.5))
            for i, f in post:
                out[i] += idf * f * (self.k1 + 1) / (f + self.k1 * (1 - self.b + self.b * self.dl[i] / self.avgdl))
        return out
