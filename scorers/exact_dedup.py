"""A9. Exact duplicates: a 128-bit hash of the normalised text; the first row in input order survives.

Normalisation (`normalise_text`, shared with `minhash`): Unicode NFKC, lower-case, whitespace
collapsed, punctuation stripped at the edges of each whitespace token ("Hello, World!" and
"hello world" are the same text; "e-mail" keeps its inner hyphen).

Streaming: `fit` reads the text once, batch by batch, and keeps one 16-byte BLAKE2b digest per
distinct normalised text (a dict from digest to the first row holding it) plus one int64 per row
(the survivor's row index). docs/dedup.md states the bytes per row. Select with `drop_flagged` on
`exact_duplicate`.
"""

from __future__ import annotations

import hashlib
import unicodedata

import numpy as np

from datapruner.curation.dataset import Batch
from datapruner.curation.steps import ScoreStep

DIGEST_BYTES = 16  # 128-bit hash


def _strip_punctuation(token: str) -> str:
    start, end = 0, len(token)
    while start < end and unicodedata.category(token[start]).startswith("P"):
        start += 1
    while end > start and unicodedata.category(token[end - 1]).startswith("P"):
        end -= 1
    return token[start:end]


def normalise_text(text: str) -> str:
    """METHODS.md A9 normalisation: NFKC, lower-case, collapse whitespace, strip punctuation at token edges.

    Tokens that are punctuation only disappear, so ``"Wow !!"`` becomes ``"wow"``.
    """
    tokens = (_strip_punctuation(t) for t in unicodedata.normalize("NFKC", text).lower().split())
    return " ".join(t for t in tokens if t)


def text_digest(text: str) -> bytes:
    """The 128-bit BLAKE2b digest of `normalise_text(text)` (16 bytes)."""
    return hashlib.blake2b(normalise_text(text).encode("utf-8", "surrogatepass"), digest_size=DIGEST_BYTES).digest()


def survivor_column(ids, match: np.ndarray, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
    """The batch's `(duplicate flag, duplicate_of id)` columns from a global (N,) survivor index array.

    `ids` is the run's (N,) id array (``view.info.ids``).

    `match[i]` is the row index of the survivor of row i's group (i itself for a survivor, -1 for an
    invalid row). Flags are None for invalid rows; `duplicate_of` is None except for duplicates.
    """
    rows = match[batch.start : batch.start + len(batch)]
    own = np.arange(batch.start, batch.start + len(batch))
    valid = np.asarray(batch.valid, dtype=bool) & (rows >= 0)
    dup = valid & (rows != own)
    flag = np.array([bool(d) if v else None for d, v in zip(dup, valid)], dtype=object)
    of = np.full(len(batch), None, dtype=object)
    idx = np.flatnonzero(dup)
    if idx.size:
        of[idx] = ids.take(rows[idx]).to_pylist()
    return flag, of


def duplicate_count(match: np.ndarray) -> int:
    """Rows whose survivor is another row, from a global (N,) survivor index array (-1 = invalid)."""
    return int(((match >= 0) & (match != np.arange(len(match)))).sum())


class ExactDedupStep(ScoreStep):
    """Adds `exact_duplicate` (bool, null for invalid rows) and `exact_duplicate_of` (the survivor's id)."""

    name = "exact_dedup"
    needs = frozenset({"text"})
    columns = {
        "exact_duplicate": "true when an earlier row has the same normalised text (null for invalid rows)",
        "exact_duplicate_of": "id of the first row with the same normalised text, for duplicates (null otherwise)",
    }
    params_doc: dict[str, str] = {}

    def fit(self, view) -> None:
        """Stream the text once; map each distinct digest to the first row holding it."""
        first: dict[bytes, int] = {}
        match = np.full(view.n_rows, -1, dtype=np.int64)
        for batch in view.batches():
            for i, (text, ok) in enumerate(zip(batch.texts, batch.valid)):
                if ok:
                    row = batch.start + i
                    match[row] = first.setdefault(text_digest(text), row)
        self.ids_ = view.info.ids
        self.match_ = match
        self.distinct_ = len(first)

    def score_batch(self, batch: Batch) -> dict[str, np.ndarray]:
        """The batch's slice of the flags and survivor ids."""
        flag, of = survivor_column(self.ids_, self.match_, batch)
        return {"exact_duplicate": flag, "exact_duplicate_of": of}

    def write_report(self, out_dir, scores) -> dict:
        """Distinct normalised texts and duplicates found (manifest entries)."""
        if not hasattr(self, "match_"):
            return {}
        return {"distinct_texts": self.distinct_, "duplicates": duplicate_count(self.match_)}
