"""Compress retrieved passages for a query under a hard token budget (METHODS.md, Part B).

    >>> from datapruner import Compressor, compress
    >>> result = compress("Who built the tower?", passages, method="fused", rate=0.25)
    >>> result.text, result.tokens_after <= result.budget
    >>> compressor = Compressor("hybrid", params={"passage_ratio": 3.0})   # validated here, no model loads
    >>> results = compressor.compress_batch(pairs, target_tokens=300)

Flow: query + passages -> units (sentences, or code units) -> one registered method scores and
selects units (``datapruner.scorers.COMPRESSION_METHODS``; the contract is
:class:`datapruner.compression.method.CompressionMethod`) -> rendered text, re-counted so the cap
always holds (:mod:`datapruner.compression.render`).

Budget: ``target_tokens`` (int >= 1) or ``rate`` (0 < rate <= 1 of the input's tokens) is a hard
cap counted in ``tokenizer``. Or ``threshold`` (methods with a threshold mode only): keep units by
the method's score, with no cap. With none of them, a method's default threshold applies if it has
one (seqlabel, hybrid: keep-probability 0.1, as in Provence), else ``rate=0.5`` (as in LLMLingua).
Method-specific options go in ``params`` (docs/compression.md lists them per method).
"""

from __future__ import annotations

import logging
from typing import Any, Iterable

from datapruner.compression.budget import TokenCounter, resolve_budget
from datapruner.compression.item import CONTENTS, build_item, validate_pair
from datapruner.compression.render import REORDERS, finish
from datapruner.compression.result import CompressionResult, KeptUnit
from datapruner.compression.units import compile_force_keep
from datapruner.errors import ConfigError, InputDataError
from datapruner.io.memory import pairs_from_table, table_kind
from datapruner.registry import make_compression_method
from datapruner.validation import check_choice, check_positive_int

__all__ = ["CompressionResult", "Compressor", "KeptUnit", "compress", "compress_batch", "DEFAULT_RATE"]

log = logging.getLogger(__name__)

DEFAULT_RATE = 0.5


