"""LangChain: compress what a retriever returns, inside a ContextualCompressionRetriever.

Run from the repository root (needs the `langchain` extra; offline, bundled models):
    .venv/bin/python examples/langchain_compress.py [method]
"""

import sys
from pathlib import Path

import pyarrow.parquet as pq
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from datapruner.integrations.langchain import DatapruneDocumentCompressor

method = sys.argv[1] if len(sys.argv) > 1 else "mig"
rows = pq.read_table(Path(__file__).parents[1] / "tests/data/qa/nq_rag_rows.parquet").slice(0, 2).to_pylist()


class SampleRetriever(BaseRetriever):
    """Stands in for a vector store: each NQ question's gold passage among three others."""

    passages: dict[str, list[str]]

    def _get_relevant_documents(self, query, *, run_manager):
        return [Document(page_content=p, metadata={"rank": i}) for i, p in enumerate(self.passages[query])]


retriever = ContextualCompressionRetriever(
    base_compressor=DatapruneDocumentCompressor(method=method, target_tokens=80),  # validated here
    base_retriever=SampleRetriever(passages={r["query"]: r["passages"] for r in rows}),
)
for row in rows:
    docs = retriever.invoke(row["query"])
    meta = [d.metadata["datapruner"] for d in docs]
    print(f"Q: {row['query']}  (answer: {row['answers'][0]})")
    print(f"  {meta[0]['tokens_before']} -> {meta[0]['tokens_after']} tokens (cap {meta[0]['budget']}), "
          f"{len(docs)} of {len(row['passages'])} documents kept")
    for doc, m in zip(docs, meta):
        spans = [(u["start"], u["end"]) for u in m["units"]]
        print(f"  doc {m['passage_index']} score {m['passage_score']:.3f} spans {spans}: {doc.page_content[:100]!r}")
