"""Run configurations: YAML or dict -> a validated config, for both jobs.

* Curation: :func:`load_config` / :func:`config_from_dict` -> :class:`RunConfig`
  (sections ``input``, ``output``, ``scorers``, ``selection``, ``models``, ...).
* Compression: :func:`load_compress_config` / :func:`compress_config_from_dict` ->
  :class:`CompressConfig` (sections ``compress``, ``batch``, ``service``, ``models``).

Both are built the same way: every section is a dataclass, unknown keys and wrong types fail
with a :class:`~datapruner.errors.ConfigError` that names the key, the bad value and the allowed
values, and every value is validated when the config is loaded, before any data is read or any
model loads (scorer, policy and compression method names and their params go through
:mod:`datapruner.registry`). Relative paths inside a config file resolve against the config
file's folder. ``models.threads`` is the one threads setting of every command. The resolved config
is written to the manifest.
"""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from datapruner.curation.dataset import ColumnMap
from datapruner.errors import ConfigError
from datapruner.io.readers import FORMATS
from datapruner.models.loading import BUNDLED_EMBEDDER, BUNDLED_LM
from datapruner.validation import check_number, check_positive_int

ENGINES = ("local", "ray")


# ------------------------------------------------------------------ shared sections


@dataclass
class ThreadsConfig:
    """``models:`` of a compression config: the torch thread count of the process.

    Attributes
    ----------
    threads : torch intra-op threads (an integer >= 1; None keeps torch's default). The same key,
        ``models.threads``, and the same flag, ``--threads``, serve every command; the manifest
        records the value in force.
    """

    threads: int | None = 1


@dataclass
class ModelsConfig(ThreadsConfig):
    """``models:`` of a curation config: the shared backends scorers use, and the thread count.

    Attributes
    ----------
    embedder : sentence embedder, ``"bundled-minilm"`` or a sentence-transformers folder.
    lm : reference causal LM, ``"bundled-smollm2"`` or a Hugging Face folder.
    lm_max_length : tokens the LM scores per text (longer texts are reported as truncated).
    threads : see :class:`ThreadsConfig`.
    """

    embedder: str = BUNDLED_EMBEDDER
    lm: str = BUNDLED_LM
    lm_max_length: int = 512


