"""Adapters that put `datapruner.compress` inside RAG frameworks (optional extras).

- `datapruner.integrations.langchain.DatapruneDocumentCompressor`: a LangChain
  `BaseDocumentCompressor` (use it in a `ContextualCompressionRetriever`); extra ``langchain``.
- `datapruner.integrations.llamaindex.DatapruneNodePostprocessor`: a LlamaIndex
  `BaseNodePostprocessor`; extra ``llamaindex``.

Both take the arguments of `datapruner.compress` (method, a budget, `params`, the Compressor
options), build one `Compressor` at construction (so a bad value fails there, before any model
loads) and share `PassageCompression` (docs/integrations.md).
"""
