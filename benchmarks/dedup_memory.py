"""Dedup memory: bytes per row that exact_dedup and minhash keep in memory (the README block shows them).

Measured with `tracemalloc` on the structures the steps build in `fit`, for N seeded synthetic
distinct texts of 40 words: exact_dedup's digest -> first-row dict plus its (N,) int64 survivor
array; minhash's (N, num_perm) uint32 signatures plus `datasketch.MinHashLSH` (the band keys and
its key index) at the default threshold 0.8 and num_perm 128. The MinHash signatures themselves
are computed before measuring (they are transient per batch in the step).

Run:  .venv/bin/python benchmarks/dedup_memory.py [--quick]
Writes benchmarks/results/dedup_memory.json (quick: dedup_memory_quick.json, 2,000 rows).
"""

from __future__ import annotations

import argparse
import sys
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

import numpy as np  # noqa: E402


def texts(n: int, random_state: int) -> list[str]:
    rng = np.random.default_rng(random_state)
    words = rng.integers(0, 50_000, size=(n, 40))
    return [f"row {i} " + " ".join(f"w{w}" for w in row) for i, row in enumerate(words)]


def exact_bytes_per_row(rows: list[str]) -> float:
    from datapruner.scorers.exact_dedup import text_digest

    tracemalloc.start()
    first: dict[bytes, int] = {}
    match = np.full(len(rows), -1, dtype=np.int64)
    for i, t in enumerate(rows):
        match[i] = first.setdefault(text_digest(t), i)
    used = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return used / len(rows)


def minhash_bytes_per_row(rows: list[str], *, num_perm: int, threshold: float, ngram: int, seed: int) -> tuple[float, int, int]:
    from datasketch import MinHash, MinHashLSH

    from datapruner.scorers.minhash_dedup import word_shingles

    signatures_in = MinHash.bulk([word_shingles(t, ngram) for t in rows], num_perm=num_perm, seed=seed)
    tracemalloc.start()
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    signatures = np.zeros((len(rows), num_perm), dtype=np.uint32)
    for i, m in enumerate(signatures_in):
        signatures[i] = m.hashvalues
        lsh.insert(i, m, check_duplication=False)
    used = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return used / len(rows), lsh.b, lsh.r


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--random-state", type=int, default=0)
    args = parser.parse_args()
    started = common.now()
    threads = common.set_threads(1)
    n = args.rows or (2_000 if args.quick else 50_000)
    rows = texts(n, args.random_state)
    exact = exact_bytes_per_row(rows)
    near, bands, per_band = minhash_bytes_per_row(rows, num_perm=128, threshold=0.8, ngram=5, seed=args.random_state)
    payload = {
        "rows": n, "words_per_text": 40,
        "exact_dedup_bytes_per_row": round(exact, 1),
        "minhash_bytes_per_row": round(near, 1),
        "minhash_signature_bytes_per_row": 128 * 4,
        "minhash": {"num_perm": 128, "threshold": 0.8, "ngram": 5, "bands": bands, "rows_per_band": per_band},
    }
    path = common.write_result("dedup_memory", payload, quick=args.quick, threads=threads, started=started)
    print(f"exact_dedup {exact:.0f} B/row, minhash {near:.0f} B/row ({n} rows) -> {path}")


if __name__ == "__main__":
    main()
