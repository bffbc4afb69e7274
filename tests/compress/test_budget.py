"""The token budget: resolution, knapsack, and the hard-cap property over arbitrary input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datapruner.compression.budget import TokenCounter, enforce_cap, knapsack, resolve_budget
from datapruner.errors import ConfigError
from datapruner.pipelines.compress import compress


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


unicode_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=400)
passage = st.one_of(
    st.just(""),
    unicode_text,
    st.lists(st.sampled_from(["The cat sat.", "Dr. Who paid 3.5 EUR!", "é中文😀 text?", "1. item\n", "\n\n", "   "]),
             max_size=30).map(" ".join),
    st.integers(200, 1200).map(lambda n: "lorem ipsum dolor sit amet " * n),  # huge, no full stop
)


def _check(result, passages, cap):
    assert result.tokens_after <= cap
    assert result.tokens_after == TokenCounter().count(result.text)
    last = (-1, -1)
    for u in result.units:
        assert passages[u.passage][u.start : u.end] == u.text and u.text.strip()
        assert (u.passage, u.start) > last  # original order, no duplicates
        last = (u.passage, u.start)
    assert result.text == "\n\n".join(
        " ".join(u.text for u in result.units if u.passage == p) for p in sorted({u.passage for u in result.units})
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(passages=st.lists(passage, min_size=1, max_size=5), budget=st.integers(1, 400), method=st.sampled_from(["lead", "random"]))
def test_budget_never_exceeded_baselines(passages, budget, method):
    result = compress("what is it?", passages, method=method, target_tokens=budget)
    _check(result, passages, budget)


@pytest.mark.slow
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(passages=st.lists(passage, min_size=1, max_size=4), rate=st.floats(0.01, 1.0), force=st.booleans())
def test_budget_never_exceeded_mig(passages, rate, force, embedder):
    result = compress("who paid?", passages, method="mig", rate=rate, force_keep=["numbers"] if force else None)
    _check(result, passages, result.budget)
    assert result.budget == int(np.floor(rate * result.tokens_before + 1e-9))
