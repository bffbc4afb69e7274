"""From a method's selection to the result: code closure, passage order, rendering, the final cap.

:func:`finish` is the one way a selection becomes a :class:`CompressionResult`. The rendered text
is re-counted and the lowest-value units are dropped until it fits the cap
(:func:`datapruner.compression.budget.enforce_cap`), so the cap holds whatever a method keeps.
"""

from __future__ import annotations

import numpy as np

from datapruner.compression.budget import TokenCounter, enforce_cap
from datapruner.compression.item import PASSAGE_JOIN, CompressionItem
from datapruner.compression.result import CompressionResult, KeptUnit
from datapruner.compression.selection import UnitSelection
from datapruner.compression.units import comment_prefix

REORDERS = (None, "relevance")


def drop_values(item: CompressionItem, scores: np.ndarray) -> np.ndarray:
    """Priority for the final cap (the lowest is dropped first): code structure, then forced
    units, then the method's score rank."""
    n = item.n_units
    ranks = np.zeros(n)
    if n:
        s = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)
        ranks[np.argsort(s, kind="stable")] = np.arange(n) / max(n, 1)
    values = ranks + item.forced * 1.0 + item.structural * 2.0
    headers = np.isin(item.chunk, item.parent[item.parent >= 0]) & item.structural
    return values + headers * 1.0


def close_code(item: CompressionItem, keep: np.ndarray) -> np.ndarray:
    """Code: a kept unit brings its chunk's signature/returns and its class header. Returns a new mask."""
    keep = np.asarray(keep, dtype=bool).copy()
    if not keep.any():
        return keep
    chunks = set(item.chunk[keep].tolist())
    while True:
        parents = {int(p) for p in item.parent[np.isin(item.chunk, list(chunks))] if p >= 0}
        if parents <= chunks:
            break
        chunks |= parents
    return keep | (np.isin(item.chunk, list(chunks)) & item.structural)


def code_dependents(item: CompressionItem, unit: int) -> set[int]:
    """Dropping a chunk's header (its first, structural unit) drops the chunk and its child chunks."""
    chunk = int(item.chunk[unit])
    first = int(np.flatnonzero(item.chunk == chunk)[0])
    if unit != first or not item.structural[unit]:
        return set()
    chunks, frontier = {chunk}, {chunk}
    while frontier:
        frontier = {int(c) for c in np.unique(item.chunk[np.isin(item.parent, list(frontier))])} - chunks
        chunks |= frontier
    return set(np.flatnonzero(np.isin(item.chunk, list(chunks))).tolist())


def render(item: CompressionItem, kept: list[int], passage_order: list[int]) -> str:
    """The output text of the kept units: prose units joined by a space, passages by a blank line;
    code keeps its lines and marks each elided run with a comment (``...`` where a Python body
    would otherwise be empty)."""
    kept_set = set(kept)
    parts = []
    if item.content != "code":
        for p in passage_order:
            texts = [item.texts[i] for i in kept if item.passage[i] == p]
            if texts:
                parts.append(" ".join(texts))
        return PASSAGE_JOIN.join(parts)
    prefix = comment_prefix(item.language)
    python = item.language.lower() == "python"
    for p in passage_order:
        members = item.units_of(p)
        if not any(i in kept_set for i in members):
            continue
        lines, gap = [], []
        prev = None

        def flush(next_unit):
            if not gap:
                return
            first = gap[0]
            n_lines = sum(item.texts[i].count("\n") + 1 for i in gap)
            indent = item.indents[first]
            opens = prev is not None and len(item.indents[prev]) < len(indent)
            closes = next_unit is None or len(item.indents[next_unit]) < len(indent)
            if python and opens and closes:
                lines.append(f"{indent}...  {prefix} {n_lines} lines elided")
            else:
                lines.append(f"{indent}{prefix} ... {n_lines} lines elided")
            gap.clear()

        for i in members:
            if i in kept_set:
                flush(i)
                lines.append(item.texts[i])
                prev = i
            else:
                gap.append(i)
        flush(None)
        parts.append("\n".join(lines))
    return PASSAGE_JOIN.join(parts)


def finish(item: CompressionItem, selection: UnitSelection, *, method: str, counter: TokenCounter,
           reorder: str | None = None) -> CompressionResult:
    """Turn a method's selection into the result, enforcing the cap on the rendered text.

    Parameters
    ----------
    item : the item the selection is for.
    selection : the method's scores and keep mask.
    method : the method's name (recorded in the result).
    counter : the budget's token counter.
    reorder : None keeps the passage order; ``"relevance"`` orders passages by passage score.
    """
    keep = np.asarray(selection.keep, dtype=bool)
    if item.content == "code":
        keep = close_code(item, keep)
    passage_scores = np.nan_to_num(np.asarray(selection.passage_scores, dtype=np.float64), nan=-np.inf)
    if reorder == "relevance":
        passage_order = [int(p) for p in np.lexsort((np.arange(len(item.passages)), -passage_scores))]
    else:
        passage_order = list(range(len(item.passages)))
    rank = {p: r for r, p in enumerate(passage_order)}
    kept = sorted(np.flatnonzero(keep).tolist(), key=lambda i: (rank[int(item.passage[i])], i))
    dependents = (lambda i: code_dependents(item, i)) if item.content == "code" else None
    kept, text, tokens = enforce_cap(kept, drop_values(item, selection.scores),
                                     lambda ids: render(item, ids, passage_order), counter.count, item.cap,
                                     dependents=dependents)
    units = [KeptUnit(int(item.passage[i]), int(item.spans[i][0]), int(item.spans[i][1]),
                      float(selection.scores[i]), item.texts[i]) for i in kept]
    return CompressionResult(text=text, units=units, passage_scores=[float(x) for x in selection.passage_scores],
                             tokens_before=item.tokens_before, tokens_after=tokens, method=method, budget=item.cap)
