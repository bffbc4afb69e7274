"""Batch compression over Parquet: rows of ``query`` + a list of passages in, compressed rows out.

    datapruner compress-batch --input rows.parquet --out out/ --method mig --rate 0.25
    datapruner compress-batch --config configs/rag-compress.yaml

    >>> run_compress_batch({"compress": {"method": "mig", "rate": 0.25},
    ...                     "batch": {"input": "rows.parquet", "out": "out/"}})

The job is configured like a curation run: a :class:`~datapruner.config.CompressConfig` (or its
mapping, or a YAML file; see :func:`datapruner.config.load_compress_config`) whose ``compress``
section builds one :class:`~datapruner.pipelines.compress.Compressor` and gives the budget, whose
``batch`` section says what to read and write, and whose ``models.threads`` sets the threads.

The input is read in streaming *shards* of ``batch.rows_per_shard`` rows (``pyarrow`` record
batches), so memory does not grow with the number of rows. Inside a shard, pairs are compressed
``batch.batch_pairs`` at a time with :meth:`Compressor.compress_batch` (one batched model call per
group). Each shard is written atomically to ``out/shards/part-NNNNN.parquet`` and then gets a
completion marker ``out/markers/part-NNNNN.done`` (JSON stats); ``out/shards`` alone is then a
Parquet dataset (``pyarrow.parquet.read_table(out / "shards")``). A rerun skips shards that have a
marker, so a killed job resumes where it stopped. ``out/job.json`` records the input, the shard
size, the columns, the compressor (:meth:`Compressor.describe`, threads aside) and the budget; a
rerun with different ones into the same folder fails instead of mixing outputs (set
``batch.overwrite`` / ``--overwrite`` to start again). ``out/manifest.json`` is written at the end
with the job record, the threads in force and the totals.

Output columns: every input column (unless ``batch.keep_input_columns`` is false), then
``compressed`` (string), ``kept_spans`` (list of struct passage/start/end/score),
``passage_scores`` (list of float), ``tokens_before``, ``tokens_after``, ``budget`` (int, null in
threshold mode) and ``ratio`` (tokens_before / tokens_after; null when nothing is kept).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from datapruner.config import CompressConfig, as_compress_config
from datapruner.errors import ConfigError, InputDataError
from datapruner.paths import atomic_path
from datapruner.progress import progress_bar

log = logging.getLogger(__name__)


@dataclass
class BatchJobResult:
    """Totals of a batch job run.

    Attributes
    ----------
    out_dir : the output folder.
    n_rows, n_shards : rows and shards of the input.
    shards_skipped : shards already done by an earlier run (resumed).
    tokens_before, tokens_after : summed over every row.
    seconds : wall time of this run.
    """

    out_dir: Path
    n_rows: int
    n_shards: int
    shards_skipped: int
    tokens_before: int
    tokens_after: int
    seconds: float

    @property
    def manifest_path(self) -> Path:
        """``out_dir / "manifest.json"``."""
        return self.out_dir / "manifest.json"


def _output_schema(input_schema, keep_input_columns: bool):
    import pyarrow as pa

    span = pa.struct([("passage", pa.int32()), ("start", pa.int64()), ("end", pa.int64()), ("score", pa.float64())])
    fields = list(input_schema) if keep_input_columns else []
    names = {f.name for f in fields}
    new = [
        pa.field("compressed", pa.string()),
        pa.field("kept_spans", pa.list_(span)),
        pa.field("passage_scores", pa.list_(pa.float64())),
        pa.field("tokens_before", pa.int64()),
        pa.field("tokens_after", pa.int64()),
        pa.field("budget", pa.int64()),
        pa.field("ratio", pa.float64()),
    ]
    clash = [f.name for f in new if f.name in names]
    if clash:
        raise InputDataError(f"input already has column(s) {clash}; rename them or set keep_input_columns=False")
    return pa.schema(fields + new)


def _job_record(input_path: Path, batch, compressor_description: dict, budget: dict) -> dict:
    stat = input_path.stat()
    return {
        "input": str(input_path.resolve()),
        "input_bytes": stat.st_size,
        "input_mtime_ns": stat.st_mtime_ns,
        "rows_per_shard": batch.rows_per_shard,
        "query_column": batch.query_column,
        "passages_column": batch.passages_column,
        "keep_input_columns": batch.keep_input_columns,
        "compressor": compressor_description,
        "budget": budget,
    }


def run_compress_batch(config: CompressConfig | Mapping[str, Any] | str | Path) -> BatchJobResult:
    """Compress every row of a Parquet file; resumable (see the module docstring).

    Parameters
    ----------
    config : a :class:`~datapruner.config.CompressConfig`, its mapping (relative paths resolve
        against the working directory) or a YAML file. Uses ``compress`` (method, params,
        options, budget), ``batch`` (``input``, ``out``, columns, ``rows_per_shard``,
        ``batch_pairs``, ``keep_input_columns``, ``overwrite``) and ``models.threads``.

    Returns
    -------
    BatchJobResult

    Raises
    ------
    ConfigError : a bad config value, no ``batch.input`` / ``batch.out``, or an output folder
        that holds a different job (without ``batch.overwrite``).
    InputDataError : the input is not a readable Parquet file, lacks a column, or has a bad row.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from datapruner.pipelines.compress import Compressor

    cfg = as_compress_config(config)
    batch = cfg.batch
    for key in ("input", "out"):
        if not getattr(batch, key):
            raise ConfigError(f"batch.{key}", None, f"a path (--{key} PATH, or batch.{key} in the config)")
    compressor = Compressor(**cfg.compressor_options())  # validates before touching the output
    budget = cfg.budget()
    compressor.budget_mode(**budget)  # a threshold with a budget, or for a budget-only method, fails here
    description = compressor.describe()
    input_path, out_dir = Path(batch.input), Path(batch.out)
    if not input_path.is_file():
        raise InputDataError(f"input {str(input_path)!r} is not a file; pass a Parquet file with --input")
    try:
        pfile = pq.ParquetFile(input_path)
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise InputDataError(f"cannot read {str(input_path)!r} as Parquet: {exc}") from None
    schema = pfile.schema_arrow
    for col in (batch.query_column, batch.passages_column):
        if col not in schema.names:
            raise InputDataError(f"input has no column {col!r} (columns: {schema.names}); set query_column/passages_column")
    out_schema = _output_schema(schema, batch.keep_input_columns)
    threads = description.pop("threads", cfg.models.threads)  # threads do not change the output
    record = _job_record(input_path, batch, description, budget)
    job_file = out_dir / "job.json"
    if batch.overwrite and out_dir.exists():
        shutil.rmtree(out_dir)
    if job_file.exists():
        previous = json.loads(job_file.read_text())
        if previous != record:
            raise ConfigError("batch.out", str(out_dir), "a new folder (it holds a job with a different input or "
                              "options), or batch.overwrite: true / --overwrite")
    else:
        out_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(job_file) as tmp:
            tmp.write_text(json.dumps(record, indent=2, sort_keys=True))
    shards_dir = out_dir / "shards"
    shards_dir.mkdir(exist_ok=True)
    markers_dir = out_dir / "markers"
    markers_dir.mkdir(exist_ok=True)

    start = time.time()
    n_rows = n_shards = skipped = before = after = 0
    total = pfile.metadata.num_rows
    with progress_bar("compress", total=total) as bar:
        for shard, rb in enumerate(pfile.iter_batches(batch_size=batch.rows_per_shard)):
            n_shards += 1
            n_rows += rb.num_rows
            part = shards_dir / f"part-{shard:05d}.parquet"
            done = markers_dir / f"part-{shard:05d}.done"
            if done.exists() and part.exists():
                stats = json.loads(done.read_text())
                before += stats["tokens_before"]
                after += stats["tokens_after"]
                skipped += 1
                bar.advance(rb.num_rows)
                continue
            queries = rb.column(batch.query_column).to_pylist()
            passages = rb.column(batch.passages_column).to_pylist()
            rows = []
            for lo in range(0, len(queries), batch.batch_pairs):
                pairs = list(zip(queries[lo : lo + batch.batch_pairs], passages[lo : lo + batch.batch_pairs]))
                try:
                    results = compressor.compress_batch(pairs, **budget)
                except InputDataError as exc:
                    raise InputDataError(f"shard {shard} (rows {shard * batch.rows_per_shard + lo}..): {exc}") from None
                rows.extend(results)
                bar.advance(len(pairs))
            columns = {name: rb.column(name) for name in schema.names} if batch.keep_input_columns else {}
            columns.update({
                "compressed": [r.text for r in rows],
                "kept_spans": [[{"passage": u.passage, "start": u.start, "end": u.end, "score": u.score} for u in r.units] for r in rows],
                "passage_scores": [r.passage_scores for r in rows],
                "tokens_before": [r.tokens_before for r in rows],
                "tokens_after": [r.tokens_after for r in rows],
                "budget": [r.budget for r in rows],
                "ratio": [None if r.tokens_after == 0 else r.ratio for r in rows],
            })
            table = pa.Table.from_pydict(columns, schema=out_schema)
            with atomic_path(part) as tmp:
                pq.write_table(table, tmp)
            stats = {"rows": len(rows), "tokens_before": sum(r.tokens_before for r in rows),
                     "tokens_after": sum(r.tokens_after for r in rows)}
            with atomic_path(done) as tmp:
                tmp.write_text(json.dumps(stats))
            before += stats["tokens_before"]
            after += stats["tokens_after"]
    result = BatchJobResult(out_dir, n_rows, n_shards, skipped, before, after, time.time() - start)
    manifest = {**record, "threads": threads, "rows": n_rows, "shards": n_shards, "shards_skipped": skipped,
                "tokens_before": before, "tokens_after": after,
                "ratio": (before / after) if after else None, "seconds": round(result.seconds, 3)}
    with atomic_path(result.manifest_path) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    log.info("compressed %d rows (%d shards, %d skipped) into %s", n_rows, n_shards, skipped, out_dir)
    return result
