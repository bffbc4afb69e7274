"""Curate a labelled dataset from Python: drop near-duplicates and label errors, keep the hardest 60%.

Run from the repository root:  .venv/bin/python examples/curate_dataset.py
"""

from pathlib import Path

import pyarrow.parquet as pq

from datapruner import curate

ROOT = Path(__file__).resolve().parents[1]

config = {
    "input": {
        "path": str(ROOT / "tests/data/classification/banking77_train.csv"),
        "columns": {"text": "text", "label": "category"},
    },
    "output": {"dir": str(ROOT / "out/example-curate"), "overwrite": True},  # a rerun replaces the earlier run
    "scorers": [
        {"name": "semdedup"},
        {"name": "confident_learning"},
        {"name": "el2n"},
    ],
    "selection": [
        {"policy": "drop_flagged", "score": "semdedup_duplicate"},
        {"policy": "drop_label_issues"},
        {"policy": "top_fraction", "score": "el2n", "keep": 0.6},
    ],
    "random_state": 0,
}

result = curate(config)
print(f"kept {result.n_kept} of {result.n_rows}; dropped by reason: {result.dropped_by_reason}")
audit = pq.read_table(result.scores_path).to_pandas()
print(audit[~audit.keep].sort_values("label_quality").head(5)[["id", "label_quality", "suggested_label", "reason"]].to_string())
