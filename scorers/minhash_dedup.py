"""A9. Near duplicates: MinHash LSH over word n-gram shingles (Broder 1997), through `datasketch`.

1. Each valid row's text is normalised as in `exact_dedup` (NFKC, lower-case, whitespace collapsed,
   punctuation stripped at token edges) and cut into word n-gram shingles (default n = 5; a text
   with fewer than n words is one shingle).
2. A seeded `datasketch.MinHash` signature (`num_perm` = 128 by default) per row; `MinHashLSH` at
   the Jaccard `threshold` (default 0.8) proposes candidate earlier rows.
3. A candidate is confirmed when the estimated Jaccard (the share of equal signature values) is
   >= `threshold`; confirmed pairs are joined with union-find, and the first row (input order) of
   each connected group survives. Every other member gets `minhash_duplicate_of` = that row's id.

Streaming: `fit` reads the text once, batch by batch. What stays in memory is the signatures
(`num_perm` uint32 per row), the LSH band keys and three (N,) arrays; docs/dedup.md states the
bytes per row. Select with `drop_flagged` on `minhash_duplicate`.
"""

from __future__ import annotations

import numpy as np

from datapruner.curation.dataset import Batch
from datapruner.curation.steps import ScoreStep
from datapruner.scorers.exact_dedup import duplicate_count, normalise_text, survivor_column
from datapruner.validation import check_number, check_positive_int


def word_shingles(text: str, n: int = 5) -> list[bytes]:
    """The distinct word n-grams of `normalise_text(text)` as UTF-8 bytes; fewer than n words: one shingle."""
    words = normalise_text(text).split()
    if len(words) < n:
        return [" ".join(words).encode("utf-8", "surrogatepass")]
    return sorted({" ".join(words[i : i + n]).encode("utf-8", "surrogatepass") for i in range(len(words) - n + 1)})


class UnionFind:
    """Disjoint sets over row indices 0..n-1 whose root is always the smallest member (the survivor)."""

    def __init__(self, n: int):
        self.parent = np.arange(n, dtype=np.int64)

    def find(self, i: int) -> int:
        """The smallest row index in `i`'s set (with path halving)."""
        parent = self.parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return int(i)

    def union(self, a: int, b: int) -> None:
        """Join the sets of `a` and `b`; the smaller root becomes the root."""
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


class MinHashStep(ScoreStep):
    """Adds `minhash_duplicate`, `minhash_duplicate_of` and `minhash_jaccard`."""

    name = "minhash"
    needs = frozenset({"text"})
    columns = {
        "minhash_duplicate": "true when the row is in a near-duplicate group whose first row is earlier (null for invalid rows)",
        "minhash_duplicate_of": "id of the first row of the row's near-duplicate group, for duplicates (null otherwise)",
        "minhash_jaccard": "highest estimated Jaccard similarity to an earlier LSH candidate (0 when none; NaN for invalid rows)",
    }
    params_doc = {
        "threshold": "Jaccard similarity at which two rows are near duplicates, in (0, 1] (default 0.8)",
        "num_perm": "MinHash permutations per signature (default 128)",
        "ngram": "words per shingle (default 5; texts with fewer words are one shingle)",
        "seed": "seed of the MinHash permutations (default: the run's random_state)",
    }

    def __init__(self, **params):
        super().__init__(**params)
        where = f"scorers[{self.name}].params"
        self.threshold = check_number(f"{where}.threshold", self.params.get("threshold", 0.8), low=0.0, high=1.0, low_open=True)
        self.num_perm = check_positive_int(f"{where}.num_perm", self.params.get("num_perm", 128), minimum=2)
        self.ngram = check_positive_int(f"{where}.ngram", self.params.get("ngram", 5))
        seed = self.params.get("seed")
        self.seed = None if seed is None else check_positive_int(f"{where}.seed", seed, minimum=0)

    def fit(self, view) -> None:
        """Stream the text once: signature, LSH query (confirmed by estimated Jaccard), union, insert."""
        from datasketch import MinHash, MinHashLSH

        seed = view.random_state if self.seed is None else self.seed
        n = view.n_rows
        lsh = MinHashLSH(threshold=self.threshold, num_perm=self.num_perm)
        signatures = np.zeros((n, self.num_perm), dtype=np.uint32)
        best = np.where(view.valid, 0.0, np.nan)
        groups = UnionFind(n)
        for batch in view.batches():
            rows = [batch.start + i for i, ok in enumerate(batch.valid) if ok]
            shingles = [word_shingles(batch.texts[r - batch.start], self.ngram) for r in rows]
            for row, m in zip(rows, MinHash.bulk(shingles, num_perm=self.num_perm, seed=seed)):
                signatures[row] = m.hashvalues
                for other in lsh.query(m):
                    jaccard = float(np.mean(signatures[row] == signatures[other]))
                    best[row] = max(best[row], jaccard)
                    if jaccard >= self.threshold:
                        groups.union(row, other)
                lsh.insert(row, m, check_duplication=False)
        self.match_ = np.array([groups.find(i) if ok else -1 for i, ok in enumerate(view.valid)], dtype=np.int64)
        self.jaccard_ = best
        self.ids_ = view.info.ids
        self.bands_ = (int(lsh.b), int(lsh.r))

    def score_batch(self, batch: Batch) -> dict[str, np.ndarray]:
        """The batch's slice of the flags, survivor ids and best estimated Jaccard."""
        flag, of = survivor_column(self.ids_, self.match_, batch)
        return {"minhash_duplicate": flag, "minhash_duplicate_of": of,
                "minhash_jaccard": self.jaccard_[batch.start : batch.start + len(batch)].copy()}

    def write_report(self, out_dir, scores) -> dict:
        """The LSH settings and the duplicates found (manifest entries)."""
        if not hasattr(self, "match_"):
            return {}
        return {
            "threshold": self.threshold, "num_perm": self.num_perm, "ngram": self.ngram,
            "bands": self.bands_[0], "rows_per_band": self.bands_[1],
            "duplicates": duplicate_count(self.match_),
        }
