"""Run score steps on Ray Data.

The driver fits each step (global state such as k-means or proxies) and stages the batches a step
needs as Parquet shards under the run's work folder; Ray Data then streams those shards through
`map_batches` on its workers, each holding one copy of the fitted step, and the driver collects
the score columns by row index. Embeddings are read by the workers from the on-disk cache, so
a multi-node cluster needs the cache (`DATAPRUNER_CACHE`) and work folder on shared storage.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from datapruner.curation.dataset import Batch, DatasetView
from datapruner.errors import ConfigError, require_extra
from datapruner.paths import atomic_dir
from datapruner.validation import check_positive_int

if TYPE_CHECKING:
    from datapruner.curation.embedding_cache import EmbeddingFile

log = logging.getLogger(__name__)

ROW, ID, TEXT, VALID, LABEL, PROMPT, RESPONSE = (
    "__dp_row", "__dp_id", "__dp_text", "__dp_valid", "__dp_label", "__dp_prompt", "__dp_response"
)


class RayExecutor:
    """Ray Data executor: the driver fits, workers score staged Parquet shards.

    Parameters (the config's ``ray:`` section)
    ------------------------------------------
    address : str, optional
        An existing cluster; default: start a local one.
    num_cpus : int, optional
        Size of the local cluster (default: every CPU).
    concurrency : int, optional
        Workers per step (default: CPUs - 1, one CPU left for reading).
    threads_per_worker : int, default 1
        Torch threads in each worker.
    """

    name = "ray"

    def __init__(self, *, address: str | None = None, num_cpus: int | None = None, concurrency: int | None = None,
                 threads_per_worker: int = 1):
        if address is not None and not isinstance(address, str):
            raise ConfigError("ray.address", address, "a Ray cluster address such as 'ray://host:10001' (or unset)")
        self.address = address
        self.num_cpus = None if num_cpus is None else check_positive_int("ray.num_cpus", num_cpus)
        self.concurrency = None if concurrency is None else check_positive_int("ray.concurrency", concurrency)
        self.threads_per_worker = check_positive_int("ray.threads_per_worker", threads_per_worker)

    def _init(self):
        ray = require_extra("ray", "ray")
        if not ray.is_initialized():
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")
            os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "ignore_reinit_error": True}
            if self.address:
                kwargs["address"] = self.address
            else:
                kwargs["num_cpus"] = self.num_cpus or os.cpu_count()
            ray.init(**kwargs)
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        return ray

    def map_batches(self, step, view: DatasetView):
        """Stage the input once, score it on Ray Data workers, yield (rows, columns) parts (see `Executor`)."""
        ray = self._init()
        staging = _stage(view)
        embedding_file = view.embedding_file() if step.needs_embeddings else None
        # Step workers must leave one CPU free: otherwise Ray Data's file-listing and read tasks wait
        # forever behind workers that hold every CPU of a small cluster. Reading is light I/O.
        cpus = float(ray.cluster_resources().get("CPU", 1))
        workers = self.concurrency or max(1, int(cpus) - 1)
        cpus_per_worker = min(1.0, max(cpus - 1.0, 0.5) / workers)
        ds = ray.data.read_parquet(str(staging), file_extensions=["parquet"], num_cpus=0)
        out = ds.map_batches(
            _StepWorker,
            fn_constructor_kwargs={
                "step": step,
                "schema": view.info.schema,
                "has_labels": view.labels is not None,
                "embedding_file": embedding_file,
                "threads": self.threads_per_worker,
            },
            batch_size=view.dataset.batch_size,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=cpus_per_worker,
        )
        for table in out.iter_batches(batch_format="pyarrow", batch_size=None):
            rows = table.column(ROW).to_numpy()
            cols = {name: _to_numpy(table.column(name)) for name in table.column_names if name != ROW}
            yield rows, cols


def _to_numpy(col: pa.ChunkedArray) -> np.ndarray:
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type) or col.null_count:
        return np.array(col.to_pylist(), dtype=object)
    return col.to_numpy()


def _stage(view: DatasetView) -> Path:
    """Write the input as Parquet shards with row index, text, validity and labels (once per input)."""
    folder = view.work_dir / "ray-staging" / view.info.input_fingerprint[:16]
    if (folder / "_SUCCESS").exists():
        return folder
    with atomic_dir(folder) as tmp:
        import pyarrow.parquet as pq

        for k, batch in enumerate(view.batches()):
            rb = batch.record_batch
            extra = {
                ROW: pa.array(np.arange(batch.start, batch.start + len(batch))),
                ID: pa.array(batch.ids, pa.string()),
                TEXT: pa.array(batch.texts, pa.string()),
                VALID: pa.array(batch.valid),
                LABEL: pa.array(batch.labels if batch.labels is not None else np.full(len(batch), -1)),
                PROMPT: pa.array(batch.prompts if batch.prompts is not None else [None] * len(batch), pa.string()),
                RESPONSE: pa.array(batch.responses if batch.responses is not None else [None] * len(batch), pa.string()),
            }
            table = pa.Table.from_batches([rb]).select([n for n in rb.schema.names if n not in extra])
            for name, arr in extra.items():
                table = table.append_column(name, arr)
            pq.write_table(table, Path(tmp) / f"part-{k:05d}.parquet")
        (Path(tmp) / "_SUCCESS").write_text("")
    return folder


class _StepWorker:
    """One fitted step per Ray worker; turns staged rows back into a `Batch`."""

    def __init__(self, step, schema: pa.Schema, has_labels: bool, embedding_file: "EmbeddingFile | None", threads: int):
        import torch

        torch.set_num_threads(threads)
        self.step = step
        self.schema = schema
        self.embeddings = embedding_file.open() if embedding_file is not None else None
        self.has_labels = has_labels

    def __call__(self, table: pa.Table) -> pa.Table:
        """Score a Ray batch. Steps index their fitted state by `Batch.start`, so a batch is split
        into runs of consecutive rows first (Ray may join blocks that are not adjacent)."""
        rows = table.column(ROW).to_numpy()
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        bounds = [0, *breaks.tolist(), len(rows)]
        parts = [self._score_run(table.slice(lo, hi - lo)) for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo]
        return pa.concat_tables(parts) if parts else pa.table({ROW: pa.array([], pa.int64())})

    def _score_run(self, table: pa.Table) -> pa.Table:
        rows = table.column(ROW).to_numpy()
        labels = table.column(LABEL).to_numpy()
        prompts = table.column(PROMPT).to_pylist()
        responses = table.column(RESPONSE).to_pylist()
        raw = table.select([n for n in self.schema.names if n in table.column_names]).combine_chunks()
        batch = Batch(
            start=int(rows[0]),
            ids=table.column(ID).to_pylist(),
            texts=table.column(TEXT).to_pylist(),
            valid=table.column(VALID).to_numpy(zero_copy_only=False),
            labels=labels if self.has_labels else None,
            record_batch=raw.to_batches()[0],
            prompts=None if all(p is None for p in prompts) else [p or "" for p in prompts],
            responses=None if all(r is None for r in responses) else [r or "" for r in responses],
            embeddings=None if self.embeddings is None else np.asarray(self.embeddings[rows], dtype=np.float32),
        )
        cols = self.step.score_batch(batch)
        out = {ROW: pa.array(rows)}
        for name, values in cols.items():
            values = np.asarray(values)
            out[name] = pa.array(values.tolist() if values.dtype == object else values)
        return pa.table(out)
