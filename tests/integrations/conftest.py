"""Real RAG rows for the adapter tests: NQ questions, each with its gold passage among 3 others (tests/data)."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest


@pytest.fixture(scope="session")
def rag_rows(test_data) -> list[dict]:
    """Rows with query, passages (4 strings, one holding the answer) and answers."""
    return pq.read_table(test_data / "qa" / "nq_rag_rows.parquet").slice(0, 6).to_pylist()
