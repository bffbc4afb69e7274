"""A LlamaIndex node postprocessor backed by `datapruner.compress` (extra ``llamaindex``).

    >>> from datapruner.integrations.llamaindex import DatapruneNodePostprocessor
    >>> post = DatapruneNodePostprocessor(method="mig", target_tokens=200)
    >>> nodes = post.postprocess_nodes(retrieved_nodes, query_str="Who built the tower?")
    >>> index.as_query_engine(node_postprocessors=[post])   # or inside a query engine

Each returned `NodeWithScore` keeps the retriever's score and holds a copy of its node whose text
is the kept text, with ``metadata["datapruner"]`` holding the unit spans and scores (`KeptPassage`);
that key is excluded from what the LLM and the embedder see. Nodes that keep nothing are left out.
The budget caps all nodes of one query together.
"""

from __future__ import annotations

from typing import Any, List, Optional

from datapruner.errors import InputDataError, require_extra

require_extra("llama_index.core", "llamaindex")

from llama_index.core.bridge.pydantic import Field, PrivateAttr  # noqa: E402
from llama_index.core.postprocessor.types import BaseNodePostprocessor  # noqa: E402
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle  # noqa: E402

from datapruner.integrations.passages import METADATA_KEY, PassageCompression  # noqa: E402


class DatapruneNodePostprocessor(BaseNodePostprocessor):
    """`BaseNodePostprocessor` that keeps the query-relevant sentences of the retrieved nodes.

    Fields are the arguments of `datapruner.compress`: `method`, one budget (`target_tokens`,
    `rate` or `threshold`), `params`, and the other `Compressor` options in `options`. One
    `Compressor` is built and validated at construction (a `ConfigError` for a bad value).
    """

    method: str = "mig"
    target_tokens: Optional[int] = None
    rate: Optional[float] = None
    threshold: Optional[float] = None
    params: Optional[dict] = None
    options: dict = Field(default_factory=dict)
    _compression: PassageCompression = PrivateAttr()

    def model_post_init(self, context: Any) -> None:
        """Build (and so validate) the one `Compressor` used by every call."""
        self._compression = PassageCompression(self.method, target_tokens=self.target_tokens, rate=self.rate,
                                               threshold=self.threshold, params=self.params, **self.options)

    @classmethod
    def class_name(cls) -> str:
        """The name LlamaIndex serialises this component under."""
        return "DatapruneNodePostprocessor"

    def _postprocess_nodes(self, nodes: List[NodeWithScore], query_bundle: Optional[QueryBundle] = None) -> List[NodeWithScore]:
        if query_bundle is None:
            raise InputDataError("DatapruneNodePostprocessor needs the query: pass query_bundle or query_str")
        texts = [n.node.get_content(metadata_mode=MetadataMode.NONE) for n in nodes]
        out = []
        for kept in self._compression.compress(query_bundle.query_str, texts):
            original = nodes[kept.index]
            node = original.node.model_copy(deep=True)
            node.set_content(kept.text)
            node.metadata[METADATA_KEY] = kept.metadata
            for keys in (node.excluded_llm_metadata_keys, node.excluded_embed_metadata_keys):
                if METADATA_KEY not in keys:
                    keys.append(METADATA_KEY)
            out.append(NodeWithScore(node=node, score=original.score))
        return out
