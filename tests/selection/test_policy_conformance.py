"""Every registered selection policy through one contract: determinism, exact budgets, a reason on
every dropped row, bad parameters rejected when the config is loaded."""

from __future__ import annotations

import numpy as np
import pytest

from datapruner.config import config_from_dict
from datapruner.errors import ConfigError
from datapruner.selection import CATALOG, KEPT, apply_policies, make_policy
from datapruner.selection.base import count_for

# policy -> its parameters without a budget; budgeted policies get keep / keep_total / keep_n added
SPECS = {
    "top_fraction": {"score": "el2n", "offset": 0.05},
    "band": {"score": "el2n", "band": "middle"},
    "threshold": {"score": "el2n", "max": 0.9},
    "drop_flagged": {"score": "hard_flag"},
    "quadrants": {},
    "drop_label_issues": {"score": "hard_flag"},
    "cluster_quota": {"cluster": "label_class", "weight": "uniform_weight", "score": "el2n"},
    "prototypes": {"score": "centre_distance", "prefer": "easy"},
    "coverage": {"score": "el2n"},
    "d2": {"score": "el2n"},
    "moderate": {},
}
BUDGETED = [name for name in CATALOG if name not in ("threshold", "drop_flagged", "drop_label_issues")]


def run(inputs, specs, *, random_state=0, invalid_every=5):
    """apply_policies over the sample with every `invalid_every`-th row invalid (so keep and keep_total differ)."""
    valid = np.arange(inputs.n) % invalid_every != 0
    invalid_reason = np.where(valid, "", "empty text").astype(object)
    return apply_policies([make_policy(s) for s in specs], dict(inputs.scores), valid=valid, invalid_reason=invalid_reason,
                          context=inputs.context(random_state))


def test_every_policy_has_a_spec():
    assert set(SPECS) == set(CATALOG), "add the new policy to SPECS so the contract covers it"


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_deterministic_and_every_dropped_row_has_its_reason(name, policy_inputs):
    spec = {"policy": name, **SPECS[name], **({"keep": 0.3} if name in BUDGETED else {})}
    keep_a, reason_a = run(policy_inputs, [spec])
    keep_b, reason_b = run(policy_inputs, [dict(spec)])  # a second, separately built policy
    assert np.array_equal(keep_a, keep_b) and np.array_equal(reason_a, reason_b)
    assert 0 < keep_a.sum() < policy_inputs.n
    dropped = reason_a[~keep_a]
    own = np.array([r.startswith(f"{name}(") for r in dropped])
    invalid = np.array([r.startswith("invalid:") for r in dropped])
    assert np.all(own | invalid) and own.any()
    assert np.all(reason_a[keep_a] == KEPT)


def test_reasons_share_one_str_per_distinct_reason(policy_inputs):
    """The reason column holds pointers to a few str objects, not one object per row (~60 B each at 10M rows)."""
    keep, reason = run(policy_inputs, [{"policy": "top_fraction", "score": "el2n", "keep": 0.5}])
    assert len({id(r) for r in reason}) == len(set(reason.tolist()))
    assert len(set(reason.tolist())) == 3 and keep.sum() > 0  # kept, the policy's reason, invalid:empty text


@pytest.mark.parametrize("name", BUDGETED)
@pytest.mark.parametrize("budget", [("keep", 0.3), ("keep_total", 0.2), ("keep_n", 37)])
def test_exact_row_counts(name, budget, policy_inputs):
    kind, value = budget
    keep, _ = run(policy_inputs, [{"policy": name, **SPECS[name], kind: value}])
    n_valid = int((np.arange(policy_inputs.n) % 5 != 0).sum())
    expected = {"keep": count_for(0.3, n_valid), "keep_total": count_for(0.2, policy_inputs.n), "keep_n": 37}[kind]
    assert keep.sum() == expected


