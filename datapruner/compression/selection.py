"""What a method hands back for one item, and the shared selection rules.

A method scores the units of an item and decides which to keep (:class:`UnitSelection`). The
rules common to most methods live here once: the exact token ledger of a selection
(:class:`TokenLedger`, separators counted where they fall), the greedy "keep in this order while
it fits" loop (:func:`fill_in_order`), and forced units first then the rest
(:func:`select_in_order`, :func:`select_by_scores`).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from datapruner.compression.item import AFTER_JOIN, AFTER_SEPARATOR, AT_START, CompressionItem


@dataclass(frozen=True)
class UnitSelection:
    """A method's decision for one item.

    Attributes
    ----------
    scores : (n_units,) float, each unit's score (higher = more worth keeping; the scale is the
        method's). The final cap drops the lowest-scored kept units first if the rendered text
        is over the cap.
    passage_scores : (n_passages,) float, relevance of each passage (NaN for a passage without units).
    keep : (n_units,) bool, the units to keep. In budget mode their weights should fit the cap;
        the engine re-counts the rendered text and enforces the cap in any case.
    """

    scores: np.ndarray
    passage_scores: np.ndarray
    keep: np.ndarray


class TokenLedger:
    """The exact rendered tokens of a growing set of kept units, and the tokens left under a cap.

    Prose: a unit costs its :attr:`~datapruner.compression.item.CompressionItem.forms` entry for
    its place (first of the output, first of its passage after a join, or after its passage's
    separator), and adding a unit before a kept one moves that one's place; :meth:`cost` counts
    both, so the ledger's total is the rendered count. Code (elision markers depend on the gaps):
    a unit costs its weight, an upper bound; the engine re-counts the rendered code.

    Every greedy fill of the engine and the methods goes through :meth:`take`. With a fixed visiting
    order and exact costs a larger cap never renders fewer tokens: where runs at caps b and b + 1
    first differ, the larger one takes a unit that leaves it exactly b + 1 tokens.

    Parameters
    ----------
    item : the item.
    capacity : the cap (tokens available to the units of this ledger).
    keep : (n_units,) bool units already kept (counted in the total).
    passage_order : the output order of passages (default: input order).
    """

    def __init__(self, item: CompressionItem, capacity: int, keep: np.ndarray | None = None,
                 passage_order: list[int] | None = None):
        self.item = item
        self.keep = np.zeros(item.n_units, dtype=bool) if keep is None else np.asarray(keep, dtype=bool).copy()
        order = range(len(item.passages)) if passage_order is None else passage_order
        rank = np.empty(max(len(item.passages), 1), dtype=np.int64)
        rank[list(order)] = np.arange(len(item.passages))
        self.position = (rank[item.passage] * (item.n_units + 1) + np.arange(item.n_units)) if item.n_units else np.zeros(0, np.int64)
        self.prose = item.content != "code"
        self.kept_positions = sorted(int(self.position[i]) for i in np.flatnonzero(self.keep))
        self.unit_at = {int(self.position[i]): int(i) for i in range(item.n_units)}
        self.total = self.render_cost()
        self.left = int(capacity) - self.total

    def place_cost(self, unit: int, previous: int | None) -> int:
        """Tokens of `unit` rendered right after `previous` (None: first of the output)."""
        if previous is None:
            col = AT_START
        else:
            col = AFTER_SEPARATOR if self.item.passage[previous] == self.item.passage[unit] else AFTER_JOIN
        return int(self.item.forms[unit, col])

    def render_cost(self) -> int:
        """Tokens of the kept units as rendered (an upper bound for code)."""
        if not self.prose:
            return int(self.item.weights[self.keep].sum())
        units = [self.unit_at[p] for p in self.kept_positions]
        return sum(self.place_cost(u, prev) for u, prev in zip(units, [None, *units[:-1]]))

    def neighbours(self, unit: int) -> tuple[int | None, int | None]:
        """The kept units just before and just after `unit` in the output."""
        at = bisect.bisect_left(self.kept_positions, int(self.position[unit]))
        before = self.unit_at[self.kept_positions[at - 1]] if at > 0 else None
        after = self.unit_at[self.kept_positions[at]] if at < len(self.kept_positions) else None
        return before, after

    def cost(self, unit: int) -> int:
        """Change of the rendered tokens if `unit` is added."""
        if not self.prose:
            return int(self.item.weights[unit])
        before, after = self.neighbours(unit)
        moved = 0 if after is None else self.place_cost(after, unit) - self.place_cost(after, before)
        return self.place_cost(unit, before) + moved

    def take(self, unit: int) -> bool:
        """Add `unit` if it is not kept and fits the tokens left; True when added."""
        if self.keep[unit]:
            return False
        c = self.cost(unit)
        if c > self.left:
            return False
        self.keep[unit] = True
        bisect.insort(self.kept_positions, int(self.position[unit]))
        self.total += c
        self.left -= c
        return True


def fill_in_order(ledger: TokenLedger, order, allowed: np.ndarray | None = None) -> np.ndarray:
    """Visit units in `order` and keep each (allowed) one that fits the ledger; returns the kept mask."""
    for i in order:
        if allowed is None or allowed[i]:
            ledger.take(int(i))
    return ledger.keep.copy()


def score_order(scores: np.ndarray) -> np.ndarray:
    """Units by decreasing score (ties: earlier unit first; NaN last)."""
    s = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)
    return np.lexsort((np.arange(len(s)), -s))


def select_in_order(item: CompressionItem, order, *, allowed: np.ndarray | None = None) -> np.ndarray:
    """Budget mode of an order-based method: the forced units first (in `order`), then every unit
    in `order` while it fits ``item.cap`` (exact token costs, :class:`TokenLedger`).

    Parameters
    ----------
    item : the item (``item.cap`` must be set).
    order : unit ids, best first (a budget-free order: then a larger budget never keeps less).
    allowed : (n_units,) bool, units that may be kept (default: all); forced units outside it are not kept.
    """
    ledger = TokenLedger(item, item.cap)
    forced = item.forced if allowed is None else item.forced & allowed
    fill_in_order(ledger, [i for i in order if forced[i]])
    return fill_in_order(ledger, order, allowed)


def select_by_scores(item: CompressionItem, scores: np.ndarray, *, allowed: np.ndarray | None = None) -> np.ndarray:
    """Budget mode of a score-only method: :func:`select_in_order` by decreasing score."""
    return select_in_order(item, score_order(scores), allowed=allowed)


def passage_max_scores(item: CompressionItem, scores: np.ndarray) -> np.ndarray:
    """Each passage's score as the best score of its units (NaN for a passage without units)."""
    s = np.asarray(scores, dtype=np.float64)
    return np.array([float(s[item.passage == p].max()) if (item.passage == p).any() else float("nan")
                     for p in range(len(item.passages))])


def best_until(scores: np.ndarray, sizes: np.ndarray, limit: float) -> np.ndarray:
    """Coarse selection of groups (passages, chunks): take them by decreasing score (ties: lower
    index first) until the taken sizes sum to at least `limit`; always at least one.

    Returns
    -------
    sorted int array of the taken group indices.
    """
    order = np.lexsort((np.arange(len(scores)), -np.asarray(scores, dtype=np.float64)))
    kept, total = [], 0.0
    for j in order:
        if kept and total >= limit:
            break
        kept.append(int(j))
        total += float(sizes[j])
    return np.array(sorted(kept), dtype=np.int64)
