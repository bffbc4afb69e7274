"""The curation pipeline users run: config in, pruned dataset + audit + manifest out.

Run a curation config: ingest, score (fit + batches), select, write outputs and the manifest.

Output contract (every run):
- `pruned/`: kept rows, input schema unchanged (score columns appended only with output.with_scores).
- `scores.parquet`: one row per input row: `id`, every score column, `keep`, `reason`.
- `manifest.json`: resolved config, versions, input fingerprint, counts by reason, timings.
- `report/`: plots and per-step tables (when output.plots).
Rows in == rows kept + rows dropped, checked before anything is written.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pyarrow as pa

from datapruner.config import RunConfig, config_from_dict, load_config
from datapruner.curation.dataset import ID_COLUMN, Dataset, DatasetView
from datapruner.curation.steps import ScoreStep
from datapruner.errors import ConfigError, InputDataError
from datapruner.executors import make_executor
from datapruner.io.writers import ShardedParquetWriter, check_output_location, write_table_atomic
from datapruner.paths import atomic_dir, atomic_path
from datapruner.registry import make_scorer
from datapruner.selection import SelectionContext, apply_policies, make_policy

log = logging.getLogger(__name__)

CONTROL_COLUMNS = (ID_COLUMN, "keep", "reason")


@dataclass(kw_only=True)
class RunResult:
    """What `curate` returns: the counts, the per-row decisions and where the outputs are.

    Attributes
    ----------
    out_dir : Path
        The output folder (`pruned/`, `scores.parquet`, `manifest.json`, `report/`).
    n_rows, n_kept : int
        Rows in, rows kept.
    dropped_by_reason : dict of str to int
        Rows dropped, by `reason`.
    scores : dict of str to (N,) array
        Every score column (and the policies' audit columns), in input row order.
    keep : (N,) bool
        The decision for each row.
    reason : (N,) object
        "kept", or why the row was dropped.
    manifest : dict
        The contents of `manifest.json`.
    """

    out_dir: Path
    n_rows: int
    n_kept: int
    dropped_by_reason: dict[str, int]
    scores: dict[str, np.ndarray] = field(repr=False)
    keep: np.ndarray = field(repr=False)
    reason: np.ndarray = field(repr=False)
    manifest: dict[str, Any] = field(repr=False)

    @property
    def pruned_dir(self) -> Path:
        """The pruned dataset's folder (Parquet shards, the input's schema)."""
        return self.out_dir / "pruned"

    @property
    def scores_path(self) -> Path:
        """The audit table: one row per input row."""
        return self.out_dir / "scores.parquet"

    @property
    def manifest_path(self) -> Path:
        """The run's manifest (resolved config, versions, counts, timings)."""
        return self.out_dir / "manifest.json"


@dataclass(kw_only=True)
class ScoredDataset:
    """What `score_dataset` returns.

    Attributes
    ----------
    dataset : the input, re-streamable.
    view : the dataset view holding every score column in `view.scores`.
    steps : the fitted score steps, in config order.
    timings : seconds per phase (ingest, embed, score:<step>).
    """

    dataset: Dataset
    view: DatasetView
    steps: list[ScoreStep]
    timings: dict[str, float]


def score_dataset(cfg: RunConfig) -> ScoredDataset:
    """Ingest the input and run every scorer of a validated config (no selection, nothing written).

    Parameters
    ----------
    cfg : RunConfig
        A config that passed `RunConfig.validate`.

    Returns
    -------
    ScoredDataset
    """
    from datapruner.models import set_threads

    timings: dict[str, float] = {}
    threads = set_threads(cfg.models.threads)
    cfg.models.threads = threads
    out_dir = Path(cfg.output.dir)
    check_output_location(out_dir, cfg.input.path)
    executor = make_executor(cfg.engine, cfg.ray)
    steps = [make_scorer(s.name, {**s.params}) for s in cfg.scorers]
    dataset = Dataset(cfg.input.path, format=cfg.input.format, columns=cfg.input.columns, batch_size=cfg.input.batch_size)
    t = time.perf_counter()
    info = dataset.ingest()
    timings["ingest"] = time.perf_counter() - t
    view = DatasetView(
        dataset=dataset, info=info, random_state=cfg.random_state, work_dir=out_dir / ".work",
        embedder_name=cfg.models.embedder, lm_name=cfg.models.lm, lm_max_length=cfg.models.lm_max_length,
    )
    _check_needs(steps, view)
    for step in steps:
        t = time.perf_counter()
        if step.needs_embeddings:
            view.embeddings()
            timings.setdefault("embed", time.perf_counter() - t)
            t = time.perf_counter()
        step.fit(view)
        columns = _collect(executor.map_batches(step, view), info.n_rows, step.name)
        clash = set(columns) & (set(view.scores) | set(CONTROL_COLUMNS))
        if clash:
            raise ConfigError(f"scorers[{step.name}]", sorted(clash), "score columns not produced by an earlier scorer")
        view.scores.update(columns)
        timings[f"score:{step.name}"] = time.perf_counter() - t
    return ScoredDataset(dataset=dataset, view=view, steps=steps, timings=timings)


