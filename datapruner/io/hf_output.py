"""``output.format: hf``: the pruned rows as a Hugging Face `datasets` folder (`save_to_disk`).

The run writes `pruned/` as Parquet shards first (the streaming writer); this module then turns
that folder into a `datasets.Dataset.save_to_disk` folder in its place, so
``datasets.load_from_disk(OUT/pruned)`` (and `datapruner run` with ``input.path: OUT/pruned``)
reads it. Arrow data streams from the shards to disk through a cache folder in the run's work
folder, which is removed afterwards.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from datapruner.paths import atomic_dir

OUTPUT_FORMATS = ("parquet", "hf")


def convert_to_hf_dataset(directory: Path, *, work_dir: Path) -> Path:
    """Replace the Parquet shards in `directory` by a `datasets` save_to_disk folder; return `directory`."""
    from datasets import Dataset

    directory = Path(directory)
    shards = sorted(str(p) for p in directory.glob("*.parquet"))
    cache = Path(work_dir) / "hf-output-cache"
    try:
        ds = Dataset.from_parquet(shards, cache_dir=str(cache))
        with atomic_dir(directory) as tmp:
            ds.save_to_disk(str(tmp))
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return directory
