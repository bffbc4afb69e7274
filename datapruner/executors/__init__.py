"""Executors run a step's `score_batch` over every batch. They never know a scorer by name.

`local` (default) runs in this process; `ray` runs the same steps on Ray Data
(`datapruner.executors.ray_executor`), an existing distributed engine.
"""

from __future__ import annotations

from typing import Any, Iterator, Protocol

import numpy as np

from datapruner.curation.dataset import DatasetView
from datapruner.curation.steps import ScoreStep


class Executor(Protocol):
    def map_batches(self, step: ScoreStep, view: DatasetView) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
        """Yield (global row indices, score columns) for every batch, in any order."""


class LocalExecutor:
    """Runs every batch in this process, in input order."""

    name = "local"

    def map_batches(self, step, view):
        from datapruner.progress import progress_bar

        with progress_bar(f"scoring: {step.name}", total=view.n_rows) as bar:
            for batch in view.batches(with_embeddings=step.needs_embeddings):
                yield np.arange(batch.start, batch.start + len(batch)), step.score_batch(batch)
                bar.advance(len(batch))


def make_executor(engine: str, options: dict[str, Any] | None = None) -> Executor:
    if engine == "local":
        return LocalExecutor()
    if engine == "ray":
        from datapruner.executors.ray_executor import RayExecutor

        return RayExecutor(**(options or {}))
    raise ValueError(f"unknown engine {engine!r}")