class Compressor:
    """A configured compressor: one method with its params and the unit/budget options, validated once.

    Every option is checked at construction (method name, params, options), before any model or
    tokenizer loads; models load on the first call and are shared process-wide. A Compressor may
    be reused across calls and threads.

    Parameters
    ----------
    method : a registered method name (:func:`datapruner.registry.compression_method_names`):
        ``fused`` (the default), ``mig``, ``perplexity``, ``seqlabel``, ``hybrid`` or the baselines ``random``, ``lead``,
        ``bm25``, ``dense``.
    params : the method's parameters (docs/compression.md; the method class's ``params_doc``).
    tokenizer : the tokenizer that counts the budget: ``"bundled-smollm2"`` (default), a folder, or
        a cached hub name (an uncached hub name fails at the first call, offline).
    content : ``"text"`` (sentence units) or ``"code"`` (functions, then statements).
    language : the code language for ``content="code"`` (``"python"`` parses with :mod:`ast`).
    max_unit_tokens : longer sentences are split into pieces of at most this many tokens (>= 4).
    reorder : None keeps the original order; ``"relevance"`` orders passages by passage score.
    force_keep : ``"numbers"``, ``"entities"`` or regexes (a string or a list); matching units are
        kept first, as long as they fit (the cap always wins).
    random_state : seed of the methods that draw random numbers (``random``), an int >= 0.
    threads : torch threads for model work (``datapruner.models.set_threads``); None leaves torch as is.

    Raises
    ------
    ConfigError : an unknown method, a bad parameter (``params.<key>``) or a bad option.
    """

    def __init__(self, method: str = "fused", *, params: dict[str, Any] | None = None,
                 tokenizer: str = "bundled-smollm2", content: str = "text", language: str = "python",
                 max_unit_tokens: int = 128, reorder: str | None = None, force_keep=None,
                 random_state: int = 0, threads: int | None = None):
        self.method = make_compression_method(method, params)
        self.method_name = method
        if not isinstance(tokenizer, str) or not tokenizer:
            raise ConfigError("tokenizer", tokenizer, "a tokenizer name or folder, e.g. 'bundled-smollm2'")
        self.tokenizer = tokenizer
        self.content = check_choice("content", content, CONTENTS)
        if not isinstance(language, str) or not language:
            raise ConfigError("language", language, "a language name, e.g. 'python' or 'javascript'")
        self.language = language
        self.max_unit_tokens = check_positive_int("max_unit_tokens", max_unit_tokens, minimum=4)
        self.reorder = check_choice("reorder", reorder, REORDERS)
        self.force_keep = [force_keep] if isinstance(force_keep, str) else list(force_keep or [])
        self.patterns = compile_force_keep(self.force_keep)
        self.random_state = check_positive_int("random_state", random_state, minimum=0)
        self.threads = None if threads is None else check_positive_int("threads", threads)

    def describe(self) -> dict[str, Any]:
        """The resolved options and method params, JSON-safe (for manifests and ``/healthz``)."""
        return {
            "method": self.method_name, "params": self.method.describe(), "tokenizer": self.tokenizer,
            "content": self.content, "language": self.language, "max_unit_tokens": self.max_unit_tokens,
            "reorder": self.reorder, "force_keep": list(self.force_keep), "random_state": self.random_state,
            "threads": self.threads,
        }

    def budget_mode(self, target_tokens=None, rate=None, threshold=None) -> dict[str, Any]:
        """Resolve one call's budget arguments to ``{target_tokens, rate, threshold}`` (validated).

        A budget (`target_tokens` or `rate`) and a threshold exclude each other; a threshold needs a
        method with a threshold mode; with none of them the method's default threshold applies,
        or else ``rate=0.5``.
        """
        resolve_budget(1, target_tokens=target_tokens, rate=rate)  # range checks before any work
        if threshold is not None:
            if target_tokens is not None or rate is not None:
                raise ConfigError("threshold", threshold, "no threshold when a budget (target_tokens or rate) is given; "
                                  "pass one of them")
            return {"target_tokens": None, "rate": None, "threshold": self.method.check_threshold(threshold)}
        if target_tokens is None and rate is None:
            if self.method.default_threshold is not None:
                return {"target_tokens": None, "rate": None, "threshold": self.method.default_threshold}
            rate = DEFAULT_RATE
        return {"target_tokens": target_tokens, "rate": rate, "threshold": None}

    def compress(self, query: str, passages: list[str], *, target_tokens: int | None = None,
                 rate: float | None = None, threshold: float | None = None) -> CompressionResult:
        """Keep what answers `query` from `passages` (see :class:`Compressor` and :func:`compress`)."""
        mode = self.budget_mode(target_tokens, rate, threshold)
        validate_pair(query, passages)
        return self.run([(query, passages)], mode)[0]

    def compress_batch(self, pairs: Iterable, *, target_tokens: int | None = None, rate: float | None = None,
                       threshold: float | None = None) -> list[CompressionResult]:
        """Compress many ``(query, passages)`` pairs, batching model calls across them.

        `pairs` is an iterable of pairs, or an in-memory table (`datasets.Dataset`, polars or
        pandas DataFrame, `pyarrow.Table`) with a ``query`` column and a ``passages`` column of
        lists of strings, one pair per row (:func:`datapruner.io.memory.pairs_from_table`).

        Returns one :class:`CompressionResult` per pair, in order. A bad pair raises
        :class:`InputDataError` naming its index, before any model work.
        """
        mode = self.budget_mode(target_tokens, rate, threshold)
        pairs = pairs_from_table(pairs) if table_kind(pairs) else list(pairs)  # a table: columns query, passages
        for k, pair in enumerate(pairs):
            try:
                query, passages = pair
            except (TypeError, ValueError):
                raise InputDataError(f"pair {k} must be (query, passages), got {type(pair).__name__}") from None
            try:
                validate_pair(query, passages)
            except InputDataError as exc:
                raise InputDataError(f"pair {k}: {exc}") from None
        return self.run(pairs, mode) if pairs else []

    def run(self, pairs: list, mode: dict[str, Any]) -> list[CompressionResult]:
        """Units, one method call over the batch, then rendering under the cap (inputs already valid)."""
        if self.threads is not None:
            from datapruner.models import set_threads

            set_threads(self.threads)
        counter = TokenCounter(self.tokenizer)
        items = [build_item(q, p, counter=counter, content=self.content, language=self.language,
                            max_unit_tokens=self.max_unit_tokens, force_keep=self.patterns, **mode)
                 for q, p in pairs]
        selections = self.method.select(items, random_state=self.random_state)
        return [finish(it, sel, method=self.method_name, counter=counter, reorder=self.reorder)
                for it, sel in zip(items, selections)]