def run_curation(cfg: RunConfig) -> RunResult:
    """Score, select and write a validated config. See the module docstring for the output contract."""
    started = time.perf_counter()
    policies = [make_policy(spec) for spec in cfg.selection]  # built (and checked) before any scoring
    scored = score_dataset(cfg)
    dataset, view, steps, timings = scored.dataset, scored.view, scored.steps, scored.timings
    info = view.info
    keep, reason = apply_policies(policies, view.scores, valid=info.valid, invalid_reason=info.invalid_reason, on_invalid=cfg.on_invalid,
                                  context=SelectionContext.from_view(view))
    counts = Counter(reason[~keep].tolist())
    n_kept = int(keep.sum())
    if n_kept + sum(counts.values()) != info.n_rows:
        raise RuntimeError("row accounting failed: kept + dropped != rows in")

    out_dir = Path(cfg.output.dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    write_table_atomic(scores_table(info.ids, view.scores, keep=keep, reason=reason), out_dir / "scores.parquet")
    _write_pruned(dataset, keep, view.scores if cfg.output.with_scores else None, out_dir / "pruned", cfg.output.shard_rows)
    timings["write"] = time.perf_counter() - t
    report: dict[str, Any] = {}
    if cfg.output.plots:
        from datapruner.curation.report import write_score_plots

        report["plots"] = write_score_plots(view.scores, out_dir / "report", keep=keep)
    for step in steps:
        extra = step.write_report(out_dir / "report", view.scores)
        if extra:
            report[step.name] = extra
    timings["total"] = time.perf_counter() - started
    manifest = _manifest(cfg, view, n_kept, counts, timings, report)
    with atomic_path(out_dir / "manifest.json") as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, default=str))
    log.info("kept %d of %d rows; outputs in %s", n_kept, info.n_rows, out_dir)
    return RunResult(
        out_dir=out_dir, n_rows=info.n_rows, n_kept=n_kept, dropped_by_reason=dict(counts),
        scores=view.scores, keep=keep, reason=reason, manifest=manifest,
    )


def _check_needs(steps, view: DatasetView) -> None:
    for step in steps:
        if "labels" in step.needs and view.labels is None:
            raise InputDataError(f"scorer {step.name!r} needs labels; map the label column with input.columns.label (--label-column)")
        if "prompt_response" in step.needs and view.dataset.columns.response is None:
            raise InputDataError(
                f"scorer {step.name!r} needs prompt/response data; set input.columns.prompt and input.columns.response"
            )


def _collect(parts, n_rows: int, step_name: str) -> dict[str, np.ndarray]:
    """Assemble (row indices, columns) parts into full columns; every row must be scored exactly once."""
    columns: dict[str, np.ndarray] = {}
    times_seen = np.zeros(n_rows, dtype=np.int64)
    for rows, cols in parts:
        rows = np.asarray(rows, dtype=np.int64)
        for name, values in cols.items():
            values = np.asarray(values)
            if len(values) != len(rows):
                raise RuntimeError(f"scorer {step_name} returned {len(values)} values of {name!r} for {len(rows)} rows")
            if name not in columns:
                dtype = object if values.dtype.kind in "OUS" else values.dtype
                columns[name] = np.full(n_rows, None if dtype == object else 0, dtype=dtype)
            columns[name][rows] = values
        times_seen[rows] += 1
    if columns and not np.all(times_seen == 1):
        raise RuntimeError(f"scorer {step_name}: {int((times_seen != 1).sum())} rows were not scored exactly once")
    return columns


def _arrow(values: np.ndarray) -> pa.Array:
    if values.dtype == object:
        return pa.array(values.tolist())
    return pa.array(values)


def scores_table(ids: pa.Array, scores: dict[str, np.ndarray], *, keep: np.ndarray | None, reason: np.ndarray) -> pa.Table:
    """The audit table: `id`, score columns (sorted by name), `keep` (when selected), `reason`.

    Parameters
    ----------
    ids : (N,) row ids. scores : {column: (N,) array}. keep : (N,) bool or None. reason : (N,) str.
    """
    arrays = {ID_COLUMN: ids}
    for name in sorted(scores):
        arrays[name] = _arrow(scores[name])
    if keep is not None:
        arrays["keep"] = pa.array(keep)
    arrays["reason"] = pa.array(reason.tolist(), pa.string())
    return pa.table(arrays)


