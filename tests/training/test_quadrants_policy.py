"""The EU-quadrant rules on handmade planes: bisection, budget, quadrant semantics, top-up, audit."""

from __future__ import annotations

import numpy as np
import pytest

from datapruner.errors import ConfigError, InputDataError
from datapruner.selection import apply_policies, make_policy
from datapruner.selection.quadrants import BISECTION_STEPS, MAX_BAND, assign_quadrants, eu_quadrants


def _plane(n: int = 400, random_state: int = 0):
    rng = np.random.default_rng(random_state)
    return rng.uniform(size=n), rng.uniform(size=n)


def test_quadrants_follow_the_quantile_bands():
    e, u = _plane()
    r = eu_quadrants(e, u, keep=0.3)
    assert 0.0 <= r.a <= MAX_BAND and r.a == r.b
    (e_lo, e_hi), (u_lo, u_hi) = r.error_bounds, r.uncertainty_bounds
    np.testing.assert_allclose([e_lo, e_hi], np.quantile(e, [r.a, 1 - r.a]))
    np.testing.assert_allclose([u_lo, u_hi], np.quantile(u, [r.b, 1 - r.b]))
    q = r.quadrant
    assert np.all((e[q == "Q1"] >= e_hi) & (u[q == "Q1"] >= u_hi))
    assert np.all((e[q == "Q2"] >= e_hi) & (u[q == "Q2"] <= u_lo))
    assert np.all((e[q == "Q3"] <= e_lo) & (u[q == "Q3"] <= u_lo))
    assert np.all((e[q == "Q4"] <= e_lo) & (u[q == "Q4"] >= u_hi))
    # independent uniform E and U: Q2 + Q4 alone meet a 30% budget, nothing is topped up
    assert r.keep.sum() == 120 and not r.topped_up.any()
    assert set(q[r.keep]) <= {"Q2", "Q4"}
    assert not r.keep[np.isin(q, ["Q1", "Q3", "unassigned"])].any()


def test_bisection_finds_the_widest_band_within_budget():
    e, u = _plane(1000, random_state=1)
    r = eu_quadrants(e, u, keep=0.2)
    kept_at = lambda t: int(np.isin(assign_quadrants(e, u, t)[0], ["Q2", "Q4"]).sum())
    assert kept_at(r.a) <= 200 < kept_at(r.a + MAX_BAND / 2**BISECTION_STEPS + 1e-9)


def test_top_up_from_q1_and_q3_by_disagreement_when_q2_q4_are_too_few():
    # E and U perfectly correlated: Q2 and Q4 are empty, every kept row is a top-up
    rng = np.random.default_rng(2)
    e = rng.uniform(size=300)
    u = e + rng.normal(scale=0.05, size=300)
    r = eu_quadrants(e, u, keep=0.4)
    assert r.keep.sum() == 120 and r.topped_up.sum() == 120 - np.isin(r.quadrant[r.keep], ["Q2", "Q4"]).sum()
    p = (e - e.min()) / (e.max() - e.min())
    h = (u - u.min()) / (u.max() - u.min())
    disagreement = np.abs(p - h)
    pool = np.isin(r.quadrant, ["Q1", "Q3"])
    topped = r.topped_up & pool
    assert disagreement[topped].min() >= disagreement[pool & ~r.keep].max()


def test_keep_everything_and_bad_input():
    e, u = _plane(50)
    assert eu_quadrants(e, u, keep=1.0).keep.all()
    with pytest.raises(ConfigError, match="keep"):
        eu_quadrants(e, u, keep=0.0)
    with pytest.raises(InputDataError, match="finite"):
        eu_quadrants(np.r_[e[:-1], np.nan], u, keep=0.5)
    with pytest.raises(InputDataError, match="one length"):
        eu_quadrants(e, u[:10], keep=0.5)


def test_policy_chain_records_quadrants_and_reasons():
    e, u = _plane(200, random_state=3)
    flags = np.zeros(200, dtype=object)
    flags[:] = False
    flags[:20] = True
    scores = {"eu_error": e, "eu_uncertainty": u, "is_label_issue": flags, "eu_pruned_response": np.array([f"r{i}" for i in range(200)], dtype=object)}
    valid = np.ones(200, dtype=bool)
    valid[-1] = False
    policies = [make_policy({"policy": "drop_label_issues"}), make_policy({"policy": "quadrants", "keep": 0.5})]
    keep, reason = apply_policies(policies, scores, valid=valid, invalid_reason=np.where(valid, "", "empty_text").astype(object))
    assert set(reason[:20]) == {"drop_label_issues()"}
    survivors = np.arange(20, 199)
    assert keep.sum() == round(0.5 * len(survivors))
    assert set(reason[survivors][~keep[survivors]]) == {"quadrants(keep=0.5)"}
    quadrant = scores["quadrant"]
    assert all(v is None for v in quadrant[:20]) and quadrant[-1] is None
    assert set(quadrant[survivors]) <= {"Q1", "Q2", "Q3", "Q4", "unassigned"}
    pruned = scores["q2_pruned_response"]
    q2_kept = keep & (quadrant == "Q2")
    assert q2_kept.any() and all(pruned[i] == f"r{i}" for i in np.flatnonzero(q2_kept))
    assert all(v is None for v in pruned[~q2_kept])
    with pytest.raises(ConfigError, match="keep"):
        make_policy({"policy": "quadrants"})
