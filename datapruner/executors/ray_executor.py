"""Run score steps on Ray Data.

The driver fits each step (global state such as k-means centroids, proxies, quantiles) and puts
it in Ray's object store once (`ray.put`); the ingest pass's per-row arrays (ids, validity, class
indices) go there once per input. What a step's batches are made of depends on what it reads:

- A step that reads the rows themselves (`needs` has "text", "lm" or "prompt_response") gets the
  input as Ray Data's own readers give it (`read_parquet`, `read_json`, `read_csv`,
  `from_huggingface`), file by file, each row tagged with its global row index by zipping the
  file with an index range cut into blocks for every worker.
- A step that reads only the embeddings and its fitted state (prototypicality, density,
  SemDeDup) gets row-index ranges (`ray.data.range`): the input is not read again, the workers
  read their rows of the on-disk embedding cache. Its batches carry ids, validity, labels and
  embeddings, with empty texts and a record batch without columns.

`map_batches` runs model-backed steps (`needs` has "lm") in an actor pool, one model per actor
loaded once; every other step runs as Ray tasks, which reuse Ray's worker processes and keep the
fitted step deserialised per process. Batches are Arrow tables end to end (`batch_format="pyarrow"`),
and the checks against the ingest pass (ids, text present where valid) are Arrow kernels. The
driver collects the score columns by row index.

`write_pruned` writes `pruned/` with `Dataset.write_parquet` (see its docstring for the file
names); `scores.parquet` is written by the pipeline's streaming writer, as on the local engine, at
the same time (`writes_off_driver`).
A multi-node cluster needs the cache (`DATAPRUNER_CACHE`), the input and the output folder on
shared storage.

Parquet input is read with Ray's V1 Parquet datasource (`DataContext.use_datasource_v2` off for
that call): Ray 2.60's V2 reader lists files in a task that starts a pool of 32 footer-reading
actors (`RAY_DATA_PARQUET_FOOTER_NUM_ACTORS`), a new process each, on every read; on a 2-CPU
cluster that cost about 15 s per read of a one-file input, more than reading 1M rows.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datapruner.curation.dataset import Batch, ColumnMap, DatasetView
from datapruner.errors import ConfigError, InputDataError, require_extra
from datapruner.curation.outputs import PRUNED_DIR, pruned_schema
from datapruner.io.readers import detect_format, expand_paths
from datapruner.io.writers import arrow_column
from datapruner.validation import check_positive_int

if TYPE_CHECKING:
    from datapruner.curation.embedding_cache import EmbeddingFile

log = logging.getLogger(__name__)

ROW = "__dp_row"
READS_ROWS = frozenset({"text", "lm", "prompt_response"})
"""Step needs for which the executor reads the input rows (else it hands out row-index ranges)."""
BLOCKS_PER_WORKER = 4


@dataclass(frozen=True)
class RowArrays:
    """The ingest pass's per-row arrays a worker needs, shared through the object store."""

    ids: pa.Array
    valid: np.ndarray
    labels: np.ndarray | None


