"""Executors run a step's `score_batch` over every batch. They never know a scorer by name.

`local` (default) runs in this process; `ray` runs the same steps on Ray Data
(`datapruner.executors.ray_executor`), an existing distributed engine.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Iterator, Protocol

import numpy as np

from datapruner.curation.dataset import DatasetView
from datapruner.curation.outputs import write_pruned
from datapruner.curation.steps import ScoreStep
from datapruner.errors import ConfigError


class Executor(Protocol):
    """What an executor does (the extension point for a new engine)."""

    name: str
    writes_off_driver: bool
    """True when `write_pruned` runs on the engine's workers: the pipeline then writes and checks
    `scores.parquet` on the driver while it runs (from a second thread), instead of after it."""

    def start(self) -> None:
        """Begin the engine's own start-up work without waiting for it; called once, before the input is
        read (the ingest pass runs on the driver meanwhile)."""

    def map_batches(self, step: ScoreStep, view: DatasetView) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
        """Score every batch of `view` with the fitted `step`.

        Yields
        ------
        (rows, columns)
            `rows` (n,) int64 global row indices and `columns` {name: (n,) array} from
            `step.score_batch`; batches may come in any order, every row exactly once.
        """

    def write_pruned(self, folder: Path, view: DatasetView, keep: np.ndarray, *, scores: dict[str, np.ndarray] | None,
                     shard_rows: int) -> int:
        """Write the kept rows into `folder/pruned/` (`folder`: the run's staging folder; shards sorted by
        name in input order); return their count. (`scores.parquet` is written by the pipeline, with
        `datapruner.curation.outputs.write_scores`, on every engine.)"""


class LocalExecutor:
    """Runs every batch in this process, in input order (joined into windows of
    `step.bucket_rows` rows when the step asks for them)."""

    name = "local"
    writes_off_driver = False

    def start(self):
        """Nothing to start: every batch runs in this process."""

    def map_batches(self, step, view):
        """See `Executor.map_batches`."""
        from datapruner.executors.batch_windows import batch_windows
        from datapruner.progress import progress_bar

        with progress_bar(f"scoring: {step.name}", total=view.n_rows) as bar:
            for batch in batch_windows(view.batches(with_embeddings=step.needs_embeddings), step.bucket_rows):
                yield np.arange(batch.start, batch.start + len(batch)), step.score_batch(batch)
                bar.advance(len(batch))

    def write_pruned(self, folder, view, keep, *, scores, shard_rows):
        """See `Executor.write_pruned` (`datapruner.curation.outputs.write_pruned`: the driver streams the input)."""
        return write_pruned(folder, view.dataset, keep, scores=scores, shard_rows=shard_rows)


def make_executor(engine: str, options: dict[str, Any] | None = None) -> Executor:
    """Build the executor a config names; options are checked here, before any data is read.

    Parameters
    ----------
    engine : {"local", "ray"}
        The config's ``engine``.
    options : dict, optional
        The config's ``ray:`` section (keyword arguments of `RayExecutor`); ignored by ``local``.

    Returns
    -------
    Executor

    Raises
    ------
    ConfigError
        For an unknown engine, an unknown option, or a bad option value.
    """
    options = dict(options or {})
    if engine == "local":
        return LocalExecutor()
    if engine == "ray":
        from datapruner.executors.ray_executor import RayExecutor

        accepted = [p for p in inspect.signature(RayExecutor).parameters]
        for key in options:
            if key not in accepted:
                raise ConfigError(f"ray.{key}", options[key], f"one of {accepted}")
        return RayExecutor(**options)
    from datapruner.config import ENGINES

    raise ConfigError("engine", engine, f"one of {list(ENGINES)}")
