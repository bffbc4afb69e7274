"""Run score steps on Ray Data.

The driver fits each step (global state such as k-means centroids, proxies, quantiles) and puts
it in Ray's object store once (`ray.put`); the input is read by Ray Data's own readers
(`read_parquet`, `read_json`, `read_csv`, `from_huggingface`) file by file, each row tagged with
its global row index by zipping the file with an index range; `map_batches` streams the rows
through an actor pool (a callable class, `ActorPoolStrategy(size=concurrency)`), each actor taking the fitted step
from the object store and loading its models once; the driver collects the score columns by row
index. The ingest pass's per-row arrays (ids, validity, class indices) also travel by object
reference. Embeddings are read by the workers from the on-disk cache, so a multi-node cluster needs
the cache (`DATAPRUNER_CACHE`), the input and the output folder on shared storage.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from datapruner.curation.dataset import Batch, ColumnMap, DatasetView
from datapruner.errors import ConfigError, InputDataError, require_extra
from datapruner.io.readers import detect_format, expand_paths
from datapruner.validation import check_positive_int

if TYPE_CHECKING:
    from datapruner.curation.embedding_cache import EmbeddingFile

log = logging.getLogger(__name__)

ROW = "__dp_row"


@dataclass(frozen=True)
class RowArrays:
    """The ingest pass's per-row arrays a worker needs, shared through the object store."""

    ids: pa.Array
    valid: np.ndarray
    labels: np.ndarray | None


