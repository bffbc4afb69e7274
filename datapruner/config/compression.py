"""The compression config: YAML or dict -> a validated :class:`CompressConfig` (``datapruner compress``,
``compress-batch``, ``serve``), and the one rule by which a given budget replaces the configured one."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from datapruner.errors import ConfigError
from datapruner.validation import check_number, check_positive_int
from datapruner.config.sections import ThreadsConfig, build_section, check_sections, check_threads, keys_under, read_yaml, resolve_path, section

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

    method: str = "fused"
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


COSTLY_METHODS = ("perplexity", "seqlabel", "hybrid")  # service.costly_methods default: methods that run a large model


@dataclass
class ServiceConfig:
    """``service:`` the HTTP service of ``datapruner serve`` (docs/service.md).

    Attributes
    ----------
    host, port : where to listen (127.0.0.1 by default: only this machine can connect).
    timeout_s : per-request deadline in seconds, from arrival: the wait in the queue included. A
        request still queued at its deadline is answered 504 without starting; a running one is
        stopped (its worker process is replaced) and answered 504.
    max_request_bytes : largest accepted request body (413 above).
    max_passages : most passages per request (413 above).
    max_passage_chars : most characters in one passage (413 above).
    max_total_tokens : most tokens in the query and passages together, counted in the budget
        tokenizer (413 above).
    methods : the methods a request may choose with ``"method"``, by name (the allow-list);
        ``compress.method`` is always served and is the default. Empty: only ``compress.method``.
    embedder, lm, seqlabel_model : the models of the served methods, fixed at start-up (a
        bundled name, a folder or a cached hub name; None: each method's default). Each is given
        to every served method with the param ``embedder``, ``lm`` or ``model`` respectively.
        A request can never name a model.
    workers : worker processes (None: the CPU cores this process may use).
    costly_methods : methods that run a large model per unit (perplexity, seqlabel, hybrid);
        they run on their own workers so they cannot starve the others.
    costly_workers : how many of the workers run the costly methods, when both kinds are served
        (None: half of them, at least 1).
    max_queue : requests waiting per kind of method; one more is answered 503 with Retry-After.
    retry_after_s : the ``Retry-After`` seconds of a 503 or 504.
    max_connections : open connections uvicorn accepts; more are answered 503 by uvicorn itself.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    timeout_s: float = 30.0
    max_request_bytes: int = 1_000_000
    max_passages: int = 1000
    max_passage_chars: int = 50_000
    max_total_tokens: int = 32_000
    methods: list[str] = field(default_factory=list)
    embedder: str | None = None
    lm: str | None = None
    seqlabel_model: str | None = None
    workers: int | None = None
    costly_methods: list[str] = field(default_factory=lambda: list(COSTLY_METHODS))
    costly_workers: int | None = None
    max_queue: int = 32
    retry_after_s: int = 1
    max_connections: int = 256


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
        from datapruner.registry import compression_method_names, make_compression_method

        c = self.compress
        with keys_under("compress"):
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
        check_positive_int("service.max_passage_chars", s.max_passage_chars)
        check_positive_int("service.max_total_tokens", s.max_total_tokens)
        check_positive_int("service.max_queue", s.max_queue)
        check_positive_int("service.max_connections", s.max_connections)
        check_positive_int("service.retry_after_s", s.retry_after_s, minimum=0)
        for key in ("workers", "costly_workers"):
            if getattr(s, key) is not None:
                check_positive_int(f"service.{key}", getattr(s, key))
        for key in ("methods", "costly_methods"):
            names = getattr(s, key)
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise ConfigError(f"service.{key}", names, "a list of method names, e.g. [mig, perplexity]")
        for name in s.methods:
            if name not in compression_method_names():
                raise ConfigError("service.methods", name, "registered methods: " + ", ".join(compression_method_names()))
        check_threads(self.models)
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
    check_sections(raw, _COMPRESS_SECTIONS)
    overrides = overrides or {}
    check_sections(overrides, _COMPRESS_SECTIONS)
    base = base_dir or Path.cwd()
    sections = {}
    for name, cls in _COMPRESS_SECTIONS.items():
        values = dict(section(raw, name))
        given = {k: v for k, v in section(overrides, name).items() if v is not None}
        if name == "batch":
            for key in ("input", "out"):
                if values.get(key) is not None:
                    values[key] = resolve_path(base, values[key])
                if given.get(key) is not None:
                    given[key] = resolve_path(Path.cwd(), given[key])
        merged = _merge_compress(values, given) if name == "compress" else {**values, **given}
        sections[name] = build_section(cls, merged, name)
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
        service:             # datapruner serve (docs/service.md)
          port: 8000
          timeout_s: 30
          methods: [mig, perplexity]   # a request may choose one by name
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
    return compress_config_from_dict(read_yaml(path), base_dir=path.resolve().parent, overrides=overrides)


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
