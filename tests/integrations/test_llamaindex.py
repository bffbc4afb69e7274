"""The LlamaIndex adapter on real NodeWithScore / QueryBundle objects."""

from __future__ import annotations

import pytest
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode

from datapruner.errors import ConfigError, InputDataError
from datapruner.integrations.llamaindex import DatapruneNodePostprocessor
from datapruner.pipelines.compress import compress


def _nodes(row):
    return [NodeWithScore(node=TextNode(text=p, id_=f"n{i}", metadata={"rank": i}), score=1.0 - i / 10)
            for i, p in enumerate(row["passages"])]


def test_postprocessed_nodes_hold_the_kept_text_and_spans(rag_rows):
    post = DatapruneNodePostprocessor(method="bm25", rate=0.3)
    for row in rag_rows:
        nodes = _nodes(row)
        out = post.postprocess_nodes(nodes, query_bundle=QueryBundle(row["query"]))
        direct = compress(row["query"], row["passages"], method="bm25", rate=0.3)
        assert out and all(isinstance(n, NodeWithScore) and isinstance(n.node, TextNode) for n in out)
        assert "\n\n".join(n.node.get_content(metadata_mode=MetadataMode.NONE) for n in out) == direct.text
        for n in out:
            meta = n.node.metadata["datapruner"]
            i = meta["passage_index"]
            assert n.node.node_id == f"n{i}" and n.score == nodes[i].score and n.node.metadata["rank"] == i
            assert all(row["passages"][i][u["start"]:u["end"]] == u["text"] for u in meta["units"])
            assert meta["tokens_after"] <= meta["budget"]
            assert "datapruner" not in n.node.get_content(metadata_mode=MetadataMode.LLM)  # spans stay out of the prompt
        assert nodes[0].node.get_content() == row["passages"][0]  # the retrieved nodes are not modified
        assert [n.node.text for n in post.postprocess_nodes(nodes, query_str=row["query"])] == [n.node.text for n in out]


def test_bad_options_fail_at_construction_and_a_missing_query_is_named():
    with pytest.raises(ConfigError, match="rate"):
        DatapruneNodePostprocessor(rate=1.5)
    with pytest.raises(InputDataError, match="needs the query"):
        DatapruneNodePostprocessor(method="lead").postprocess_nodes([])