# ------------------------------------------------------------------ curation


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
    """

    dir: str
    with_scores: bool = False
    shard_rows: int = 100_000
    plots: bool = True


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
        _check_threads(self.models)
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
    _check_sections(raw, _SECTIONS)
    base = base_dir or Path.cwd()

    inp = _section(raw, "input", required=True)
    columns = _build(ColumnMap, inp.get("columns") or {}, "input.columns")
    if "path" not in inp:
        raise ConfigError("input.path", None, "the path of a Parquet/JSONL/CSV file, folder or glob")
    input_cfg = _build(InputConfig, {**inp, "path": _resolve(base, inp["path"]), "columns": columns}, "input")

    outp = dict(_section(raw, "output", required=out is None))
    if out is not None:
        outp["dir"] = out
    elif "dir" not in outp:
        raise ConfigError("output.dir", None, "an output folder (or pass --out)")
    else:
        outp["dir"] = _resolve(base, outp["dir"])
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
    return config_from_dict(_read_yaml(path), base_dir=path.resolve().parent, out=out)


# ------------------------------------------------------------------ compression

BUDGET_KEYS = ("target_tokens", "rate", "threshold")


@dataclass
class CompressSection:
    """``compress:`` the compression method, its options, and the default budget.

    The fields other than the budget are the arguments of
    :class:`datapruner.pipelines.compress.Compressor`; their meanings are documented there.

    Attributes
    ----------
    method : a registered compression method (``datapruner info`` lists them with their params).
    params : the method's own parameters (e.g. ``{temperature: 0.2}`` for mig).
    tokenizer : the tokenizer that counts the budget.
    content : ``"text"`` (sentences) or ``"code"`` (functions, then statements).
    language : the code language when ``content`` is ``"code"``.
    max_unit_tokens : longer units are split at word boundaries.
    reorder : None keeps the passage order; ``"relevance"`` orders passages by score.
    force_keep : ``"numbers"``, ``"entities"`` or regexes whose units are kept first.
    random_state : seed of every random choice.
    target_tokens, rate, threshold : the default budget: a hard cap in tokens, or as a fraction of
        the input tokens (exclusive), or with neither the method's keep threshold. A budget given
        on the command line or in a request replaces it (see :func:`override_budget`).
    """

    method: str = "mig"
    params: dict[str, Any] = field(default_factory=dict)
    tokenizer: str = "bundled-smollm2"
    content: str = "text"
    language: str = "python"
    max_unit_tokens: int = 128
    reorder: str | None = None
    force_keep: list[str] = field(default_factory=list)
    random_state: int = 0
    target_tokens: int | None = None
    rate: float | None = None
    threshold: float | None = None


@dataclass
class BatchConfig:
    """``batch:`` the resumable Parquet job of ``datapruner compress-batch``.

    Attributes
    ----------
    input : Parquet file with a string query column and a list-of-strings passages column.
    out : output folder (``shards/``, ``markers/``, ``job.json``, ``manifest.json``).
    query_column, passages_column : the input columns to read.
    rows_per_shard : rows per streamed shard (the unit of resumption).
    batch_pairs : (query, passages) pairs per batched model call.
    keep_input_columns : copy the input columns to the output.
    overwrite : delete ``out`` first instead of resuming.
    """

    input: str | None = None
    out: str | None = None
    query_column: str = "query"
    passages_column: str = "passages"
    rows_per_shard: int = 256
    batch_pairs: int = 16
    keep_input_columns: bool = True
    overwrite: bool = False


@dataclass
class ServiceConfig:
    """``service:`` the HTTP service of ``datapruner serve``.

    Attributes
    ----------
    host, port : where to listen.
    timeout_s : per-request time limit in seconds (the wait in the queue included).
    max_request_bytes : largest accepted request body.
    max_passages : most passages per request.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    timeout_s: float = 30.0
    max_request_bytes: int = 1_000_000
    max_passages: int = 1000


