"""Token budgets: counting, resolving `target_tokens` / `rate`, 0/1 knapsack, and the final cap check.

The budget is a hard cap counted in a named tokenizer (default: the bundled SmolLM2 tokenizer).
Unit token counts are only estimates of what the joined output costs (a tokenizer can merge
characters across a join), so :func:`enforce_cap` re-counts the rendered output and drops the
lowest-value units until the count is within the cap. The cap therefore holds for any input.
"""

from __future__ import annotations

import logging
import math
from typing import Callable, Sequence

import numpy as np

from datapruner.errors import ConfigError

log = logging.getLogger(__name__)

# Exact DP when n_items * capacity is at most this many cells; greedy by value/weight above it.
EXACT_KNAPSACK_CELLS = 2_000_000


class TokenCounter:
    """Count tokens of texts in a Hugging Face tokenizer, without special tokens.

    Parameters
    ----------
    tokenizer : ``"bundled-smollm2"`` (default), a tokenizer folder, or a cached hub name. A hub
        name that is not cached fails at once with :class:`~datapruner.errors.ModelLoadError`.
    """

    def __init__(self, tokenizer: str = "bundled-smollm2"):
        from datapruner.models import load_tokenizer

        self.name = tokenizer
        self.tokenizer = load_tokenizer(tokenizer)

    def count(self, text: str) -> int:
        """Number of tokens of `text` (0 for the empty string)."""
        if not text:
            return 0
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def count_many(self, texts: Sequence[str]) -> list[int]:
        """Token counts of many texts in one tokenizer call."""
        texts = list(texts)
        if not texts:
            return []
        ids = self.tokenizer([t if t else " " for t in texts], add_special_tokens=False)["input_ids"]
        return [len(x) if t else 0 for x, t in zip(ids, texts)]

    def offsets(self, text: str) -> list[tuple[int, int]]:
        """Character offsets of each token of `text` (for splitting units that are too long)."""
        if not text:
            return []
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return [tuple(o) for o in enc["offset_mapping"]]


def resolve_budget(tokens_before: int, *, target_tokens: int | None = None, rate: float | None = None) -> int | None:
    """Turn `target_tokens` or `rate` into a hard cap in tokens (None when neither is given).

    Parameters
    ----------
    tokens_before : tokens of the uncompressed context.
    target_tokens : the cap itself; an int >= 1.
    rate : a fraction in (0, 1]; the cap is ``floor(rate * tokens_before)``.

    Raises
    ------
    ConfigError : a value is out of range, of the wrong type, or both are given.
    """
    if target_tokens is not None and rate is not None:
        raise ConfigError("target_tokens/rate", (target_tokens, rate), "only one of target_tokens or rate, not both")
    if target_tokens is not None:
        if isinstance(target_tokens, bool) or not isinstance(target_tokens, (int, np.integer)):
            raise ConfigError("target_tokens", target_tokens, "an integer number of tokens >= 1")
        if target_tokens <= 0:
            raise ConfigError("target_tokens", target_tokens, "an integer >= 1 (a budget of 0 or below keeps nothing)")
        return int(target_tokens)
    if rate is not None:
        if isinstance(rate, bool) or not isinstance(rate, (int, float, np.floating, np.integer)) or not math.isfinite(rate):
            raise ConfigError("rate", rate, "a number in (0, 1], e.g. 0.25 for a 4x reduction")
        if not 0 < rate <= 1:
            raise ConfigError("rate", rate, "a number in (0, 1], e.g. 0.25 for a 4x reduction")
        return int(math.floor(rate * tokens_before + 1e-9))
    return None


