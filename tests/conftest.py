"""Shared fixtures. Models load once per session; every test runs offline and without progress bars."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ["DATAPRUNER_PROGRESS"] = "0"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest

TEST_DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """One thread per process is the steady setting on shared 2-core machines (STACK.md)."""
    from datapruner.models import set_threads

    set_threads(1)


@pytest.fixture(scope="session")
def test_data() -> Path:
    return TEST_DATA


@pytest.fixture(scope="session")
def embedder():
    from datapruner.models import Embedder

    model = Embedder()
    model.embed(["warm up"])
    return model


@pytest.fixture(scope="session")
def causal_lm():
    from datapruner.models import CausalLM

    lm = CausalLM(max_length=256)
    lm.token_stats(["warm up"])
    return lm


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The full datasets beside the repo (benchmarks use them; tests use committed samples)."""
    path = Path(os.environ.get("DATAPRUNER_SHARED_DATA", Path(__file__).parents[1] / ".." / "shared" / "data"))
    if not path.exists():
        pytest.skip(f"shared data not found at {path}; set DATAPRUNER_SHARED_DATA")
    return path.resolve()
