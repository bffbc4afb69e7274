"""The curation pipeline users run: config in, pruned dataset + audit + manifest out.

Run a curation config: ingest, score (fit + batches), select, write outputs and the manifest.

Output contract (every run):
- `pruned/`: kept rows, input schema unchanged (score columns appended only with output.with_scores).
- `scores.parquet`: one row per input row: `id`, every score column, `keep`, `reason`.
- `manifest.json`: resolved config, versions, input fingerprint, counts by reason, timings.
- `report/`: plots and per-step tables (when output.plots).

All or nothing: everything is written into a temporary sibling folder, checked from disk (every
ingested id exactly once in `scores.parquet`, `pruned/` exactly the kept rows, rows in == kept +
dropped) and then renamed over the output folder, the manifest written last
(`datapruner.curation.run_folder`). An earlier run is replaced only with `output.overwrite`.
Finished steps are saved in the run's work folder, so a rerun of a killed run reuses them
(`datapruner.curation.step_store`); the manifest's `resume` section says what was reused.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from datapruner.config import RunConfig, config_from_dict, load_config
from datapruner.config.sections import read_yaml
from datapruner.curation.dataset import ID_COLUMN, INVALID_REASONS, Dataset, DatasetView
from datapruner.curation.output_checks import check_scores_file
from datapruner.curation.outputs import check_pruned, scores_table, write_scores
from datapruner.curation.score_columns import PendingColumns, ScoreColumns, ScoresFileColumns
from datapruner.curation.run_folder import MANIFEST, RunFolder, files_under, kill_point, work_dir_of
from datapruner.curation.step_store import StepStore
from datapruner.curation.steps import ScoreStep
from datapruner.errors import ConfigError, InputDataError
from datapruner.executors import Executor, make_executor
from datapruner.io.writers import check_output_location, release_unused_arrow_memory
from datapruner.registry import get_scorer, make_scorer
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
    scores : mapping of str to (N,) array
        Every score column (and the policies' audit columns), in input row order, read column by
        column from `scores.parquet` when asked for (so the columns are not held in memory).
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
    scores: Mapping[str, np.ndarray] = field(repr=False)
    keep: np.ndarray = field(repr=False)
    reason: np.ndarray = field(repr=False)
    manifest: dict[str, Any] = field(repr=False)
    source: Any = field(default=None, repr=False)

    def kept(self) -> Any:
        """The kept rows, in input order: in the in-memory input's own type (``curate(data, config)``:
        a `datasets.Dataset`, polars/pandas DataFrame or `pyarrow.Table`), else a `pyarrow.Table` of `pruned/`."""
        from datapruner.io.memory import read_output_table, take_rows

        return read_output_table(self.pruned_dir) if self.source is None else take_rows(self.source, self.keep)

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

    @property
    def report_path(self) -> Path:
        """The run report: one self-contained HTML page (funnel, histograms, method plots, examples)."""
        return self.out_dir / "report" / "index.html"


@dataclass(kw_only=True)
class ScoredDataset:
    """What `score_dataset` returns.

    Attributes
    ----------
    dataset : the input, re-streamable.
    view : the dataset view holding every score column in `view.scores` (a `ScoreColumns`: on disk
        under the run's work folder, read column by column).
    steps : the fitted score steps, in config order.
    timings : seconds per phase (ingest, embed, score:<step>).
    executor : the engine that scored (it also writes `pruned/`: Ray's writer on ``engine: ray``).
    reused : the steps whose columns were read back from the work folder (`resume=True`).
    """

    dataset: Dataset
    view: DatasetView
    steps: list[ScoreStep]
    timings: dict[str, float]
    executor: Executor
    reused: list[str] = field(default_factory=list)


def score_dataset(cfg: RunConfig, *, resume: bool = False) -> ScoredDataset:
    """Ingest the input and run every scorer of a validated config (no selection, nothing written).

    Parameters
    ----------
    cfg : RunConfig
        A config that passed `RunConfig.validate`.
    resume : bool
        Save each finished step's columns in the run's work folder (`.<out>.work/steps/`) and reuse
        those a killed or earlier run of the same config and input saved (`StepStore`).

    Returns
    -------
    ScoredDataset
    """
    from datapruner.models import set_encoder_backend, set_threads

    timings: dict[str, float] = {}
    threads = set_threads(cfg.models.threads)
    set_encoder_backend(cfg.models.encoder_backend)
    cfg.models.threads = threads
    out_dir = Path(cfg.output.dir)
    check_output_location(out_dir, cfg.input.path)
    executor = make_executor(cfg.engine, cfg.ray)
    executor.start()  # the engine's start-up overlaps the ingest pass
    steps = [make_scorer(s.name, {**s.params}) for s in cfg.scorers]
    for step in steps:
        step.draw_plots = cfg.output.plots
    dataset = Dataset(cfg.input.path, format=cfg.input.format, columns=cfg.input.columns, batch_size=cfg.input.batch_size)
    t = time.perf_counter()
    info = dataset.ingest()
    timings["ingest"] = time.perf_counter() - t
    view = DatasetView(
        dataset=dataset, info=info, random_state=cfg.random_state, work_dir=work_dir_of(out_dir),
        embedder_name=cfg.models.embedder, lm_name=cfg.models.lm, lm_max_length=cfg.models.lm_max_length,
        scores=ScoreColumns(work_dir_of(out_dir) / "columns"),
    )
    _check_needs(steps, view)
    store = _step_store(cfg, view) if resume else None
    keys: list[str] = []
    reused: list[str] = []
    for step, spec in zip(steps, cfg.scorers):
        t = time.perf_counter()
        key = store.key(step.name, spec.params, keys) if store else ""
        keys.append(key)
        columns = store.load(key, view.scores.pending(info.n_rows)) if store else None
        if columns is not None:
            reused.append(step.name)
            if _has_report(step):  # its report needs the fitted state; fits reuse their own work-folder state
                step.fit(view)
        else:
            if step.needs_embeddings:
                view.embeddings()
                timings.setdefault("embed", time.perf_counter() - t)
                t = time.perf_counter()
            step.fit(view)
            columns = _collect(executor.map_batches(step, view), view.scores.pending(info.n_rows), step.name)
        clash = set(columns) & (set(view.scores) | set(CONTROL_COLUMNS))
        if clash:
            raise ConfigError(f"scorers[{step.name}]", sorted(clash), "score columns not produced by an earlier scorer")
        if store and step.name not in reused:
            store.save(key, step.name, columns)
            kill_point(f"step:{step.name}")
        view.scores.adopt(columns)
        del columns
        release_unused_arrow_memory()
        timings[f"score:{step.name}"] = time.perf_counter() - t
    return ScoredDataset(dataset=dataset, view=view, steps=steps, timings=timings, executor=executor, reused=reused)


def _has_report(step: ScoreStep) -> bool:
    return type(step).write_report is not ScoreStep.write_report


def _step_store(cfg: RunConfig, view: DatasetView) -> StepStore:
    """The finished-step store of this config and input (see `StepStore` for what the key covers)."""
    context = {
        "input": {"format": cfg.input.format, "columns": cfg.input.columns.used(), "batch_size": cfg.input.batch_size,
                  "fingerprint": view.info.input_fingerprint},
        "models": {"embedder": cfg.models.embedder, "lm": cfg.models.lm, "lm_max_length": cfg.models.lm_max_length,
                   "threads": cfg.models.threads},
        "random_state": cfg.random_state,
    }
    return StepStore(view.work_dir, context=context, sources=view.info.sources)


def check_score_columns(cfg: RunConfig, policies) -> None:
    """Fail before any work when a policy names a scorer instead of one of its columns (e.g. `text_stats`).

    Raises
    ------
    ConfigError : naming the policy key, the value, the scorer's columns and the flag to set.
    """
    scorers = {s.name: get_scorer(s.name) for s in cfg.scorers}
    for policy in policies:
        for param in policy.column_params:
            value = policy.param(param)
            cls = scorers.get(value)
            if cls is not None and value not in cls.columns:
                raise ConfigError(
                    f"selection[{policy.name}].{param}", value,
                    f"a score column, not a scorer name; scorer {value!r} writes {sorted(cls.columns)}: "
                    f"choose one with --score-column (datapruner prune) or selection[].{param} (config)",
                )


def run_curation(cfg: RunConfig) -> RunResult:
    """Score, select and write a validated config. See the module docstring for the output contract."""
    started = time.perf_counter()
    policies = [make_policy(spec) for spec in cfg.selection]  # built (and checked) before any scoring
    check_score_columns(cfg, policies)
    with RunFolder(cfg.output.dir, overwrite=cfg.output.overwrite, input_path=cfg.input.path) as folder:
        scored = score_dataset(cfg, resume=True)
        dataset, view, steps, timings = scored.dataset, scored.view, scored.steps, scored.timings
        info = view.info
        keep, reason = apply_policies(policies, view.scores, valid=info.valid, invalid_reason=info.invalid_reason,
                                      on_invalid=cfg.on_invalid, context=SelectionContext.from_view(view))
        del policies  # their per-row state is in view.scores now (audit columns); free it before writing
        with folder.stage() as staging:
            t = time.perf_counter()
            executor = scored.executor
            write_pruned = functools.partial(executor.write_pruned, staging, view, keep, shard_rows=cfg.output.shard_rows,
                                             scores=view.scores if cfg.output.with_scores else None)
            with ThreadPoolExecutor(max_workers=1) as pool:
                pruned = pool.submit(write_pruned) if executor.writes_off_driver else None
                write_scores(staging, scores_table(info.ids, view.scores, keep=keep, reason=reason))
                kill_point("write:scores")
                counts = check_scores_file(staging, info.ids, selected=True)  # from the files on disk
                if pruned is None:
                    write_pruned()
                else:
                    pruned.result()
            kill_point("write:pruned")
            check_pruned(staging, dataset)
            if cfg.output.format == "hf":
                from datapruner.io.hf_output import convert_to_hf_dataset

                convert_to_hf_dataset(staging / "pruned", work_dir=folder.work_dir)
            timings["write"] = time.perf_counter() - t
            report = _write_report(cfg, steps, view.scores, keep, staging / "report")
            timings["total"] = time.perf_counter() - started
            manifest = _manifest(cfg, view, counts, timings, report, resume=_resume_entry(scored), folder=folder, staging=staging)
            from datapruner.curation.html_report import example_rows, write_html_report  # the run report page

            write_html_report(staging, manifest=manifest, scores=view.scores, keep=keep, examples=example_rows(dataset, reason))
            manifest["files"] = files_under(staging)
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
        view.scores.remove()
    out_dir = folder.out_dir
    log.info("kept %d of %d rows; outputs in %s", counts["kept"], info.n_rows, out_dir)
    return RunResult(
        out_dir=out_dir, n_rows=info.n_rows, n_kept=counts["kept"], dropped_by_reason=counts["dropped_by_reason"],
        scores=ScoresFileColumns(out_dir / "scores.parquet", exclude=CONTROL_COLUMNS), keep=keep, reason=reason,
        manifest=manifest,
    )


def _write_report(cfg: RunConfig, steps, scores: dict[str, np.ndarray], keep: np.ndarray, directory: Path) -> dict[str, Any]:
    report: dict[str, Any] = {}
    if cfg.output.plots:
        from datapruner.curation.report import write_score_plots

        report["plots"] = write_score_plots(scores, directory, keep=keep)
    for step in steps:
        extra = step.write_report(directory, scores)
        if extra:
            report[step.name] = extra
    return report


def _resume_entry(scored: ScoredDataset) -> dict[str, Any]:
    return {
        "work_dir": str(scored.view.work_dir),
        "reused_steps": scored.reused,
        "computed_steps": [s.name for s in scored.steps if s.name not in scored.reused],
    }


def _check_needs(steps, view: DatasetView) -> None:
    for step in steps:
        if "labels" in step.needs and view.labels is None:
            raise InputDataError(f"scorer {step.name!r} needs labels; map the label column with input.columns.label (--label-column)")
        if "prompt_response" in step.needs and view.dataset.columns.response is None:
            raise InputDataError(
                f"scorer {step.name!r} needs prompt/response data; set input.columns.prompt and input.columns.response"
            )


def _collect(parts, columns: PendingColumns, step_name: str) -> PendingColumns:
    """Write (row indices, columns) parts into `columns` as they come; every row must be scored exactly once."""
    seen = np.zeros(columns.n_rows, dtype=bool)
    twice = 0
    for rows, cols in parts:
        rows = np.asarray(rows, dtype=np.int64)
        for name, values in cols.items():
            values = np.asarray(values)
            if len(values) != len(rows):
                raise RuntimeError(f"scorer {step_name} returned {len(values)} values of {name!r} for {len(rows)} rows")
            columns.put(name, rows, values)
        twice += int(seen[rows].sum()) + len(rows) - len(np.unique(rows))
        seen[rows] = True
    if len(columns) and (twice or not seen.all()):
        raise RuntimeError(f"scorer {step_name}: {twice + int((~seen).sum())} rows were not scored exactly once")
    return columns


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


def _manifest(cfg: RunConfig, view: DatasetView, counts: dict[str, Any], timings: dict[str, float], report: dict, *,
              resume: dict[str, Any], folder: RunFolder, staging: Path) -> dict[str, Any]:
    info = view.info
    manifest = {
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
        "counts": {**counts, "invalid_rows": int((~info.valid).sum())},
        "labels": None if info.label_names is None else {"column": cfg.input.columns.label, "classes": list(info.label_names)},
        "score_columns": sorted(view.scores),
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "report": report,
        "resume": resume,
        "replaced_earlier_run": bool(folder.replaced),
        "files": files_under(staging),
    }
    return manifest


def _resolve(config: RunConfig | Mapping[str, Any] | str | Path, out: str | None) -> RunConfig:
    if isinstance(config, RunConfig):
        if out is not None:
            config.output.dir = str(out)
        return config.validate()
    if isinstance(config, Mapping):
        return config_from_dict(config, out=out)
    return load_config(config, out=out)


def curate(data_or_config: Any, config: RunConfig | Mapping[str, Any] | str | Path | None = None, *, out: str | None = None) -> RunResult:
    """Run a curation job: ingest, score, select, write.

    ``curate(config)`` curates the files the config's ``input.path`` names; ``curate(data, config)``
    curates an in-memory table instead.

    Parameters
    ----------
    data_or_config : the config when it is the only argument; otherwise the in-memory table to
        curate: a `datasets.Dataset`, a polars or pandas DataFrame, or a `pyarrow.Table`
        (``input.path`` may then be left out; the other ``input`` keys apply). `RunResult.kept`
        returns the kept rows in the same type.
    config : a YAML path, a dict or a `RunConfig`. It is validated first (every scorer and policy
        is built), so a bad key or value fails before any data is read or any model loads.
    out : overrides ``output.dir``.

    Returns
    -------
    RunResult
        The counts and the paths of `pruned/`, `scores.parquet` and `manifest.json`.
    """
    if config is None:
        return run_curation(_resolve(data_or_config, out))
    data = data_or_config
    from datapruner.io.memory import MEMORY_INPUT_NAME, check_table, write_input_parquet

    check_table(data)
    if isinstance(config, (str, Path)):
        config, base = read_yaml(Path(config)), Path(config).resolve().parent
    else:
        base = None
    if isinstance(config, Mapping):
        config = config_from_dict({**config, "input": {**(config.get("input") or {}), "path": MEMORY_INPUT_NAME}},
                                  base_dir=base, out=out)
    cfg = _resolve(config, out)
    cfg.input.path = str(write_input_parquet(data, work_dir_of(cfg.output.dir) / "memory-input"))
    cfg.input.format = "parquet"
    result = run_curation(cfg)
    result.source = data
    return result


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
    started = time.perf_counter()
    with RunFolder(cfg.output.dir, overwrite=cfg.output.overwrite, input_path=cfg.input.path) as folder:
        scored = score_dataset(cfg, resume=True)
        view = scored.view
        info = view.info
        # indexing a small table shares its str objects (np.where would make one per row)
        reason = np.array(("scored", *(f"invalid:{r}" for r in INVALID_REASONS)), dtype=object)[info.invalid_code]
        with folder.stage() as staging:
            write_scores(staging, scores_table(info.ids, view.scores, keep=None, reason=reason))
            kill_point("write:scores")
            counts = check_scores_file(staging, info.ids, selected=False)
            scored.timings["total"] = time.perf_counter() - started
            manifest = _manifest(cfg, view, counts, scored.timings, {}, resume=_resume_entry(scored), folder=folder, staging=staging)
            manifest["mode"] = "score"
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
        view.scores.remove()
    return folder.out_dir / "scores.parquet"