def knapsack(weights: Sequence[int], values: Sequence[float], capacity: int, *, exact_cells: int = EXACT_KNAPSACK_CELLS) -> np.ndarray:
    """0/1 knapsack: choose items of maximum total value with total weight <= `capacity`.

    Parameters
    ----------
    weights : (n,) non-negative integer weights (tokens).
    values : (n,) values; items with value <= 0 are never chosen unless their weight is 0.
    capacity : the cap (>= 0).
    exact_cells : use the exact dynamic programme when ``n * capacity`` is at most this; above it,
        greedy by value/weight (ties by lower index), then compared with the best single item that
        fits (the classic 1/2-approximation).

    Returns
    -------
    (n,) bool mask of chosen items. Total chosen weight never exceeds `capacity`.
    """
    w = np.asarray(weights, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    n = len(w)
    chosen = np.zeros(n, dtype=bool)
    if n == 0 or capacity < 0:
        return chosen
    v = np.where(np.isfinite(v), v, 0.0)
    free = (w <= 0) & (v >= 0)
    chosen[free] = True
    cand = np.flatnonzero(~free & (v > 0) & (w <= capacity))
    if len(cand) == 0 or capacity == 0:
        return chosen
    if len(cand) * capacity <= exact_cells:
        cw, cv = w[cand], v[cand]
        best = np.zeros(capacity + 1)
        take = np.zeros((len(cand), capacity + 1), dtype=bool)
        for i in range(len(cand)):
            wi = int(cw[i])
            if wi > capacity:
                continue
            with_item = best[: capacity + 1 - wi] + cv[i]
            better = with_item > best[wi:] + 1e-12
            take[i, wi:] = better
            best[wi:] = np.where(better, with_item, best[wi:])
        c = capacity
        for i in range(len(cand) - 1, -1, -1):
            if take[i, c]:
                chosen[cand[i]] = True
                c -= int(cw[i])
        return chosen
    ratio = v[cand] / w[cand]
    order = cand[np.lexsort((cand, -ratio))]
    left, greedy_value = capacity, 0.0
    greedy = []
    for i in order:
        if w[i] <= left:
            greedy.append(i)
            left -= w[i]
            greedy_value += v[i]
    single = cand[np.argmax(v[cand])]
    if v[single] > greedy_value:
        chosen[single] = True
    else:
        chosen[greedy] = True
    return chosen


def select_forced(weights: Sequence[int], scores: Sequence[float], forced: Sequence[bool], capacity: int | None) -> tuple[np.ndarray, int | None]:
    """Take forced units first, best score first, while they fit; return (mask, capacity left)."""
    w = np.asarray(weights, dtype=np.int64)
    mask = np.zeros(len(w), dtype=bool)
    idx = np.flatnonzero(np.asarray(forced, dtype=bool))
    if capacity is None:
        mask[idx] = True
        return mask, None
    left = capacity
    s = np.asarray(scores, dtype=np.float64)
    for i in idx[np.lexsort((idx, -np.nan_to_num(s[idx], nan=-np.inf)))]:
        if w[i] <= left:
            mask[i] = True
            left -= int(w[i])
    return mask, left


def enforce_cap(
    kept: list[int],
    values: Sequence[float],
    render: Callable[[list[int]], str],
    count: Callable[[str], int],
    cap: int | None,
    *,
    dependents: Callable[[int], set[int]] | None = None,
) -> tuple[list[int], str, int]:
    """Re-count the rendered output and drop the lowest-value units until it fits the cap.

    Parameters
    ----------
    kept : indices of the chosen units, in output order.
    values : value of every unit (indexed by unit id); the lowest-valued kept unit goes first.
    render : builds the output text from a list of kept unit ids (joins, markers...).
    count : token counter of a text.
    cap : the hard cap, or None for no cap.
    dependents : units that must go whenever a given unit goes (a code signature takes its
        function's body with it); None when units are independent.

    Returns
    -------
    (kept ids, text, tokens) with ``tokens <= cap`` whenever a cap is given (the empty output has
    0 tokens, so the loop always ends).
    """
    kept = list(kept)
    text = render(kept)
    tokens = count(text)
    if cap is None:
        return kept, text, tokens
    dropped = 0
    while tokens > cap and kept:
        worst = kept[min(range(len(kept)), key=lambda j: (values[kept[j]], -j))]
        gone = {worst} | (dependents(worst) if dependents else set())
        kept = [i for i in kept if i not in gone]
        dropped += 1
        text = render(kept)
        tokens = count(text)
    if dropped:
        log.debug("dropped %d unit(s) after re-counting the joined output", dropped)
    if tokens > cap:  # only possible if render adds text for an empty selection
        text, tokens, kept = "", 0, []
    return kept, text, tokens
