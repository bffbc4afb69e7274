"""The LangChain adapter inside a real ContextualCompressionRetriever over a retriever defined here."""

from __future__ import annotations

import pytest
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from datapruner.errors import ConfigError
from datapruner.integrations.langchain import DatapruneDocumentCompressor
from datapruner.pipelines.compress import compress


class RowRetriever(BaseRetriever):
    """Returns the passages stored for a query, as a vector store would, with their titles as metadata."""

    rows: dict[str, list[str]]

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return [Document(page_content=p, metadata={"rank": i}, id=f"doc-{i}") for i, p in enumerate(self.rows[query])]


@pytest.fixture(scope="module")
def retriever(rag_rows):
    return RowRetriever(rows={r["query"]: r["passages"] for r in rag_rows})


def test_compressed_retrieval_returns_the_kept_text_with_spans(rag_rows, retriever):
    compressor = DatapruneDocumentCompressor(method="bm25", target_tokens=60)
    pipeline = ContextualCompressionRetriever(base_compressor=compressor, base_retriever=retriever)
    for row in rag_rows:
        docs = pipeline.invoke(row["query"])
        direct = compress(row["query"], row["passages"], method="bm25", target_tokens=60)
        assert docs and all(isinstance(d, Document) for d in docs)
        assert "\n\n".join(d.page_content for d in docs) == direct.text  # the same units as compress()
        for doc in docs:
            meta = doc.metadata["datapruner"]
            source = row["passages"][meta["passage_index"]]
            assert doc.metadata["rank"] == meta["passage_index"] and doc.id == f"doc-{meta['passage_index']}"
            assert meta["units"] and all(source[u["start"]:u["end"]] == u["text"] for u in meta["units"])
            assert meta["method"] == "bm25" and meta["budget"] == 60 and meta["tokens_after"] <= 60
            assert meta["passage_score"] == direct.passage_scores[meta["passage_index"]]


def test_bad_options_fail_at_construction():
    with pytest.raises(ConfigError, match="target_tokens"):
        DatapruneDocumentCompressor(target_tokens=0)
    with pytest.raises(ConfigError, match="params.nope"):
        DatapruneDocumentCompressor(method="mig", params={"nope": 1})


def test_no_documents_give_no_documents():
    assert DatapruneDocumentCompressor(method="lead", rate=0.5).compress_documents([], "q") == []