@dataclass
class CompressConfig:
    """A validated compression config, shared by ``compress``, ``compress-batch`` and ``serve``.

    Attributes
    ----------
    compress : :class:`CompressSection` (method, params, options, default budget).
    batch : :class:`BatchConfig`.
    service : :class:`ServiceConfig`.
    models : :class:`ThreadsConfig` (``models.threads``; each method names its models in params).
    """

    compress: CompressSection = field(default_factory=CompressSection)
    batch: BatchConfig = field(default_factory=BatchConfig)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    models: ThreadsConfig = field(default_factory=ThreadsConfig)

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as plain data."""
        return dataclasses.asdict(self)

    def compressor_options(self) -> dict[str, Any]:
        """Keyword arguments of :class:`datapruner.pipelines.compress.Compressor` (threads included)."""
        options = {k: v for k, v in dataclasses.asdict(self.compress).items() if k not in BUDGET_KEYS}
        return {**options, "threads": self.models.threads}

    def budget(self) -> dict[str, Any]:
        """The default budget: ``{"target_tokens": ..., "rate": ..., "threshold": ...}`` (None = unset)."""
        return {k: getattr(self.compress, k) for k in BUDGET_KEYS}

    def validate(self) -> "CompressConfig":
        """Check the values no other piece checks, before any data is read or any model loads.

        The method name and its params go through :mod:`datapruner.registry` (the method class
        validates its params), the budget through :func:`~datapruner.compression.budget.resolve_budget`
        and the method's threshold check; the other ``compress`` options are checked by the
        :class:`~datapruner.pipelines.compress.Compressor` that every command builds from
        :meth:`compressor_options` right after loading (it loads no model either).

        Raises
        ------
        ConfigError : naming the key, the bad value and what is allowed.
        """
        from datapruner.compression.budget import resolve_budget
        from datapruner.registry import make_compression_method

        c = self.compress
        with _keys_under("compress"):
            method = make_compression_method(c.method, c.params)  # bad name or params fail here
            resolve_budget(1, target_tokens=c.target_tokens, rate=c.rate)
            if c.threshold is not None:
                method.check_threshold(c.threshold)
        b = self.batch
        check_positive_int("batch.rows_per_shard", b.rows_per_shard)
        check_positive_int("batch.batch_pairs", b.batch_pairs)
        s = self.service
        check_number("service.port", s.port, low=1, high=65535)
        check_number("service.timeout_s", s.timeout_s, low=0, low_open=True, hint=" seconds")
        check_positive_int("service.max_request_bytes", s.max_request_bytes)
        check_positive_int("service.max_passages", s.max_passages)
        _check_threads(self.models)
        return self


_COMPRESS_SECTIONS = {"compress": CompressSection, "batch": BatchConfig, "service": ServiceConfig, "models": ThreadsConfig}


def override_budget(configured: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """The one budget-override rule of the CLI and the service.

    A budget given on the command line or in a request (any of ``target_tokens``, ``rate``,
    ``threshold`` that is not None) replaces the configured budget as a whole; with none given,
    the configured budget holds. (``target_tokens`` and ``rate`` exclude each other, and a
    threshold excludes both: the compressor rejects such a budget, naming the keys.)

    Parameters
    ----------
    configured : the config's budget (e.g. :meth:`CompressConfig.budget`).
    given : the flags or request fields; keys other than the budget keys are ignored.

    Returns
    -------
    dict with exactly the keys ``target_tokens``, ``rate``, ``threshold`` (None = unset).
    """
    chosen = {k: given[k] for k in BUDGET_KEYS if given.get(k) is not None}
    source = chosen if chosen else configured
    return {k: source.get(k) for k in BUDGET_KEYS}


def compress_config_from_dict(
    raw: Mapping[str, Any],
    *,
    base_dir: Path | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> CompressConfig:
    """Build and validate a compression config from a mapping (the layout of a YAML config file).

    Parameters
    ----------
    raw : sections ``compress``, ``batch``, ``service``, ``models`` (all optional).
    base_dir : folder that relative ``batch.input`` / ``batch.out`` in `raw` resolve against
        (default: the working directory).
    overrides : ``{section: {key: value}}`` applied on top of `raw` (command-line flags); None
        values are ignored and relative paths resolve against the working directory. In
        ``overrides["compress"]``: a budget replaces the configured one (:func:`override_budget`);
        ``params`` update the configured params, unless ``method`` names another method, whose
        params then start from its defaults.

    Returns
    -------
    CompressConfig, validated.

    Raises
    ------
    ConfigError : an unknown section or key, a wrong type, an unknown method or param, both
        budgets, or any other bad value.
    """
    _check_sections(raw, _COMPRESS_SECTIONS)
    overrides = overrides or {}
    _check_sections(overrides, _COMPRESS_SECTIONS)
    base = base_dir or Path.cwd()
    sections = {}
    for name, cls in _COMPRESS_SECTIONS.items():
        values = dict(_section(raw, name))
        given = {k: v for k, v in _section(overrides, name).items() if v is not None}
        if name == "batch":
            for key in ("input", "out"):
                if values.get(key) is not None:
                    values[key] = _resolve(base, values[key])
                if given.get(key) is not None:
                    given[key] = _resolve(Path.cwd(), given[key])
        merged = _merge_compress(values, given) if name == "compress" else {**values, **given}
        sections[name] = _build(cls, merged, name)
    return CompressConfig(**sections).validate()


def _merge_compress(configured: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """The ``compress`` section with the flags on top (see :func:`compress_config_from_dict`)."""
    merged = {**configured, **override_budget(configured, given)}
    method = configured.get("method", CompressSection.method)
    if given.get("method", method) != method:
        merged.pop("params", None)  # they were the params of the configured method
    if isinstance(given.get("params"), Mapping) and isinstance(merged.get("params"), Mapping):
        given = {**given, "params": {**merged["params"], **given["params"]}}
    merged.update({k: v for k, v in given.items() if k not in BUDGET_KEYS})
    if isinstance(merged.get("force_keep"), str):
        merged["force_keep"] = [merged["force_keep"]]
    return merged


def load_compress_config(
    path: str | Path, *, overrides: Mapping[str, Mapping[str, Any]] | None = None
) -> CompressConfig:
    """Read and validate a compression YAML config (see ``configs/rag-compress.yaml``).

    Layout::

        compress:            # the method, its params, the shared options, the default budget
          method: mig
          params: {temperature: 0.1}
          rate: 0.25         # or target_tokens: 300, or threshold: ...
        batch:               # datapruner compress-batch (paths relative to this file's folder)
          input: data/rows.parquet
          out: out/rag-compress
          rows_per_shard: 256
          batch_pairs: 16
        service:             # datapruner serve
          port: 8000
          timeout_s: 30
        models:
          threads: 1

    Parameters
    ----------
    path : the YAML file.
    overrides : flags applied on top, see :func:`compress_config_from_dict`.

    Returns
    -------
    CompressConfig, validated.

    Raises
    ------
    ConfigError : a missing file, invalid YAML, or any error of :func:`compress_config_from_dict`.
    """
    path = Path(path)
    return compress_config_from_dict(_read_yaml(path), base_dir=path.resolve().parent, overrides=overrides)


def as_compress_config(config: "CompressConfig | Mapping[str, Any] | str | Path | None") -> CompressConfig:
    """A validated :class:`CompressConfig` from any of the forms the compression entry points take.

    Parameters
    ----------
    config : a :class:`CompressConfig` (validated again), its mapping (relative paths resolve
        against the working directory), the path of a YAML file, or None for the defaults.
    """
    if config is None:
        return compress_config_from_dict({})
    if isinstance(config, CompressConfig):
        return config.validate()
    if isinstance(config, Mapping):
        return compress_config_from_dict(config)
    return load_compress_config(config)


# ------------------------------------------------------------------ helpers


def _read_yaml(path: Path) -> Mapping[str, Any]:
    import yaml

    if not path.is_file():
        raise ConfigError("<config file>", str(path), "an existing YAML file")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError("<config file>", str(path), f"valid YAML ({exc})") from None
    return raw or {}


def _resolve(base: Path, p: str) -> str:
    """A path from a config: absolute as given; relative ones against `base` (globs kept as globs)."""
    if Path(p).is_absolute():
        return str(p)
    if any(c in str(p) for c in "*?["):
        return str(base / p)
    return str((base / Path(p).expanduser()).resolve())


def _check_sections(raw: Any, known) -> None:
    if not isinstance(raw, Mapping):
        raise ConfigError("<top level>", type(raw).__name__, f"a mapping of sections ({', '.join(sorted(known))})")
    for key in raw:
        if key not in known:
            raise ConfigError(key, raw[key], f"a known section: {sorted(known)}")


def _check_threads(models: ThreadsConfig) -> None:
    if models.threads is not None:
        check_positive_int("models.threads", models.threads)


@contextmanager
def _keys_under(prefix: str) -> Iterator[None]:
    """Re-raise a ConfigError from a lower layer with its key placed under `prefix`."""
    try:
        yield
    except ConfigError as exc:
        raise ConfigError(f"{prefix}.{exc.key}", exc.value, exc.expected) from None


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
        if expected in ("str | None",) and not (value is None or isinstance(value, str)):
            raise ConfigError(f"{where}.{key}", value, "a string or null")
    return cls(**values)
