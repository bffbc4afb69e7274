"""The token budget: resolution, knapsack and the final cap check."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from datapruner.compression.budget import TokenCounter, enforce_cap, knapsack, resolve_budget
from datapruner.errors import ConfigError


def _brute_force(weights, values, capacity):
    best = 0.0
    for mask in itertools.product([0, 1], repeat=len(weights)):
        w = sum(x for x, m in zip(weights, mask) if m)
        if w <= capacity:
            best = max(best, sum(v for v, m in zip(values, mask) if m))
    return best


@pytest.mark.parametrize("seed", range(20))
def test_knapsack_dp_is_exact(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 10))
    weights = rng.integers(1, 30, n).tolist()
    values = rng.random(n).round(3).tolist()
    capacity = int(rng.integers(0, 80))
    chosen = knapsack(weights, values, capacity)
    assert np.asarray(weights)[chosen].sum() <= capacity
    assert np.asarray(values)[chosen].sum() == pytest.approx(_brute_force(weights, values, capacity))


def test_knapsack_greedy_respects_capacity_and_beats_half_optimum():
    rng = np.random.default_rng(1)
    weights, values = rng.integers(1, 50, 12).tolist(), rng.random(12).tolist()
    chosen = knapsack(weights, values, 100, exact_cells=0)  # force the greedy path
    assert np.asarray(weights)[chosen].sum() <= 100
    assert np.asarray(values)[chosen].sum() >= 0.5 * _brute_force(weights, values, 100)
    assert not knapsack([5], [1.0], 4).any() and knapsack([0, 3], [0.0, -1.0], 3).tolist() == [True, False]


def test_resolve_budget():
    assert resolve_budget(1000, rate=0.25) == 250
    assert resolve_budget(1000, target_tokens=7) == 7
    assert resolve_budget(1000) is None
    assert resolve_budget(3, rate=0.1) == 0  # floor: the output may be empty, never over the cap
    for bad in ({"rate": 0}, {"rate": 1.5}, {"rate": -0.1}, {"rate": float("nan")}, {"target_tokens": 0},
                {"target_tokens": -3}, {"target_tokens": 2.5}, {"target_tokens": 5, "rate": 0.5}):
        with pytest.raises(ConfigError):
            resolve_budget(100, **bad)


def test_enforce_cap_drops_lowest_value_until_the_joined_text_fits():
    counter = TokenCounter()
    units = ["alpha beta", "gamma", "delta epsilon zeta", "eta"]
    values = [0.9, 0.1, 0.5, 0.7]
    render = lambda ids: " ".join(units[i] for i in ids)  # noqa: E731
    cap = counter.count("alpha beta eta") + 1
    kept, text, tokens = enforce_cap([0, 1, 2, 3], values, render, counter.count, cap)
    assert tokens == counter.count(text) <= cap
    assert 0 in kept and 1 not in kept and 2 not in kept


# The hard cap over generated inputs, for every method: tests/compress/test_method_conformance.py


LEDGER_PASSAGES = ["Dr. Who paid 3.5 EUR for the cat. The dog barked! é中文😀 text? Nobody knows why.",
                   "", "In 1999 the cat was sold in Paris.\n\n1. item\nIt rained.", "lorem ipsum dolor sit amet " * 40]


@pytest.mark.parametrize("passage_order", [None, [3, 2, 1, 0]])
def test_token_ledger_total_is_the_rendered_count_unit_by_unit(passage_order):
    """Adding units one at a time in a random order, the ledger's running total equals the
    tokens of the rendered text after every step (the separators a unit adds, or moves, included)."""
    from datapruner.compression.item import build_item
    from datapruner.compression.render import render
    from datapruner.compression.selection import TokenLedger

    counter = TokenCounter()
    item = build_item("Who paid?", LEDGER_PASSAGES, counter=counter, rate=1.0, max_unit_tokens=16)
    order = passage_order or list(range(len(item.passages)))
    for seed in range(3):
        ledger = TokenLedger(item, 10_000, passage_order=passage_order)
        for i in np.random.default_rng(seed).permutation(item.n_units):
            assert ledger.take(int(i))
            kept = sorted(np.flatnonzero(ledger.keep), key=lambda j: (order.index(int(item.passage[j])), j))
            assert ledger.total == counter.count(render(item, [int(j) for j in kept], order))
        assert ledger.left == 10_000 - ledger.total


def test_token_ledger_refuses_a_unit_that_does_not_fit():
    from datapruner.compression.item import build_item
    from datapruner.compression.selection import TokenLedger

    item = build_item("Who paid?", LEDGER_PASSAGES[:1], counter=TokenCounter(), rate=1.0)
    ledger = TokenLedger(item, int(item.forms[0].min()) - 1)
    assert not ledger.take(0) and ledger.total == 0 and not ledger.keep.any()
