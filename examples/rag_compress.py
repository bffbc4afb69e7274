"""Compress retrieved passages before they go into an LLM prompt, under a hard token budget.

Run from the repository root:  .venv/bin/python examples/rag_compress.py [method]
(method: any registered one: mig (default), perplexity, seqlabel, hybrid, random, lead, bm25, dense)
"""

import json
import sys
from pathlib import Path

from datapruner import Compressor, compress

method = sys.argv[1] if len(sys.argv) > 1 else "mig"
data = json.loads((Path(__file__).parents[1] / "tests/data/qa/xquad_en_sample.json").read_text())
paragraphs = [p for article in data["data"] for p in article["paragraphs"]]

# One question, its paragraph among three others, as a retriever might return them.
question = paragraphs[0]["qas"][0]["question"]
passages = [p["context"] for p in paragraphs[:4]]

result = compress(question, passages, method=method, rate=0.25)  # keep at most 25 % of the tokens
print(f"Q: {question}")
print(f"{result.tokens_before} -> {result.tokens_after} tokens (cap {result.budget}, {result.ratio:.1f}x)")
print(f"passage scores: {[round(s, 3) for s in result.passage_scores]}")
print(result.text)
for unit in result.units:  # where each kept sentence came from
    print(f"  passage {unit.passage} chars {unit.start}-{unit.end} score {unit.score:.3f}")

# Many questions at once with one validated Compressor: model calls are batched across them.
# Method parameters go in `params` (docs/compression.md lists them per method).
params = {"temperature": 0.2} if method == "mig" else None
compressor = Compressor(method, params=params, force_keep="numbers")
print(compressor.describe())
pairs = [(p["qas"][0]["question"], [p["context"]] + passages[1:]) for p in paragraphs[4:8]]
for r in compressor.compress_batch(pairs, target_tokens=120):
    print(f"{r.tokens_before:5d} -> {r.tokens_after:4d} tokens: {r.text[:80]!r}...")
