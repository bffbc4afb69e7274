"""Curation run configuration: YAML or dict -> validated `RunConfig`.

Every error names the key, the bad value and the allowed values. Relative paths inside a config
file resolve against the config file's folder. The resolved config is written to the manifest.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from datapruner.curation.dataset import ColumnMap
from datapruner.errors import ConfigError
from datapruner.io.readers import FORMATS
from datapruner.models.loading import BUNDLED_EMBEDDER, BUNDLED_LM

ENGINES = ("local", "ray")


@dataclass
class InputConfig:
    path: str
    format: str = "auto"
    columns: ColumnMap = field(default_factory=ColumnMap)
    batch_size: int = 1024


@dataclass
class OutputConfig:
    dir: str
    with_scores: bool = False
    shard_rows: int = 100_000
    plots: bool = True


@dataclass
class ModelsConfig:
    embedder: str = BUNDLED_EMBEDDER
    lm: str = BUNDLED_LM
    lm_max_length: int = 512
    threads: int | None = 1


@dataclass
class ScorerConfig:
    name: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunConfig:
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
        return dataclasses.asdict(self)

    def validate(self) -> "RunConfig":
        from datapruner.registry import get_scorer
        from datapruner.selection import make_policy

        if self.input.format != "auto" and self.input.format not in FORMATS:
            raise ConfigError("input.format", self.input.format, f"one of {['auto', *FORMATS]}")
        _positive_int("input.batch_size", self.input.batch_size)
        _positive_int("output.shard_rows", self.output.shard_rows)
        if self.models.threads is not None:
            _positive_int("models.threads", self.models.threads)
        if self.engine not in ENGINES:
            raise ConfigError("engine", self.engine, f"one of {list(ENGINES)}")
        if self.on_invalid not in ("drop", "keep"):
            raise ConfigError("on_invalid", self.on_invalid, "'drop' or 'keep'")
        if not isinstance(self.random_state, int):
            raise ConfigError("random_state", self.random_state, "an integer")
        if not self.scorers:
            raise ConfigError("scorers", self.scorers, "a list with at least one scorer")
        for i, sc in enumerate(self.scorers):
            get_scorer(sc.name)(**sc.params)  # unknown names and params fail here
        for spec in self.selection:
            make_policy(spec)
        return self


_SECTIONS = {"input", "output", "scorers", "selection", "models", "engine", "ray", "random_state", "on_invalid"}


def config_from_dict(raw: Mapping[str, Any], *, base_dir: Path | None = None, out: str | None = None) -> RunConfig:
    """Build and validate a config from a mapping. `out` overrides output.dir."""
    if not isinstance(raw, Mapping):
        raise ConfigError("<top level>", type(raw).__name__, "a mapping of sections")
    for key in raw:
        if key not in _SECTIONS:
            raise ConfigError(key, raw[key], f"a known section: {sorted(_SECTIONS)}")
    base = base_dir or Path.cwd()

    def resolve(p: str) -> str:
        return str(p) if Path(p).is_absolute() else str((base / p).resolve()) if not any(c in str(p) for c in "*?[") else str(base / p)

    inp = _section(raw, "input", required=True)
    columns = _build(ColumnMap, inp.get("columns") or {}, "input.columns")
    if "path" not in inp:
        raise ConfigError("input.path", None, "the path of a Parquet/JSONL/CSV file, folder or glob")
    input_cfg = _build(InputConfig, {**inp, "path": resolve(inp["path"]), "columns": columns}, "input")

    outp = dict(_section(raw, "output", required=out is None))
    if out is not None:
        outp["dir"] = out
    elif "dir" not in outp:
        raise ConfigError("output.dir", None, "an output folder (or pass --out)")
    else:
        outp["dir"] = resolve(outp["dir"])
    output_cfg = _build(OutputConfig, outp, "output")

    scorers_raw = raw.get("scorers")
    if not isinstance(scorers_raw, list) or not scorers_raw:
        raise ConfigError("scorers", scorers_raw, "a list of {name: ..., params: {...}}")
    scorers = []
    for i, item in enumerate(scorers_raw):
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, Mapping) or "name" not in item:
            raise ConfigError(f"scorers[{i}]", item, "a mapping with a 'name' key")
        scorers.append(_build(ScorerConfig, {"params": {}, **item}, f"scorers[{i}]"))

    selection = raw.get("selection") or []
    if not isinstance(selection, list) or not all(isinstance(s, Mapping) and "policy" in s for s in selection):
        raise ConfigError("selection", selection, "a list of mappings, each with a 'policy' key")
    models = _build(ModelsConfig, _section(raw, "models"), "models")
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
    """Read a YAML config file; relative paths resolve against the file's folder."""
    import yaml

    path = Path(path)
    if not path.exists():
        raise ConfigError("<config file>", str(path), "an existing YAML file")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError("<config file>", str(path), f"valid YAML ({exc})") from None
    return config_from_dict(raw or {}, base_dir=path.resolve().parent, out=out)


def _section(raw: Mapping[str, Any], name: str, *, required: bool = False) -> Mapping[str, Any]:
    value = raw.get(name)
    if value is None:
        if required:
            raise ConfigError(name, None, f"a mapping (the {name} section is required)")
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(name, value, "a mapping")
    return value


def _build(cls, values: Mapping[str, Any], where: str):
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in values:
        if key not in fields:
            raise ConfigError(f"{where}.{key}", values[key], f"one of {sorted(fields)}")
    for key, value in values.items():
        expected = fields[key].type
        if expected in ("int", int) and not (isinstance(value, int) and not isinstance(value, bool)):
            raise ConfigError(f"{where}.{key}", value, "an integer")
        if expected in ("bool", bool) and not isinstance(value, bool):
            raise ConfigError(f"{where}.{key}", value, "true or false")
        if expected in ("str", str) and not isinstance(value, str):
            raise ConfigError(f"{where}.{key}", value, "a string")
    return cls(**values)


def _positive_int(key: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(key, value, "an integer >= 1")