class RayExecutor:
    """Ray Data executor: the driver fits, Ray tasks (or an actor pool, for model-backed steps) score.

    Parameters (the config's ``ray:`` section)
    ------------------------------------------
    address : str, optional
        An existing cluster (``"auto"``, ``"host:6379"`` or ``"ray://host:10001"``); default:
        start a local one.
    num_cpus : int, optional
        Size of the local cluster (default: every CPU).
    concurrency : int, optional
        Tasks or actors running at once per step (default: the cluster's CPUs / `threads_per_worker`).
    threads_per_worker : int, default 1
        Torch threads in each task or actor.
    """

    name = "ray"
    writes_off_driver = True  # the workers write pruned/ while the driver writes scores.parquet

    def __init__(self, *, address: str | None = None, num_cpus: int | None = None, concurrency: int | None = None,
                 threads_per_worker: int = 1):
        if address is not None and not isinstance(address, str):
            raise ConfigError("ray.address", address, "a Ray cluster address such as 'ray://host:10001' (or unset)")
        self.address = address
        self.num_cpus = None if num_cpus is None else check_positive_int("ray.num_cpus", num_cpus)
        self.concurrency = None if concurrency is None else check_positive_int("ray.concurrency", concurrency)
        self.threads_per_worker = check_positive_int("ray.threads_per_worker", threads_per_worker)
        self._row_arrays: dict[str, Any] = {}  # input fingerprint -> object reference of its RowArrays

    def _init(self):
        ray = require_extra("ray", "ray")
        # No usage telemetry from a job of ours unless the environment asks for it; this also keeps
        # Ray Data's metrics-polling thread out of the driver.
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
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
        ctx.execution_options.preserve_order = True  # blocks in read order: row numbers are counted along them, written files named by it
        return ray

    def start(self):
        """Connect (or start the local cluster) and have one worker per CPU import what the tasks run.

        Ray starts a job's worker processes bare; the first read and the first scoring task would
        otherwise wait for each worker to import pyarrow, Ray Data's readers and this library (about
        two seconds on a 2-core machine). The warm-up tasks do it while the driver runs the ingest pass.
        """
        ray = self._init()
        warm = ray.remote(num_cpus=1)(import_task_modules)
        for _ in range(max(1, int(ray.cluster_resources().get("CPU", 1)))):
            warm.remote()  # not waited for: a task runs whether or not its result is kept

    def map_batches(self, step, view: DatasetView):
        """Score every row on Ray Data; yield (rows, columns) parts (see `Executor`)."""
        ray = self._init()
        info = view.info
        cpus = float(ray.cluster_resources().get("CPU", 1))
        workers = self.concurrency or max(1, int(cpus) // self.threads_per_worker)
        reads_rows = bool(step.needs & READS_ROWS)
        blocks = max(1, min(workers * BLOCKS_PER_WORKER, math.ceil(info.n_rows / view.dataset.batch_size)))
        ds = self._read(ray, view, blocks) if reads_rows else ray.data.range(info.n_rows, override_num_blocks=blocks).rename_columns({"id": ROW})
        rows_per_call = view.dataset.batch_size
        if step.bucket_rows:  # a wider window for steps that sort by length, still spread over every worker
            rows_per_call = max(rows_per_call, min(step.bucket_rows, math.ceil(info.n_rows / workers)))
        if info.input_fingerprint not in self._row_arrays:
            self._row_arrays[info.input_fingerprint] = ray.put(RowArrays(ids=info.ids, valid=info.valid, labels=info.labels))
        scorer = {
            "shared": [ray.put(step), self._row_arrays[info.input_fingerprint]],  # in a list: workers get references, not copies
            "columns": view.dataset.columns,
            "schema": info.schema,
            "embedding_file": view.embedding_file() if step.needs_embeddings else None,
            "threads": self.threads_per_worker,
            "reads_rows": reads_rows,
        }
        if "lm" in step.needs:
            # One model per actor. Each actor claims its share of the cluster's CPUs, so Ray places
            # the actors by resources (one per node on one-CPU nodes); `_read` has finished Ray
            # Data's own tasks (reading, numbering rows) first, which the actors would starve.
            out = ds.map_batches(StepActor, fn_constructor_kwargs=scorer, batch_size=rows_per_call, batch_format="pyarrow",
                                 compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=min(float(self.threads_per_worker), cpus / workers))
        else:
            out = ds.map_batches(score_task, fn_kwargs=scorer, batch_size=rows_per_call, batch_format="pyarrow",
                                 compute=ray.data.TaskPoolStrategy(size=workers), num_cpus=self.threads_per_worker, zero_copy_batch=True)
        for table in out.iter_batches(batch_format="pyarrow", batch_size=None):
            rows = table.column(ROW).to_numpy()
            yield rows, {name: _to_numpy(table.column(name)) for name in table.column_names if name != ROW}

    def write_pruned(self, folder: Path, view: DatasetView, keep: np.ndarray, *, scores: dict[str, np.ndarray] | None,
                     shard_rows: int) -> int:
        """Write the kept rows as `folder/pruned/part-NNNNN-0.parquet` with Ray Data's writer.

        The workers read the input with Ray's readers (as for scoring), keep the rows whose `keep`
        is true (`keep` and `scores` reach them by object reference), append the `scores` columns
        when given and write one file per read slice of at most `shard_rows` input rows, named by
        the write task's index (Ray appends ``-0``, the file's number within its task), so the files
        sorted by name hold the kept rows in input order (a slice with no kept row writes no file:
        the numbers may have gaps). Returns the rows written.
        """
        ray = self._init()
        schema = pruned_schema(view.info.schema, view.info.ids, scores)
        ds = self._read(ray, view, max(1, math.ceil(view.n_rows / shard_rows)))
        state = [ray.put(np.asarray(keep, dtype=bool)), ray.put(dict(scores or {}))]
        kept = ds.map_batches(kept_rows, fn_kwargs={"shared": state, "schema": schema}, batch_size=None, batch_format="pyarrow")
        directory = Path(folder) / PRUNED_DIR
        if directory.exists():
            raise FileExistsError(f"{directory} exists; pruned/ is written once into a fresh staging folder")
        from ray.data import SaveMode  # overwrite: the mode that allows names without Ray's write id (the folder is new)

        kept.write_parquet(str(directory), filename_provider=NumberedParts(), compression="zstd", mode=SaveMode.OVERWRITE)
        directory.mkdir(exist_ok=True)  # Ray writes no folder when no row is kept
        return int(np.count_nonzero(keep))

    def _read(self, ray, view: DatasetView, blocks: int):
        """The input as a Ray Dataset with a ROW column (global row index), read by Ray Data.

        Ray's readers do not keep the order of several files, so each file is read on its own; the
        read is materialised in the object store (it is read once per step), and, walking its
        blocks in order, a small task per slice adds the slice's global row numbers (zero-copy
        from the object store; the slices spread the rows over the workers).
        """
        dataset = view.dataset
        fmt = dataset.format if dataset.format != "auto" else detect_format(dataset.path)
        if fmt == "hf_disk":
            from datasets import load_from_disk

            files = [ray.data.from_huggingface(load_from_disk(dataset.path))]
        else:
            paths = expand_paths(dataset.path)
            files = [self._read_file(ray, fmt, str(path), dataset.columns, max(1, blocks // len(paths))) for path in paths]
        target = max(1, math.ceil(view.n_rows / blocks))
        tag = ray.remote(with_row_numbers)  # one CPU, Ray's default: reads given num_cpus=0 ran about 4x slower on a 2-core machine
        tagged, offset = [], 0
        for ds in files:
            for bundle in ds.materialize().iter_internal_ref_bundles():
                for block, meta in zip(bundle.block_refs, bundle.metadata):
                    for lo, hi in _cuts(0, meta.num_rows, math.ceil(meta.num_rows / target)):
                        tagged.append(tag.remote(block, offset + lo, lo, hi))
                    offset += meta.num_rows
        if offset != view.n_rows:
            raise InputDataError(f"the input changed while the run was going: {offset} rows now, {view.n_rows} at ingest")
        ray.wait(tagged, num_returns=len(tagged), fetch_local=False)  # done before a step's actors claim the CPUs
        return ray.data.from_arrow_refs(tagged)

    @staticmethod
    def _read_file(ray, fmt: str, path: str, columns: ColumnMap, blocks: int):
        """One input file as a Ray Dataset of about `blocks` blocks (Ray's reader for its format)."""
        if fmt == "parquet":
            context = ray.data.DataContext.get_current()
            v2, context.use_datasource_v2 = context.use_datasource_v2, False  # see the module docstring
            try:
                return ray.data.read_parquet(path, file_extensions=None, override_num_blocks=blocks)
            finally:
                context.use_datasource_v2 = v2
        if fmt == "jsonl":
            return ray.data.read_json(path, lines=True, file_extensions=None, override_num_blocks=blocks)
        import pyarrow.csv as pacsv

        strings = {c: pa.string() for role, c in columns.used().items() if role in ("text", "prompt", "response", "id")}
        return ray.data.read_csv(
            path, file_extensions=None, override_num_blocks=blocks,
            parse_options=pacsv.ParseOptions(delimiter="\t" if fmt == "tsv" else ",", newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(column_types=strings),
        )


def import_task_modules() -> None:
    """Ray task body of `RayExecutor.start`: import the modules the read and scoring tasks use."""
    import importlib

    for name in ("pyarrow.dataset", "pyarrow.parquet", "ray.data"):  # Ray Data's Parquet reader and its operators
        importlib.import_module(name)


def with_row_numbers(block, first_row: int, lo: int, hi: int) -> pa.Table:
    """Rows [lo, hi) of a read block (Arrow, or pandas from Ray's JSON reader) as an Arrow table with
    the ROW column (global row numbers from `first_row`)."""
    from ray.data.block import BlockAccessor

    part = BlockAccessor.for_block(block).to_arrow().slice(lo, hi - lo)
    return part.append_column(ROW, pa.array(np.arange(first_row, first_row + len(part), dtype=np.int64)))


def kept_rows(table: pa.Table, *, shared: list, schema: pa.Schema) -> pa.Table:
    """Ray task body of `RayExecutor.write_pruned`: the rows of `table` whose keep is true, in the
    output schema (input columns, then the score columns when asked)."""
    import ray

    keep, scores = ray.get(shared)
    rows = table.column(ROW).to_numpy()
    chosen = rows[keep[rows]]
    out = table.filter(pa.array(keep[rows])).drop_columns([ROW])
    for name in sorted(scores):
        out = out.append_column(name, arrow_column(scores[name][chosen]))
    return out.select(schema.names).cast(schema)


class NumberedParts:
    """Ray `FilenameProvider`: ``part-<task index, 5 digits>`` (Ray writes ``part-NNNNN-0.parquet``)."""

    def get_filename_for_task(self, write_uuid: str, task_index: int) -> str:
        """``part-NNNNN.parquet``, to which Ray adds the file's number in the task (``-0``)."""
        return f"part-{task_index:05d}.parquet"


def _cuts(lo: int, hi: int, parts: int) -> list[tuple[int, int]]:
    """[lo, hi) cut into at most `parts` non-empty consecutive ranges."""
    edges = np.unique(np.linspace(lo, hi, max(1, min(parts, hi - lo)) + 1).astype(np.int64))
    return list(zip(edges[:-1].tolist(), edges[1:].tolist())) or [(lo, hi)]


def _to_numpy(col: pa.ChunkedArray) -> np.ndarray:
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type) or col.null_count:
        return np.array(col.to_pylist(), dtype=object)
    return col.to_numpy()


def _strings(table: pa.Table, name: str) -> pa.Array:
    return table.column(name).cast(pa.string()).combine_chunks()


class StepActor:
    """Scores Ray batches with one fitted step; an actor of the pool (model-backed steps) or, cached
    per worker process, the body of `score_task`.

    Takes the fitted step and the ingest arrays from the object store once, then turns each Ray
    batch back into `Batch`es and scores them.

    Parameters
    ----------
    shared : [step reference, `RowArrays` reference]
    columns : the input's column mapping. schema : the input schema the steps expect.
    embedding_file : the embedding-cache entry to open (steps that need embeddings), else None.
    threads : torch threads in this process.
    reads_rows : whether batches hold the input rows (else only the ROW column).
    """

    def __init__(self, shared: list, columns: ColumnMap, schema: pa.Schema, embedding_file: "EmbeddingFile | None", threads: int,
                 reads_rows: bool = True):
        import sys

        import ray

        os.environ["OMP_NUM_THREADS"] = str(threads)  # for a torch imported later by the step
        self.step, self.rows = ray.get(shared)
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(threads)
        self.columns = columns
        self.schema = schema
        self.reads_rows = reads_rows
        self.embeddings = embedding_file.open() if embedding_file is not None else None

    def __call__(self, table: pa.Table) -> pa.Table:
        """Score a Ray batch. Steps index their fitted state by `Batch.start`, so a batch is split
        into runs of consecutive rows first (Ray may join blocks that are not adjacent)."""
        rows = table.column(ROW).to_numpy()
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        bounds = [0, *breaks.tolist(), len(rows)]
        parts = [self._score_run(table.slice(lo, hi - lo)) for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo]
        return pa.concat_tables(parts) if parts else pa.table({ROW: pa.array([], pa.int64())})

    def _texts(self, table: pa.Table) -> tuple[pa.Array, pa.Array | None, pa.Array | None]:
        """(texts, prompts, responses) as the local reader maps them (``ColumnMap`` roles); nulls kept."""
        cols = self.columns
        if cols.prompt and cols.response:
            prompts, responses = _strings(table, cols.prompt), _strings(table, cols.response)
            if cols.text and cols.text in table.column_names:
                texts = _strings(table, cols.text)
            else:
                texts = pc.binary_join_element_wise(prompts, responses, "\n")  # null when either is null
            return texts, prompts, responses
        return _strings(table, cols.text), None, None

    def _score_run(self, table: pa.Table) -> pa.Table:
        rows = table.column(ROW).to_numpy()
        lo, n = int(rows[0]), len(rows)
        ids = self.rows.ids.slice(lo, n)
        valid = self.rows.valid[lo : lo + n]
        labels = None if self.rows.labels is None else self.rows.labels[lo : lo + n]
        embeddings = None if self.embeddings is None else np.asarray(self.embeddings[lo : lo + n], dtype=np.float32)
        if not self.reads_rows:
            batch = Batch(start=lo, ids=ids.to_pylist(), texts=[""] * n, valid=valid, labels=labels,
                          record_batch=pa.RecordBatch.from_pydict({}), embeddings=embeddings)
            return self._scored(rows, batch)
        if self.columns.id and not ids.equals(_strings(table, self.columns.id)):
            raise RuntimeError(f"Ray Data returned rows {lo}..{lo + n - 1} out of input order (their ids differ from the ingest pass)")
        texts, prompts, responses = self._texts(table)
        if pc.any(pc.and_(pa.array(valid), pc.fill_null(pc.equal(pc.utf8_length(texts), 0), True))).as_py():
            raise RuntimeError(f"Ray Data returned rows {lo}..{lo + n - 1} out of input order (a valid row has no text)")
        raw = table.select([name for name in self.schema.names if name in table.column_names]).combine_chunks()
        try:
            raw = raw.cast(self.schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):
            pass  # a reader inferred another type for an extra column; steps see what Ray read
        batch = Batch(
            start=lo,
            ids=ids.to_pylist(),
            texts=pc.fill_null(texts, "").to_pylist(),
            valid=valid,
            labels=labels,
            record_batch=raw.to_batches()[0] if raw.num_rows else pa.RecordBatch.from_pylist([], schema=raw.schema),
            prompts=None if prompts is None else pc.fill_null(prompts, "").to_pylist(),
            responses=None if responses is None else pc.fill_null(responses, "").to_pylist(),
            embeddings=embeddings,
        )
        return self._scored(rows, batch)

    def _scored(self, rows: np.ndarray, batch: Batch) -> pa.Table:
        out = {ROW: pa.array(rows)}
        for name, values in self.step.score_batch(batch).items():
            values = np.asarray(values)
            out[name] = pa.array(values.tolist() if values.dtype == object else values)
        return pa.table(out)


_SCORERS: dict[str, StepActor] = {}
"""The `StepActor` of the step a worker process scored last, by the step's object id (tasks reuse it)."""


def score_task(table: pa.Table, *, shared: list, **kwargs) -> pa.Table:
    """Ray task body for steps without a model: the fitted step is taken from the object store once
    per worker process (not once per batch), then `StepActor` scores the batch."""
    key = shared[0].hex()
    if key not in _SCORERS:
        _SCORERS.clear()  # one step at a time: drop the previous step's state
        _SCORERS[key] = StepActor(shared, **kwargs)
    return _SCORERS[key](table)
