"""Batch compression over Parquet: rows of ``query`` + a list of passages in, compressed rows out.

    datapruner compress-batch --input rows.parquet --out out/ --method mig --rate 0.25
    datapruner compress-batch --config configs/rag-compress.yaml

The input is read in streaming *shards* of `rows_per_shard` rows (``pyarrow`` record batches), so
memory does not grow with the number of rows. Inside a shard, pairs are compressed `batch_pairs`
at a time with :func:`~datapruner.pipelines.compress.compress_batch` (one batched model call per
group). Each shard is written atomically to ``out/shards/part-NNNNN.parquet`` and then gets a
completion marker ``out/markers/part-NNNNN.done`` (JSON stats); ``out/shards`` alone is then a
Parquet dataset (``pyarrow.parquet.read_table(out / "shards")``). A rerun skips shards that have a marker, so a
killed job resumes where it stopped. ``out/job.json`` records the input, shard size and options; a
rerun with different ones into the same folder fails instead of mixing outputs (pass
``overwrite=True`` to start again). ``out/manifest.json`` is written at the end with totals.

Output columns: every input column (unless ``keep_input_columns=False``), then ``compressed``
(string), ``kept_spans`` (list of struct passage/start/end/score), ``passage_scores`` (list of
float), ``tokens_before``, ``tokens_after``, ``budget`` (int, null in threshold mode) and
``ratio`` (tokens_before / tokens_after; null when nothing is kept).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datapruner.errors import ConfigError, InputDataError
from datapruner.paths import atomic_path
from datapruner.progress import progress_bar

log = logging.getLogger(__name__)

JOB_KEYS = ("input", "out", "query_column", "passages_column", "rows_per_shard", "batch_pairs", "keep_input_columns", "overwrite")


@dataclass
class BatchJobResult:
    """Totals of a batch job run."""

    out_dir: Path
    n_rows: int
    n_shards: int
    shards_skipped: int
    tokens_before: int
    tokens_after: int
    seconds: float

    @property
    def manifest_path(self) -> Path:
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


def _job_record(input_path: Path, rows_per_shard: int, query_column: str, passages_column: str, options: dict) -> dict:
    stat = input_path.stat()
    return {
        "input": str(input_path.resolve()),
        "input_bytes": stat.st_size,
        "input_mtime_ns": stat.st_mtime_ns,
        "rows_per_shard": rows_per_shard,
        "query_column": query_column,
        "passages_column": passages_column,
        "options": options,
    }


def run_compress_batch(
    input: str | Path,
    out: str | Path,
    *,
    query_column: str = "query",
    passages_column: str = "passages",
    rows_per_shard: int = 256,
    batch_pairs: int = 16,
    keep_input_columns: bool = True,
    overwrite: bool = False,
    **options: Any,
) -> BatchJobResult:
    """Compress every row of a Parquet file; resumable (see the module docstring).

    Parameters
    ----------
    input : Parquet file with a string column `query_column` and a list-of-strings column
        `passages_column`.
    out : output folder.
    rows_per_shard : rows per streamed shard (the unit of resumption).
    batch_pairs : (query, passages) pairs per batched model call.
    keep_input_columns : copy the input columns to the output.
    overwrite : delete `out` first instead of resuming.
    **options : options of :func:`datapruner.compress` (method, rate, target_tokens, ...).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from datapruner.pipelines.compress import CompressOptions, compress_batch

    input_path, out_dir = Path(input), Path(out)
    if not input_path.is_file():
        raise InputDataError(f"input {str(input_path)!r} is not a file; pass a Parquet file with --input")
    for key, value, lo in (("rows_per_shard", rows_per_shard, 1), ("batch_pairs", batch_pairs, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise ConfigError(key, value, f"an integer >= {lo}")
    opts = CompressOptions.from_kwargs(**options)  # validate before touching the output
    try:
        pfile = pq.ParquetFile(input_path)
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise InputDataError(f"cannot read {str(input_path)!r} as Parquet: {exc}") from None
    schema = pfile.schema_arrow
    for col in (query_column, passages_column):
        if col not in schema.names:
            raise InputDataError(f"input has no column {col!r} (columns: {schema.names}); set query_column/passages_column")
    out_schema = _output_schema(schema, keep_input_columns)
    record = _job_record(input_path, rows_per_shard, query_column, passages_column, _jsonable(options))
    job_file = out_dir / "job.json"
    if overwrite and out_dir.exists():
        shutil.rmtree(out_dir)
    if job_file.exists():
        previous = json.loads(job_file.read_text())
        if previous != record:
            raise ConfigError("out", str(out_dir), "a new folder (it holds a job with a different input or options), or overwrite=True / --overwrite")
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
        for shard, batch in enumerate(pfile.iter_batches(batch_size=rows_per_shard)):
            n_shards += 1
            n_rows += batch.num_rows
            part = shards_dir / f"part-{shard:05d}.parquet"
            done = markers_dir / f"part-{shard:05d}.done"
            if done.exists() and part.exists():
                stats = json.loads(done.read_text())
                before += stats["tokens_before"]
                after += stats["tokens_after"]
                skipped += 1
                bar.advance(batch.num_rows)
                continue
            queries = batch.column(query_column).to_pylist()
            passages = batch.column(passages_column).to_pylist()
            rows = []
            for lo in range(0, len(queries), batch_pairs):
                pairs = list(zip(queries[lo : lo + batch_pairs], passages[lo : lo + batch_pairs]))
                try:
                    results = compress_batch(pairs, options=opts)
                except InputDataError as exc:
                    raise InputDataError(f"shard {shard} (rows {shard * rows_per_shard + lo}..): {exc}") from None
                rows.extend(results)
                bar.advance(len(pairs))
            columns = {name: batch.column(name) for name in schema.names} if keep_input_columns else {}
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
    manifest = {**record, "rows": n_rows, "shards": n_shards, "shards_skipped": skipped,
                "tokens_before": before, "tokens_after": after,
                "ratio": (before / after) if after else None, "seconds": round(result.seconds, 3)}
    with atomic_path(result.manifest_path) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    log.info("compressed %d rows (%d shards, %d skipped) into %s", n_rows, n_shards, skipped, out_dir)
    return result


def _jsonable(options: dict) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in sorted(options.items())}


# ------------------------------------------------------------------ config files


def load_compress_config(path: str | Path) -> dict[str, Any]:
    """Read a compression YAML config (see ``configs/rag-compress.yaml``).

    Layout::

        compress:            # options of datapruner.compress (method, rate, target_tokens, ...)
          method: mig
          rate: 0.25
        batch:               # the batch job (paths relative to this file's folder)
          input: data/rows.parquet
          out: out/rag-compress
          query_column: query
          passages_column: passages
          rows_per_shard: 256
          batch_pairs: 16
        service:             # datapruner serve
          host: 127.0.0.1
          port: 8000
          timeout_s: 30
          max_request_bytes: 1000000

    Returns
    -------
    dict with keys ``compress``, ``batch``, ``service`` (missing sections are empty dicts);
    relative ``batch.input`` / ``batch.out`` are resolved against the config file's folder.

    Raises
    ------
    ConfigError : unknown section or key, or a compress option that fails validation.
    """
    import yaml

    from datapruner.pipelines.compress import CompressOptions

    path = Path(path)
    if not path.is_file():
        raise ConfigError("config", str(path), "an existing YAML file")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError("config", str(path), f"valid YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise ConfigError("config", type(raw).__name__, "a mapping with sections compress / batch / service")
    unknown = set(raw) - {"compress", "batch", "service"}
    if unknown:
        raise ConfigError(sorted(unknown)[0], raw[sorted(unknown)[0]], "one of the sections compress, batch, service")
    conf = {section: dict(raw.get(section) or {}) for section in ("compress", "batch", "service")}
    CompressOptions.from_kwargs(**conf["compress"])
    bad = set(conf["batch"]) - set(JOB_KEYS)
    if bad:
        key = sorted(bad)[0]
        raise ConfigError(f"batch.{key}", conf["batch"][key], f"one of {', '.join(JOB_KEYS)}")
    bad = set(conf["service"]) - {"host", "port", "timeout_s", "max_request_bytes", "max_passages", "threads"}
    if bad:
        key = sorted(bad)[0]
        raise ConfigError(f"service.{key}", conf["service"][key], "one of host, port, timeout_s, max_request_bytes, max_passages, threads")
    for key in ("input", "out"):
        if key in conf["batch"] and not Path(conf["batch"][key]).expanduser().is_absolute():
            conf["batch"][key] = str((path.parent / conf["batch"][key]).resolve())
    return conf