def _write_pruned(dataset: Dataset, keep: np.ndarray, scores: dict[str, np.ndarray] | None, directory: Path, shard_rows: int) -> int:
    schema = dataset.ingest().schema
    if scores:
        clash = set(scores) & set(schema.names)
        if clash:
            raise ConfigError("output.with_scores", True, f"score columns that do not clash with input columns {sorted(clash)}")
        for name in sorted(scores):
            schema = schema.append(pa.field(name, _arrow(scores[name]).type))
    with atomic_dir(directory) as tmp:
        with ShardedParquetWriter(tmp, schema, shard_rows=shard_rows) as writer:
            start = 0
            for sb in dataset.source_batches():
                rb = sb.batch
                n = rb.num_rows
                mask = keep[start : start + n]
                if mask.any():
                    table = pa.Table.from_batches([rb]).filter(pa.array(mask))
                    if scores:
                        idx = np.flatnonzero(mask) + start
                        for name in sorted(scores):
                            table = table.append_column(name, _arrow(scores[name][idx]))
                    writer.write(table.cast(schema))
                start += n
    return int(keep.sum())


def package_versions() -> dict[str, str]:
    """Installed versions of datapruner and the libraries that shape its results.

    Returns
    -------
    dict of str to str
        Package name to version, for the packages that are installed (missing ones are left out).
    """
    import importlib.metadata as md

    out = {}
    for pkg in ("datapruner", "torch", "transformers", "sentence-transformers", "faiss-cpu", "numpy", "pyarrow", "cleanlab", "ray"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            continue
    return out


def _manifest(cfg: RunConfig, view: DatasetView, n_kept: int, counts: Counter, timings: dict[str, float], report: dict) -> dict[str, Any]:
    info = view.info
    return {
        "datapruner_manifest": 1,
        "config": cfg.to_dict(),
        "versions": package_versions(),
        "models": {"embedder": cfg.models.embedder, "lm": cfg.models.lm, "lm_max_length": cfg.models.lm_max_length,
                   "threads": cfg.models.threads},
        "threads": cfg.models.threads,
        "input": {
            "path": cfg.input.path,
            "files": info.sources,
            "fingerprint": info.input_fingerprint,
            "text_fingerprint": info.text_fingerprint,
            "schema": [f"{f.name}: {f.type}" for f in info.schema],
        },
        "counts": {
            "rows_in": info.n_rows,
            "kept": n_kept,
            "dropped": int(sum(counts.values())),
            "dropped_by_reason": dict(sorted(counts.items())),
            "invalid_rows": int((~info.valid).sum()),
        },
        "score_columns": sorted(view.scores),
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "report": report,
    }


def _resolve(config: RunConfig | Mapping[str, Any] | str | Path, out: str | None) -> RunConfig:
    if isinstance(config, RunConfig):
        if out is not None:
            config.output.dir = str(out)
        return config.validate()
    if isinstance(config, Mapping):
        return config_from_dict(config, out=out)
    return load_config(config, out=out)


def curate(config: RunConfig | Mapping[str, Any] | str | Path, *, out: str | None = None) -> RunResult:
    """Run a curation job: ingest, score, select, write.

    Parameters
    ----------
    config : a YAML path, a dict or a `RunConfig`. It is validated first (every scorer and policy
        is built), so a bad key or value fails before any data is read or any model loads.
    out : overrides ``output.dir``.

    Returns
    -------
    RunResult
        The counts and the paths of `pruned/`, `scores.parquet` and `manifest.json`.
    """
    return run_curation(_resolve(config, out))


def score(config: RunConfig | Mapping[str, Any] | str | Path, *, out: str | None = None) -> Path:
    """Scores only: write `scores.parquet` without selecting or pruning.

    Parameters
    ----------
    config : a YAML path, a dict or a `RunConfig` (validated first; its selection is not applied).
    out : overrides ``output.dir``.

    Returns
    -------
    Path of `scores.parquet` (`id`, score columns, `reason` = "scored" or why a row was skipped).
    """
    cfg = _resolve(config, out)
    view = score_dataset(cfg).view
    info = view.info
    reason = np.where(info.valid, "scored", np.char.add("invalid:", info.invalid_reason.astype(str))).astype(object)
    path = Path(cfg.output.dir) / "scores.parquet"
    write_table_atomic(scores_table(info.ids, view.scores, keep=None, reason=reason), path)
    return path