@pytest.mark.parametrize("name", [n for n in BUDGETED if n not in ("quadrants", "cluster_quota")])
def test_per_class_quotas_cover_every_class(name, policy_inputs):
    keep, _ = run(policy_inputs, [{"policy": name, **SPECS[name], "keep_total": 0.1, "per_class": True}], invalid_every=10**9)
    per_class = np.bincount(policy_inputs.labels[keep], minlength=77)
    assert keep.sum() == count_for(0.1, policy_inputs.n) and per_class.min() >= 1
    sizes = np.bincount(policy_inputs.labels, minlength=77)
    equal, _ = run(policy_inputs, [{"policy": name, **SPECS[name], "keep_n": 154, "per_class": "equal"}], invalid_every=10**9)
    # 154 = 2 per class; one class has a single row, so its unused share goes to exactly one other class
    extra = np.bincount(policy_inputs.labels[equal], minlength=77) - np.minimum(sizes, 2)
    assert sizes.min() == 1 and extra.min() == 0 and extra.sum() == 1


@pytest.mark.parametrize("name", ["top_fraction", "coverage", "d2"])
def test_direction_low_ranks_the_negated_score(name, policy_inputs):
    inputs = policy_inputs
    inputs.scores["neg_el2n"] = -inputs.scores["el2n"]
    low, _ = run(inputs, [{"policy": name, **SPECS[name], "keep": 0.2, "direction": "low"}])
    high, _ = run(inputs, [{"policy": name, **{**SPECS[name], "score": "neg_el2n"}, "keep": 0.2, "direction": "high"}])
    assert np.array_equal(low, high)
    plain, _ = run(inputs, [{"policy": name, **SPECS[name], "keep": 0.2}])
    assert not np.array_equal(low, plain)


BAD = [
    ({"policy": "coverage", "score": "el2n", "keep": 0.3, "keep_n": 10}, r"selection\[coverage\]\.keep_n.*exactly one of keep"),
    ({"policy": "d2", "score": "el2n"}, r"selection\[d2\]\.keep.*exactly one of keep"),
    ({"policy": "moderate", "keep_n": 0}, r"selection\[moderate\]\.keep_n.*>= 1"),
    ({"policy": "moderate", "keep_n": 2.5}, r"selection\[moderate\]\.keep_n.*integer"),
    ({"policy": "top_fraction", "score": "el2n", "keep_total": 1.5}, r"selection\[top_fraction\]\.keep_total.*\(0, 1\]"),
    ({"policy": "band", "score": "el2n", "keep": 0.5, "per_class": "yes"}, r"selection\[band\]\.per_class.*'equal'"),
    ({"policy": "coverage", "score": "el2n", "keep": 0.5, "beta": 1.0}, r"selection\[coverage\]\.beta.*\[0, 1\)"),
    ({"policy": "coverage", "score": "el2n", "keep": 0.5, "strata": 0}, r"selection\[coverage\]\.strata.*>= 1"),
    ({"policy": "d2", "score": "el2n", "keep": 0.5, "gamma_reverse": 0}, r"selection\[d2\]\.gamma_reverse"),
    ({"policy": "d2", "score": "el2n", "keep": 0.5, "knn": 5}, r"selection\[d2\]\.knn.*one of"),
    ({"policy": "quadrants", "keep": 0.5, "keep_total": 0.5}, r"selection\[quadrants\]\.keep_total.*exactly one"),
    ({"policy": "cluster_quota", "keep_n": -3}, r"selection\[cluster_quota\]\.keep_n"),
]


@pytest.mark.parametrize("spec,message", BAD, ids=[m.split("\\")[1].strip("[]") + "-" + str(i) for i, (_, m) in enumerate(BAD)])
def test_bad_params_rejected_at_config_load(spec, message, tmp_path):
    raw = {
        "input": {"path": str(tmp_path / "never-read.parquet"), "columns": {"text": "text", "label": "label"}},
        "output": {"dir": str(tmp_path / "out")},
        "scorers": [{"name": "el2n"}],
        "selection": [spec],
    }
    with pytest.raises(ConfigError, match=message):
        config_from_dict(raw)
