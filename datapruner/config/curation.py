"""The curation config: YAML or dict -> a validated :class:`RunConfig` (``datapruner run``, :func:`datapruner.curate`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from datapruner.errors import ConfigError
from datapruner.validation import check_choice, check_positive_int
from datapruner.config.sections import ModelsConfig, build_section, check_sections, check_threads, read_yaml, resolve_path, section
from datapruner.curation.dataset import ColumnMap
from datapruner.io.hf_output import OUTPUT_FORMATS
from datapruner.io.readers import FORMATS

ENGINES = ("local", "ray")

@dataclass
class InputConfig:
    """``input:`` what to read.

    Attributes
    ----------
    path : a Parquet/JSONL/CSV/TSV file, a folder, a glob, or a saved ``datasets`` folder.
    format : ``"auto"`` (from the suffix) or one of :data:`datapruner.io.readers.FORMATS`.
    columns : which input columns hold text, label, id, prompt, response.
    batch_size : rows per streamed batch (the unit every scorer sees).
    """

    path: str
    format: str = "auto"
    columns: ColumnMap = field(default_factory=ColumnMap)
    batch_size: int = 1024


@dataclass
class OutputConfig:
    """``output:`` where and how to write.

    Attributes
    ----------
    dir : output folder (``pruned/``, ``scores.parquet``, ``manifest.json``, the report).
    with_scores : also append the score columns to ``pruned/``.
    shard_rows : rows per written Parquet shard.
    plots : draw the report's PNG plots.
    overwrite : replace an earlier run in ``dir`` (``--overwrite``); without it such a run is refused.
    format : ``"parquet"`` (default: ``pruned/`` holds Parquet shards) or ``"hf"`` (``pruned/`` is a
        ``datasets`` ``save_to_disk`` folder; :mod:`datapruner.io.hf_output`).
    """

    dir: str
    with_scores: bool = False
    shard_rows: int = 100_000
    plots: bool = True
    overwrite: bool = False
    format: str = "parquet"


@dataclass
class ScorerConfig:
    """One item of ``scorers:``: a registered scorer name and its params (see ``datapruner info``)."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunConfig:
    """A validated curation run: read ``input``, run ``scorers``, apply ``selection``, write ``output``.

    Attributes
    ----------
    input : :class:`InputConfig`.
    output : :class:`OutputConfig`.
    scorers : list of :class:`ScorerConfig`, run in order; each adds score columns.
    selection : policy specs (mappings with a ``policy`` key), applied in order; each drops rows
        with a reason. Empty: keep every row (score only).
    models : :class:`ModelsConfig` (shared embedder and LM, ``threads``).
    engine : ``"local"`` or ``"ray"``.
    ray : options of the Ray engine (address, num_cpus, concurrency, threads_per_worker).
    random_state : seed of every random choice.
    on_invalid : rows a scorer cannot score: ``"drop"`` (with a reason) or ``"keep"``.
    """

    input: InputConfig
    output: OutputConfig
    scorers: list[ScorerConfig]
    selection: list[dict[str, Any]] = field(default_factory=list)
    models: ModelsConfig = field(default_factory=ModelsConfig)
    engine: str = "local"
    ray: dict[str, Any] = field(default_factory=dict)
    random_state: int = 0
    on_invalid: str = "drop"

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as plain data (what the manifest records)."""
        return dataclasses.asdict(self)

    def validate(self) -> "RunConfig":
        """Check every value (scorer names and params, policies included); return self.

        Raises
        ------
        ConfigError : naming the key, the bad value and what is allowed.
        """
        from datapruner.registry import get_scorer
        from datapruner.selection import make_policy

        if self.input.format != "auto" and self.input.format not in FORMATS:
            raise ConfigError("input.format", self.input.format, f"one of {['auto', *FORMATS]}")
        check_positive_int("input.batch_size", self.input.batch_size)
        check_positive_int("output.shard_rows", self.output.shard_rows)
        check_choice("output.format", self.output.format, OUTPUT_FORMATS)
        check_threads(self.models)
        if self.engine not in ENGINES:
            raise ConfigError("engine", self.engine, f"one of {list(ENGINES)}")
        if self.on_invalid not in ("drop", "keep"):
            raise ConfigError("on_invalid", self.on_invalid, "'drop' or 'keep'")
        if not isinstance(self.random_state, int):
            raise ConfigError("random_state", self.random_state, "an integer")
        if not self.scorers:
            raise ConfigError("scorers", self.scorers, "a list with at least one scorer")
        for sc in self.scorers:
            get_scorer(sc.name)(**sc.params)  # unknown names and params fail here
        for spec in self.selection:
            make_policy(spec)
        return self


_SECTIONS = {"input", "output", "scorers", "selection", "models", "engine", "ray", "random_state", "on_invalid"}


def config_from_dict(raw: Mapping[str, Any], *, base_dir: Path | None = None, out: str | None = None) -> RunConfig:
    """Build and validate a curation config from a mapping (the layout of a YAML config file).

    Parameters
    ----------
    raw : the sections (see :class:`RunConfig`).
    base_dir : folder that relative paths resolve against (default: the working directory).
    out : replaces ``output.dir`` (the ``--out`` flag).

    Returns
    -------
    RunConfig, validated.

    Raises
    ------
    ConfigError : an unknown section or key, a missing required key, or a bad value.
    """
    check_sections(raw, _SECTIONS)
    base = base_dir or Path.cwd()

    inp = section(raw, "input", required=True)
    columns = build_section(ColumnMap, inp.get("columns") or {}, "input.columns")
    if "path" not in inp:
        raise ConfigError("input.path", None, "the path of a Parquet/JSONL/CSV file, folder or glob")
    input_cfg = build_section(InputConfig, {**inp, "path": resolve_path(base, inp["path"]), "columns": columns}, "input")

    outp = dict(section(raw, "output", required=out is None))
    if out is not None:
        outp["dir"] = out
    elif "dir" not in outp:
        raise ConfigError("output.dir", None, "an output folder (or pass --out)")
    else:
        outp["dir"] = resolve_path(base, outp["dir"])
    output_cfg = build_section(OutputConfig, outp, "output")

    scorers_raw = raw.get("scorers")
    if not isinstance(scorers_raw, list) or not scorers_raw:
        raise ConfigError("scorers", scorers_raw, "a list of {name: ..., params: {...}}")
    scorers = []
    for i, item in enumerate(scorers_raw):
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, Mapping) or "name" not in item:
            raise ConfigError(f"scorers[{i}]", item, "a mapping with a 'name' key")
        scorers.append(build_section(ScorerConfig, {"params": {}, **item}, f"scorers[{i}]"))

    selection = raw.get("selection") or []
    if not isinstance(selection, list) or not all(isinstance(s, Mapping) and "policy" in s for s in selection):
        raise ConfigError("selection", selection, "a list of mappings, each with a 'policy' key")
    models = build_section(ModelsConfig, section(raw, "models"), "models")
    cfg = RunConfig(
        input=input_cfg,
        output=output_cfg,
        scorers=scorers,
        selection=[dict(s) for s in selection],
        models=models,
        engine=raw.get("engine", "local"),
        ray=dict(raw.get("ray") or {}),
        random_state=raw.get("random_state", 0),
        on_invalid=raw.get("on_invalid", "drop"),
    )
    return cfg.validate()


def load_config(path: str | Path, *, out: str | None = None) -> RunConfig:
    """Read and validate a curation YAML config (see ``configs/curate-*.yaml``).

    Parameters
    ----------
    path : the YAML file; relative paths inside it resolve against its folder.
    out : replaces ``output.dir``.

    Returns
    -------
    RunConfig, validated.

    Raises
    ------
    ConfigError : a missing file, invalid YAML, or any error of :func:`config_from_dict`.
    """
    path = Path(path)
    return config_from_dict(read_yaml(path), base_dir=path.resolve().parent, out=out)
