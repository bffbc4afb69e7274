"""LlamaIndex: a node postprocessor that compresses retrieved nodes for the query.

Run from the repository root (needs the `llamaindex` extra; offline, bundled models):
    .venv/bin/python examples/llamaindex_compress.py [method]
"""

import sys
from pathlib import Path

import pyarrow.parquet as pq
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from datapruner.integrations.llamaindex import DatapruneNodePostprocessor

method = sys.argv[1] if len(sys.argv) > 1 else "mig"
rows = pq.read_table(Path(__file__).parents[1] / "tests/data/qa/nq_rag_rows.parquet").slice(0, 2).to_pylist()

# Also usable as index.as_query_engine(node_postprocessors=[postprocessor]).
postprocessor = DatapruneNodePostprocessor(method=method, rate=0.25)  # validated here, no model loads
for row in rows:
    # As a retriever returns them: the question's gold passage among three others, with scores.
    nodes = [NodeWithScore(node=TextNode(text=p, id_=f"{row['id']}-{i}"), score=1.0 - 0.1 * i)
             for i, p in enumerate(row["passages"])]
    kept = postprocessor.postprocess_nodes(nodes, query_bundle=QueryBundle(row["query"]))
    print(f"Q: {row['query']}  (answer: {row['answers'][0]})")
    m0 = kept[0].node.metadata["datapruner"]
    print(f"  {m0['tokens_before']} -> {m0['tokens_after']} tokens (cap {m0['budget']}), "
          f"{len(kept)} of {len(nodes)} nodes kept")
    for n in kept:
        m = n.node.metadata["datapruner"]
        spans = [(u["start"], u["end"]) for u in m["units"]]
        print(f"  node {n.node.node_id} retriever score {n.score:.2f} passage score {m['passage_score']:.3f} "
              f"spans {spans}: {n.node.text[:100]!r}")
