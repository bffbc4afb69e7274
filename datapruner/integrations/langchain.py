"""A LangChain document compressor backed by `datapruner.compress` (extra ``langchain``).

    >>> from langchain_classic.retrievers import ContextualCompressionRetriever
    >>> from datapruner.integrations.langchain import DatapruneDocumentCompressor
    >>> compressor = DatapruneDocumentCompressor(method="mig", target_tokens=200)
    >>> retriever = ContextualCompressionRetriever(base_compressor=compressor, base_retriever=my_retriever)
    >>> docs = retriever.invoke("Who built the tower?")

Each returned `Document` is a copy of a retrieved one whose `page_content` is the kept text, with
``metadata["datapruner"]`` holding the unit spans and scores (`KeptPassage`); documents that keep
nothing are left out. The budget caps all documents of one query together.
"""

from __future__ import annotations

from typing import Any, Sequence

from datapruner.errors import require_extra

require_extra("langchain_core", "langchain")

from langchain_core.callbacks import Callbacks  # noqa: E402
from langchain_core.documents import Document  # noqa: E402
from langchain_core.documents.compressor import BaseDocumentCompressor  # noqa: E402
from pydantic import ConfigDict, Field, PrivateAttr  # noqa: E402

from datapruner.integrations.passages import METADATA_KEY, PassageCompression  # noqa: E402


class DatapruneDocumentCompressor(BaseDocumentCompressor):
    """`BaseDocumentCompressor` that keeps the query-relevant sentences of the retrieved documents.

    Fields are the arguments of `datapruner.compress`: `method`, one budget (`target_tokens`,
    `rate` or `threshold`), `params`, and the other `Compressor` options in `options`. One
    `Compressor` is built and validated at construction (a `ConfigError` for a bad value).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    method: str = "mig"
    target_tokens: int | None = None
    rate: float | None = None
    threshold: float | None = None
    params: dict[str, Any] | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    _compression: PassageCompression = PrivateAttr()

    def model_post_init(self, context: Any) -> None:
        """Build (and so validate) the one `Compressor` used by every call."""
        self._compression = PassageCompression(self.method, target_tokens=self.target_tokens, rate=self.rate,
                                               threshold=self.threshold, params=self.params, **self.options)

    def compress_documents(self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None) -> Sequence[Document]:
        """The documents that keep something, each with its kept text and ``metadata["datapruner"]``."""
        docs = list(documents)
        kept = self._compression.compress(query, [d.page_content for d in docs])
        return [Document(page_content=k.text, metadata={**docs[k.index].metadata, METADATA_KEY: k.metadata},
                         id=docs[k.index].id)
                for k in kept]
