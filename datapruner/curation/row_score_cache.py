"""On-disk cache of per-row scores, keyed by a hash of each row's text.

A model-backed score (a row's perplexity under a reference LM) depends only on the model, its
settings and the row's text. Caching it per text means a rerun, a second policy over the same
data, or a dataset that shares rows with an earlier one recomputes nothing for those rows.

One SQLite file per (namespace, key) under ``$DATAPRUNER_CACHE/row-scores/``: the table maps the
sha256 of a row's text to the score columns. SQLite's own locking makes concurrent writers safe
(several Ray workers on one machine); on a multi-node cluster the cache folder must be on shared
storage that supports POSIX locks, or each node keeps its own cache.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Sequence

from datapruner.paths import cache_dir

SCHEMA_VERSION = 1


def text_keys(texts: Sequence[str], prompts: Sequence[str] | None = None) -> list[bytes]:
    """sha256 digest of each text (of each prompt + text pair when `prompts` is given)."""
    if prompts is None:
        return [hashlib.sha256(b"t\0" + t.encode("utf-8", "surrogatepass")).digest() for t in texts]
    return [
        hashlib.sha256(b"p\0" + p.encode("utf-8", "surrogatepass") + b"\0" + t.encode("utf-8", "surrogatepass")).digest()
        for p, t in zip(prompts, texts)
    ]


class RowScoreCache:
    """Per-row score values by text key, for one model and setting.

    Parameters
    ----------
    namespace : what is cached (e.g. "perplexity"); a folder under the cache.
    key : everything besides the text that the values depend on (model id, window, ...).
    columns : names of the cached values, in order (stored as SQL numbers).

    The object is picklable (it reconnects in the new process), so a fitted step holding it can
    be sent to Ray workers.
    """

    def __init__(self, namespace: str, key: str, columns: Sequence[str]):
        self.namespace = namespace
        self.digest = hashlib.sha256(f"v{SCHEMA_VERSION}|{key}|{','.join(columns)}".encode()).hexdigest()[:32]
        self.key = key
        self.columns = tuple(columns)
        self._conn: sqlite3.Connection | None = None

    @property
    def path(self) -> Path:
        """The SQLite file, under the cache folder of the process that uses it (a Ray worker's own)."""
        return cache_dir() / "row-scores" / self.namespace / f"{self.digest}.sqlite"

    def __getstate__(self):
        return {**self.__dict__, "_conn": None}

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=120)
            cols = ", ".join(f'"{c}" REAL' for c in self.columns)
            conn.execute(f"CREATE TABLE IF NOT EXISTS scores (key BLOB PRIMARY KEY, {cols}) WITHOUT ROWID")
            conn.commit()
            self._conn = conn
        return self._conn

    def get(self, keys: Sequence[bytes]) -> dict[bytes, tuple[float, ...]]:
        """The cached values of the keys that are present, {key: values in `columns` order}."""
        conn = self._connection()
        found: dict[bytes, tuple[float, ...]] = {}
        cols = ", ".join(f'"{c}"' for c in self.columns)
        unique = list(dict.fromkeys(keys))
        for lo in range(0, len(unique), 500):  # stay under SQLite's bound-parameter limit
            chunk = unique[lo : lo + 500]
            marks = ",".join("?" * len(chunk))
            for row in conn.execute(f"SELECT key, {cols} FROM scores WHERE key IN ({marks})", chunk):
                found[bytes(row[0])] = tuple(row[1:])
        return found

    def put(self, keys: Sequence[bytes], values: Sequence[Sequence[float]]) -> None:
        """Store the values of each key (one transaction; an existing key is overwritten)."""
        conn = self._connection()
        marks = ",".join("?" * (1 + len(self.columns)))
        with conn:
            conn.executemany(f"INSERT OR REPLACE INTO scores VALUES ({marks})",
                             [(k, *map(float, v)) for k, v in zip(keys, values)])