COMPRESSOR_OPTIONS = ("tokenizer", "content", "language", "max_unit_tokens", "reorder", "force_keep",
                      "random_state", "threads")


def _compressor(method: str, params, options: dict[str, Any]) -> Compressor:
    unknown = sorted(set(options) - set(COMPRESSOR_OPTIONS))
    if unknown:
        raise ConfigError(unknown[0], options[unknown[0]],
                          f"a compress option ({', '.join(COMPRESSOR_OPTIONS)}); method parameters go in "
                          "params={...} (docs/compression.md lists them per method)")
    return Compressor(method, params=params, **options)


def compress(query: str, passages: list[str], *, method: str = "fused", target_tokens: int | None = None,
             rate: float | None = None, threshold: float | None = None, params: dict[str, Any] | None = None,
             **options) -> CompressionResult:
    """Keep what answers `query` from `passages` under a hard token budget.

    Parameters
    ----------
    query : the question or instruction (non-empty).
    passages : list of passage strings (empty strings are allowed and contribute nothing).
    method : a registered method (``fused``, the default; ``mig``, ``perplexity``, ``seqlabel``, ``hybrid``, ``random``,
        ``lead``, ``bm25``, ``dense``).
    target_tokens : hard cap in tokens (int >= 1).
    rate : hard cap as a fraction of the input tokens, in (0, 1]; 0.25 is a 4x reduction.
    threshold : no cap; the method's keep threshold (methods with a threshold mode: seqlabel and
        hybrid, mean keep-probability, default 0.1; mig, minimum MMR score; perplexity, minimum
        normalised block value). A budget-only method given a threshold raises.
    params : the method's parameters (docs/compression.md).
    **options : the keyword options of :class:`Compressor` (``tokenizer``, ``content``,
        ``language``, ``max_unit_tokens``, ``reorder``, ``force_keep``, ``random_state``, ``threads``).

    Returns
    -------
    CompressionResult

    Raises
    ------
    InputDataError : empty query, no passages, a passage that is not a string.
    ConfigError : unknown method or option, a bad parameter, budget <= 0, rate outside (0, 1], both
        budgets, a budget and a threshold, a threshold for a budget-only method.
    ModelLoadError : the tokenizer or a model cannot be loaded offline.
    """
    compressor = _compressor(method, params, options)
    return compressor.compress(query, passages, target_tokens=target_tokens, rate=rate, threshold=threshold)


def compress_batch(pairs: Iterable, *, method: str = "fused", target_tokens: int | None = None,
                   rate: float | None = None, threshold: float | None = None,
                   params: dict[str, Any] | None = None, **options) -> list[CompressionResult]:
    """:func:`compress` for many ``(query, passages)`` pairs, batching model calls across them.

    Takes the same arguments as :func:`compress` and returns one :class:`CompressionResult` per
    pair, in order. A bad pair raises (naming its index) before any model work.
    """
    compressor = _compressor(method, params, options)
    return compressor.compress_batch(pairs, target_tokens=target_tokens, rate=rate, threshold=threshold)