class RayExecutor:
    """Ray Data executor: the driver fits, an actor pool scores rows that Ray Data reads.

    Parameters (the config's ``ray:`` section)
    ------------------------------------------
    address : str, optional
        An existing cluster (``"auto"``, ``"host:6379"`` or ``"ray://host:10001"``); default:
        start a local one.
    num_cpus : int, optional
        Size of the local cluster (default: every CPU).
    concurrency : int, optional
        Actors per step (default: the cluster's CPUs / `threads_per_worker`), spread over the nodes.
    threads_per_worker : int, default 1
        Torch threads in each actor.
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
        self._rows_per_file: dict[str, list[tuple[str, int]]] = {}

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
        ctx.execution_options.preserve_order = True  # rows are zipped with their index range in order
        return ray

    def map_batches(self, step, view: DatasetView):
        """Read the input with Ray Data, score it in an actor pool, yield (rows, columns) parts (see `Executor`)."""
        ray = self._init()
        info = view.info
        ds = self._read(ray, view)
        # The pool's size is `concurrency`; the actors claim no logical CPU, because Ray Data's own
        # small tasks (file listing, zipping rows with their index) each need a whole CPU on some
        # node, and on one-CPU nodes an actor holding part of it would starve them forever.
        # SPREAD puts the actors on different nodes.
        cpus = float(ray.cluster_resources().get("CPU", 1))
        workers = self.concurrency or max(1, int(cpus) // self.threads_per_worker)
        rows_per_call = view.dataset.batch_size
        if step.bucket_rows:  # a wider window for steps that sort by length, still spread over every actor
            rows_per_call = max(rows_per_call, min(step.bucket_rows, math.ceil(info.n_rows / workers)))
        shared = [ray.put(step), ray.put(RowArrays(ids=info.ids, valid=info.valid, labels=info.labels))]
        out = ds.map_batches(
            StepActor,
            fn_constructor_kwargs={
                "shared": shared,  # inside a list, so Ray hands the actor the references, not copies
                "columns": view.dataset.columns,
                "schema": info.schema,
                "embedding_file": view.embedding_file() if step.needs_embeddings else None,
                "threads": self.threads_per_worker,
            },
            batch_size=rows_per_call,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=0,
            scheduling_strategy="SPREAD",
        )
        for table in out.iter_batches(batch_format="pyarrow", batch_size=None):
            rows = table.column(ROW).to_numpy()
            yield rows, {name: _to_numpy(table.column(name)) for name in table.column_names if name != ROW}

    def _read(self, ray, view: DatasetView):
        """The input as a Ray Dataset with a ROW column (global row index), read by Ray Data.

        Ray's readers do not keep the order of several files, so each file is read on its own and
        zipped with its index range (rows inside one file keep their order), then the files are
        unioned.
        """
        dataset = view.dataset
        fmt = dataset.format if dataset.format != "auto" else detect_format(dataset.path)
        if fmt == "hf_disk":
            from datasets import load_from_disk

            parts = [(ray.data.from_huggingface(load_from_disk(dataset.path)), view.n_rows)]
        else:
            parts = [(self._read_file(ray, fmt, path, dataset.columns), n) for path, n in self._file_rows(view, fmt)]
        total = sum(n for _, n in parts)
        if total != view.n_rows:
            raise InputDataError(f"the input changed while the run was going: {total} rows now, {view.n_rows} at ingest")
        datasets, offset = [], 0
        for ds, n in parts:
            index = ray.data.from_arrow(pa.table({ROW: np.arange(offset, offset + n, dtype=np.int64)}))
            datasets.append(ds.zip(index))
            offset += n
        return datasets[0] if len(datasets) == 1 else datasets[0].union(*datasets[1:])

    @staticmethod
    def _read_file(ray, fmt: str, path: str, columns: ColumnMap):
        if fmt == "parquet":
            return ray.data.read_parquet(path, num_cpus=0, file_extensions=None)
        if fmt == "jsonl":
            return ray.data.read_json(path, lines=True, num_cpus=0, file_extensions=None)
        import pyarrow.csv as pacsv

        strings = {c: pa.string() for role, c in columns.used().items() if role in ("text", "prompt", "response", "id")}
        return ray.data.read_csv(
            path, num_cpus=0, file_extensions=None,
            parse_options=pacsv.ParseOptions(delimiter="\t" if fmt == "tsv" else ",", newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(column_types=strings),
        )

    def _file_rows(self, view: DatasetView, fmt: str) -> list[tuple[str, int]]:
        """(file, rows) of every input file in ingest order (Parquet: from the footer; else one counting pass)."""
        key = view.info.input_fingerprint
        if key not in self._rows_per_file:
            files = [str(p) for p in expand_paths(view.dataset.path)]
            if fmt == "parquet":
                import pyarrow.parquet as pq

                counts = [(f, pq.ParquetFile(f).metadata.num_rows) for f in files]
            else:
                seen: dict[str, int] = {}
                for sb in view.dataset.source_batches():
                    seen[sb.source] = seen.get(sb.source, 0) + sb.batch.num_rows
                counts = list(seen.items())
            self._rows_per_file[key] = counts
        return self._rows_per_file[key]


def _to_numpy(col: pa.ChunkedArray) -> np.ndarray:
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type) or col.null_count:
        return np.array(col.to_pylist(), dtype=object)
    return col.to_numpy()


def _strings(table: pa.Table, name: str) -> list[str | None]:
    return table.column(name).cast(pa.string()).to_pylist()


class StepActor:
    """One Ray actor of the pool: takes the fitted step from the object store once, then turns each
    Ray batch of input rows back into `Batch`es and scores them.

    Parameters
    ----------
    shared : [step reference, `RowArrays` reference]
    columns : the input's column mapping. schema : the input schema the steps expect.
    embedding_file : the embedding-cache entry to open (steps that need embeddings), else None.
    threads : torch threads in this actor.
    """

    def __init__(self, shared: list, columns: ColumnMap, schema: pa.Schema, embedding_file: "EmbeddingFile | None", threads: int):
        import sys

        import ray

        os.environ["OMP_NUM_THREADS"] = str(threads)  # for a torch imported later by the step
        self.step, self.rows = ray.get(shared)
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(threads)
        self.columns = columns
        self.schema = schema
        self.embeddings = embedding_file.open() if embedding_file is not None else None

    def __call__(self, table: pa.Table) -> pa.Table:
        """Score a Ray batch. Steps index their fitted state by `Batch.start`, so a batch is split
        into runs of consecutive rows first (Ray may join blocks that are not adjacent)."""
        rows = table.column(ROW).to_numpy()
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        bounds = [0, *breaks.tolist(), len(rows)]
        parts = [self._score_run(table.slice(lo, hi - lo)) for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo]
        return pa.concat_tables(parts) if parts else pa.table({ROW: pa.array([], pa.int64())})

    def _texts(self, table: pa.Table):
        """(texts, prompts, responses) as the local reader maps them (``ColumnMap`` roles)."""
        cols = self.columns
        if cols.prompt and cols.response:
            prompts, responses = _strings(table, cols.prompt), _strings(table, cols.response)
            if cols.text and cols.text in table.column_names:
                texts = _strings(table, cols.text)
            else:
                texts = [None if p is None or r is None else f"{p}\n{r}" for p, r in zip(prompts, responses)]
            return texts, [p or "" for p in prompts], [r or "" for r in responses]
        return _strings(table, cols.text), None, None

    def _score_run(self, table: pa.Table) -> pa.Table:
        rows = table.column(ROW).to_numpy()
        lo, n = int(rows[0]), len(rows)
        ids = self.rows.ids.slice(lo, n)
        if self.columns.id and not ids.equals(table.column(self.columns.id).cast(pa.string()).combine_chunks()):
            raise RuntimeError(f"Ray Data returned rows {lo}..{lo + n - 1} out of input order (their ids differ from the ingest pass)")
        texts, prompts, responses = self._texts(table)
        valid = self.rows.valid[lo : lo + n]
        if any(v and not t for v, t in zip(valid, texts)):
            raise RuntimeError(f"Ray Data returned rows {lo}..{lo + n - 1} out of input order (a valid row has no text)")
        raw = table.select([name for name in self.schema.names if name in table.column_names]).combine_chunks()
        try:
            raw = raw.cast(self.schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):
            pass  # a reader inferred another type for an extra column; steps see what Ray read
        batch = Batch(
            start=lo,
            ids=ids.to_pylist(),
            texts=[t or "" for t in texts],
            valid=valid,
            labels=None if self.rows.labels is None else self.rows.labels[lo : lo + n],
            record_batch=raw.to_batches()[0] if raw.num_rows else pa.RecordBatch.from_pylist([], schema=raw.schema),
            prompts=prompts,
            responses=responses,
            embeddings=None if self.embeddings is None else np.asarray(self.embeddings[lo : lo + n], dtype=np.float32),
        )
        out = {ROW: pa.array(rows)}
        for name, values in self.step.score_batch(batch).items():
            values = np.asarray(values)
            out[name] = pa.array(values.tolist() if values.dtype == object else values)
        return pa.table(out)

