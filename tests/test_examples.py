"""The example scripts a new user copies from still run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("*.py"))
# What an example's output must show, beyond running (the RAG adapters: budget and kept spans).
EXPECTED_OUTPUT = {
    "langchain_compress.py": ("tokens (cap 80)", "documents kept", "spans [("),
    "llamaindex_compress.py": ("tokens (cap", "nodes kept", "retriever score", "spans [("),
}


@pytest.mark.slow
@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(script, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DATAPRUNER_PROGRESS": "0"}
    done = subprocess.run([sys.executable, str(script)], cwd=script.parents[1], env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip(), "an example prints what it did"
    for text in EXPECTED_OUTPUT.get(script.name, ()):
        assert text in done.stdout, f"{script.name} output lacks {text!r}"
