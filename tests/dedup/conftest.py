"""Real text with seeded duplicates: the dedup tests' ground truth.

Distinct rows: the 70 XQuAD paragraphs and the distinct NQ gold passages (Wikipedia text, tests/data).
Seeded with `random.Random(0)`:
- exact copies: an earlier row's text with its case, spacing and edge punctuation changed (the
  normalised text is identical);
- near copies: a row of at least 100 words with one word replaced (two from 150 words on), which
  keeps the word 5-gram Jaccard similarity >= 0.87 (>= 0.8 is the default threshold).
Every seeded row records which original it copies, so tests check `duplicate_of` too.
"""

from __future__ import annotations

import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

REPLACEMENTS = ["zeppelin", "marmalade", "quartz", "velvet", "lantern", "orchid"]


def _distinct_passages(test_data) -> list[str]:
    squad = json.loads((test_data / "qa" / "xquad_en_sample.json").read_text(encoding="utf-8"))
    texts = [p["context"] for article in squad["data"] for p in article["paragraphs"]]
    with open(test_data / "qa" / "nq_open_sample.jsonl", encoding="utf-8") as f:
        texts += [ctx["text"] for line in f for ctx in json.loads(line)["ctxs"]]
    return list(dict.fromkeys(texts))


def _exact_copy(text: str, rng: random.Random) -> str:
    words = text.split()
    changed = [w.upper() if rng.random() < 0.3 and w.upper().lower() == w.lower() else w for w in words]
    return "  " + "   ".join(changed) + rng.choice([" !", "...", " \u201c\u201d", ""])


def _near_copy(text: str, rng: random.Random) -> str:
    words = text.split()
    for pos in rng.sample(range(10, len(words) - 10), 1 if len(words) < 150 else 2):
        words[pos] = rng.choice(REPLACEMENTS)
    return " ".join(words)


@pytest.fixture(scope="session")
def seeded_duplicates(tmp_path_factory, test_data):
    """(path of a Parquet file, rows as dicts); each row has id, text, kind and copy_of."""
    rng = random.Random(0)
    base = _distinct_passages(test_data)
    rows = [{"id": f"d{i}", "text": t, "kind": "distinct", "copy_of": None} for i, t in enumerate(base)]
    long_rows = [r for r in rows if len(r["text"].split()) >= 100]
    for k, original in enumerate(rng.sample(rows, 30)):
        rows.append({"id": f"e{k}", "text": _exact_copy(original["text"], rng), "kind": "exact", "copy_of": original["id"]})
    for k, original in enumerate(rng.sample(long_rows, 30)):
        rows.append({"id": f"n{k}", "text": _near_copy(original["text"], rng), "kind": "near", "copy_of": original["id"]})
    order = list(range(len(base), len(rows)))
    rng.shuffle(order)
    rows = rows[: len(base)] + [rows[i] for i in order]  # originals first, copies later in a shuffled order
    path = tmp_path_factory.mktemp("dedup") / "seeded.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path, rows
