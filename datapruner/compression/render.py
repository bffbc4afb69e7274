"""From a method's selection to the result: code closure, passage order, rendering, the final cap, the fill.

:func:`finish` is the one way a selection becomes a :class:`CompressionResult`. The rendered text
is re-counted and the lowest-value units are dropped until it fits the cap
(:func:`datapruner.compression.budget.enforce_cap`), so the cap holds whatever a method keeps.
Then whatever budget is left is filled with the best remaining units (by the method's own unit
scores) whose addition still fits the re-counted cap (:func:`fill_rendered`), so every method
uses the whole budget it can.
"""

from __future__ import annotations

import numpy as np

from datapruner.compression.budget import TokenCounter, enforce_cap
from datapruner.compression.item import PASSAGE_JOIN, CompressionItem
from datapruner.compression.result import CompressionResult, KeptUnit
from datapruner.compression.selection import TokenLedger, UnitSelection, fill_in_order, score_order
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


# Code: a unit's weight bounds its cost, but elision markers change with the gaps. Units up to
# this much heavier than the tokens left are still tried by the code fill (each try re-counted).
CODE_FILL_SLACK_TOKENS = 4


def fill_rendered(item: CompressionItem, kept: list[int], text: str, tokens: int, scores: np.ndarray,
                  passage_order: list[int], counter: TokenCounter) -> tuple[list[int], str, int]:
    """Use the budget left after the final cap: visit the units not kept by decreasing score (ties:
    earlier unit first) and add each one whose addition (with its code structure) keeps the
    rendered text within ``item.cap``.

    This is where "fill what is left with the best remaining units that fit" lives for every
    method. Prose costs are exact (:class:`~datapruner.compression.selection.TokenLedger`, joins
    included), so nothing is rendered per try; code is rendered and re-counted per try.

    Returns
    -------
    (kept ids in output order, text, tokens) with ``tokens <= item.cap``.
    """
    cap = int(item.cap)
    rank = {p: r for r, p in enumerate(passage_order)}
    have = np.zeros(item.n_units, dtype=bool)
    have[kept] = True
    order = score_order(scores)
    if item.content != "code":
        ledger = TokenLedger(item, cap, have, passage_order)
        ledger.left = cap - tokens  # the re-counted text is the reference
        keep = fill_in_order(ledger, order)
        if keep.sum() == have.sum():
            return kept, text, tokens
        ids = sorted(np.flatnonzero(keep).tolist(), key=lambda j: (rank[int(item.passage[j])], j))
        new_text = render(item, ids, passage_order)
        new_tokens = counter.count(new_text)
        return (ids, new_text, new_tokens) if new_tokens <= cap else (kept, text, tokens)
    for i in order:
        if have[i] or item.weights[i] > cap - tokens + CODE_FILL_SLACK_TOKENS:
            continue
        trial = close_code(item, have | (np.arange(item.n_units) == i))
        ids = sorted(np.flatnonzero(trial).tolist(), key=lambda j: (rank[int(item.passage[j])], j))
        new_text = render(item, ids, passage_order)
        new_tokens = counter.count(new_text)
        if new_tokens <= cap:
            have, kept, text, tokens = trial, ids, new_text, new_tokens
    return kept, text, tokens


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
    if item.cap is not None:
        kept, text, tokens = fill_rendered(item, kept, text, tokens, selection.scores, passage_order, counter)
    units = [KeptUnit(int(item.passage[i]), int(item.spans[i][0]), int(item.spans[i][1]),
                      float(selection.scores[i]), item.texts[i]) for i in kept]
    return CompressionResult(text=text, units=units, passage_scores=[float(x) for x in selection.passage_scores],
                             tokens_before=item.tokens_before, tokens_after=tokens, method=method, budget=item.cap)
