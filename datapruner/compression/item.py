"""One (query, passages) pair cut into units: what every compression method reads.

:func:`build_item` validates the pair, splits each passage into units (sentences for prose; for
code, statements grouped in chunks with their structure), counts each unit's tokens as it appears
in the output, marks the forced units and resolves the hard cap. Methods never build items; they
read them (see :class:`datapruner.compression.method.CompressionMethod`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from datapruner.compression.budget import TokenCounter, resolve_budget
from datapruner.compression.units import code_units, force_keep_mask, split_long_span, split_sentences
from datapruner.errors import InputDataError

PASSAGE_JOIN = "\n\n"
AFTER_SEPARATOR, AFTER_JOIN, AT_START = 0, 1, 2  # the columns of CompressionItem.forms
CONTENTS = ("text", "code")


@dataclass(frozen=True)
class CompressionItem:
    """One (query, passages) pair cut into ``n`` units, with token weights and the cap.

    Attributes
    ----------
    query : the question or instruction.
    passages : the passage strings.
    content : ``"text"`` (sentence units) or ``"code"`` (statement units in chunks).
    language : the code language (for elision markers); unused for text.
    passage : (n,) int, the passage of each unit.
    spans : ``n`` character spans ``(start, end)`` into the unit's passage.
    texts : the ``n`` unit texts, ``passages[passage[i]][start:end]``.
    weights : (n,) int, the most tokens a unit can cost in the output (:func:`unit_weights`).
    forms : (n, 3) int, a unit's exact tokens in each place it can take in prose output: after
        the separator of its passage (column :data:`AFTER_SEPARATOR`), after a passage join
        (:data:`AFTER_JOIN`) and at the start (:data:`AT_START`); their sum over the kept units is
        the rendered count (:class:`datapruner.compression.selection.TokenLedger`).
    chunk : (n,) int, chunk id: the passage for prose; a function, method, class header or
        module block for code (ids are unique across the item's passages).
    structural : (n,) bool, a code signature or top-level ``return`` (kept whenever its chunk
        keeps anything).
    parent : (n,) int, the chunk that must be kept with this unit's chunk (a method's class
        header), or -1.
    indents : the indentation of each unit's first line (code elision markers).
    forced : (n,) bool, units matching a ``force_keep`` pattern (kept first while they fit).
    tokens_before : tokens of the passages joined by a blank line.
    cap : the hard cap in tokens, or None in threshold mode.
    threshold : the method's keep threshold in threshold mode, else None.
    """

    query: str
    passages: list[str]
    content: str
    language: str
    passage: np.ndarray
    spans: list[tuple[int, int]]
    texts: list[str]
    weights: np.ndarray
    forms: np.ndarray
    chunk: np.ndarray
    structural: np.ndarray
    parent: np.ndarray
    indents: list[str]
    forced: np.ndarray
    tokens_before: int
    cap: int | None
    threshold: float | None

    @property
    def n_units(self) -> int:
        """Number of units."""
        return len(self.texts)

    @property
    def separator(self) -> str:
        """What joins two units of a passage in the output: a newline for code, a space for text."""
        return "\n" if self.content == "code" else " "

    def units_of(self, passage: int) -> np.ndarray:
        """Indices of the units of one passage, in order."""
        return np.flatnonzero(self.passage == passage)


def validate_pair(query, passages) -> list[str]:
    """Check one (query, passages) pair; return the passages as a list.

    Raises
    ------
    InputDataError : the query is not a non-empty string, or passages is not a non-empty list of strings.
    """
    if not isinstance(query, str):
        raise InputDataError(f"query must be a string, got {type(query).__name__}")
    if not query.strip():
        raise InputDataError("query is empty; pass the question or instruction the context should answer")
    if isinstance(passages, str):
        raise InputDataError("passages must be a list of strings, got one string; wrap it: [passage]")
    if passages is None:
        raise InputDataError("passages is None; pass a non-empty list of strings")
    passages = list(passages)
    if not passages:
        raise InputDataError("passages is empty; pass at least one passage to compress")
    for i, p in enumerate(passages):
        if not isinstance(p, str):
            raise InputDataError(f"passages[{i}] must be a string, got {type(p).__name__}")
    return passages


def prose_units(text: str, counter: TokenCounter, max_tokens: int) -> list[tuple[int, int]]:
    """Sentence spans of `text`; a sentence longer than `max_tokens` tokens is split, never truncated."""
    spans = []
    for span in split_sentences(text):
        piece = text[span[0] : span[1]]
        if len(piece) > max_tokens:  # a token covers at least one character: short spans cannot be too long
            offsets = counter.offsets(piece)
            if len(offsets) > max_tokens:
                spans.extend(split_long_span(text, span, offsets, max_tokens))
                continue
        spans.append(span)
    return spans


def unit_forms(counter: TokenCounter, texts: list[str], sep: str) -> np.ndarray:
    """(n, 3) tokens of each unit after `sep`, after a passage join and at the start of the output
    (columns :data:`AFTER_SEPARATOR`, :data:`AFTER_JOIN`, :data:`AT_START`).

    The separators are whitespace and a unit starts and ends with non-whitespace, so the
    tokenizer's pre-tokenisation splits the rendered text at every join: the rendered count of
    prose is the sum of each kept unit's form for its place, exactly (issue 10: counting the joins
    exactly is what makes a larger budget never return less text)."""
    if not texts:
        return np.zeros((0, 3), dtype=np.int64)
    return np.array([counter.count_many([prefix + t for t in texts]) for prefix in (sep, PASSAGE_JOIN, "")],
                    dtype=np.int64).T


def unit_weights(forms: np.ndarray) -> np.ndarray:
    """(n,) the most tokens each unit may cost in the output, whatever its place: an upper bound
    that methods choosing sets by weight (knapsacks, code) sum; the final cap check re-counts."""
    return forms.max(axis=1) if len(forms) else np.zeros(0, dtype=np.int64)


def build_item(
    query: str,
    passages: list[str],
    *,
    counter: TokenCounter,
    content: str = "text",
    language: str = "python",
    max_unit_tokens: int = 128,
    force_keep: list[re.Pattern] | None = None,
    target_tokens: int | None = None,
    rate: float | None = None,
    threshold: float | None = None,
) -> CompressionItem:
    """Cut one pair into units and resolve its cap (see :class:`CompressionItem`).

    Parameters
    ----------
    query, passages : the pair (validated here).
    counter : counts tokens in the budget's tokenizer.
    content, language, max_unit_tokens : how to cut units.
    force_keep : compiled force-keep patterns (:func:`datapruner.compression.units.compile_force_keep`).
    target_tokens, rate : the budget (at most one); with neither the item is in threshold mode.
    threshold : the method's threshold in threshold mode (already validated by the method).
    """
    passages = validate_pair(query, passages)
    pidx, spans, chunk, structural, parent, indents = [], [], [], [], [], []
    chunk_base = 0
    for p, text in enumerate(passages):
        if content == "code":
            cunits = code_units(text, language=language)
            for u in cunits:
                pidx.append(p)
                spans.append(u.span)
                chunk.append(chunk_base + u.chunk)
                structural.append(u.structural)
                parent.append(chunk_base + u.parent if u.parent >= 0 else -1)
                indents.append(u.indent)
            chunk_base += (max(u.chunk for u in cunits) + 1) if cunits else 0
        else:
            for s in prose_units(text, counter, max_unit_tokens):
                pidx.append(p)
                spans.append(s)
                chunk.append(p)
                structural.append(False)
                parent.append(-1)
                indents.append("")
    texts = [passages[p][s:e] for p, (s, e) in zip(pidx, spans)]
    sep = "\n" if content == "code" else " "
    tokens_before = counter.count(PASSAGE_JOIN.join(passages))
    cap = resolve_budget(tokens_before, target_tokens=target_tokens, rate=rate)
    forms = unit_forms(counter, texts, sep)
    return CompressionItem(
        query=query, passages=passages, content=content, language=language,
        passage=np.array(pidx, dtype=np.int64), spans=spans, texts=texts,
        weights=unit_weights(forms), forms=forms,
        chunk=np.array(chunk, dtype=np.int64), structural=np.array(structural, dtype=bool),
        parent=np.array(parent, dtype=np.int64), indents=indents,
        forced=np.array(force_keep_mask(texts, force_keep or []), dtype=bool),
        tokens_before=tokens_before, cap=cap, threshold=None if cap is not None else threshold,
    )
