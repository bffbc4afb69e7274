"""D1 (CCS), D2, D3 and D4 on tiny inputs whose answer is worked out by hand in each test."""

from __future__ import annotations

import math

import numpy as np

from datapruner.selection import SelectionContext, make_policy
from datapruner.selection.allocation import class_quotas
from datapruner.selection.coverage import coverage_select, stratum_budgets, strata
from datapruner.selection.d2 import d2_select, knn_graph


def test_ccs_budget_loop_takes_the_smallest_stratum_first():
    # sizes 10, 1, 5 and m = 9: stratum 1 gets min(1, 9 // 3) = 1; stratum 2 min(5, 8 // 2) = 4; stratum 0 min(10, 4 // 1) = 4
    assert stratum_budgets(np.array([10, 1, 5]), 9).tolist() == [4, 1, 4]
    # a capped small stratum passes its unused share on: sizes 1, 1, 10 and m = 9 -> 1, 1, 7
    assert stratum_budgets(np.array([1, 1, 10]), 9).tolist() == [1, 1, 7]


def test_ccs_equal_width_strata_put_the_maximum_in_the_last():
    assert strata(np.array([0.0, 0.1, 0.5, 0.99, 1.0]), 2).tolist() == [0, 0, 1, 1, 1]
    assert strata(np.array([3.0, 3.0]), 4).tolist() == [0, 0]


def test_ccs_cuts_the_hardest_beta_then_samples_every_stratum():
    values = np.arange(10, dtype=float)  # 9 and 8 are the hardest 20 %
    chosen = coverage_select(values, 4, beta=0.2, k=2, rng=np.random.default_rng(0))
    # the remaining range [0, 7] splits into [0, 3.5) and [3.5, 7]: four rows each, two sampled from each
    assert len(chosen) == 4 and not set(chosen) & {8, 9}
    assert sum(c <= 3 for c in chosen) == 2 and sum(4 <= c <= 7 for c in chosen) == 2
    # the cut shrinks to leave the budget: 9 rows of 10 with beta 0.2 drops only the hardest one
    assert sorted(coverage_select(values, 9, beta=0.2, k=3, rng=np.random.default_rng(0))) == list(range(9))


def four_points():
    angles = np.array([0.0, 0.1, 1.5, 3.0])  # A and B close; C nearest to B; D nearest to C
    return np.stack([np.cos(angles), np.sin(angles)], 1).astype(np.float32), angles


def test_d2_knn_graph_on_four_points():
    emb, angles = four_points()
    neighbours, dist = knn_graph(emb, 1)
    assert neighbours[:, 0].tolist() == [1, 0, 1, 2]
    chord = lambda a, b: 2 * math.sin(abs(angles[a] - angles[b]) / 2)  # noqa: E731
    assert np.allclose(dist[:, 0], [chord(0, 1), chord(0, 1), chord(2, 1), chord(3, 2)], atol=1e-5)


def test_d2_forward_then_reverse_message_passing_on_four_points():
    emb, angles = four_points()
    s = np.array([1.0, 0.9, 0.5, 0.0])  # already in [0, 1]
    chord = lambda a, b: 2 * math.sin(abs(angles[a] - angles[b]) / 2)  # noqa: E731
    d_ab, d_cb, d_dc = chord(0, 1), chord(2, 1), chord(3, 2)
    # forward: s'_i = s_i + exp(-d_ij) s_j over i's one neighbour
    fwd = [s[0] + math.exp(-d_ab) * s[1], s[1] + math.exp(-d_ab) * s[0], s[2] + math.exp(-d_cb) * s[1], s[3] + math.exp(-d_dc) * s[2]]
    # reverse: A is taken first (largest s'); its neighbour B drops by exp(-d_ab) s'_A to about 0.08,
    # so C (0.75) comes next, then D (0.13) beats B, which C's message pushed below zero.
    b_after = fwd[1] - math.exp(-d_ab) * fwd[0] - math.exp(-d_cb) * fwd[2]
    assert fwd[2] > fwd[1] - math.exp(-d_ab) * fwd[0] and fwd[3] > b_after
    assert d2_select(s, emb, 4, k=1).tolist() == [0, 2, 3, 1]
    assert d2_select(s, emb, 2, k=1).tolist() == [0, 2]  # plain top-2 by score would keep A and B


def test_d2_beta_cut_removes_the_hardest_before_the_graph():
    emb, _ = four_points()
    assert d2_select(np.array([1.0, 0.9, 0.5, 0.0]), emb, 2, k=1, beta=0.25).tolist()[0] == 1


def test_moderate_keeps_the_distances_nearest_the_median():
    scores = {"d": np.array([1.0, 2.0, 3.0, 4.0, 100.0, 10.0, 20.0, 30.0])}
    labels = np.array([0, 0, 0, 0, 0, 1, 1, 1])
    ctx = SelectionContext(labels=labels)
    keep = make_policy({"policy": "moderate", "score": "d", "keep_n": 2}).select(scores, np.ones(8, bool), context=ctx)
    # global median 7.0: gaps 6, 5, 4, 3, 93, 3, 13, 23 -> rows 3 and 5 (tie at 3: both kept)
    assert np.flatnonzero(keep).tolist() == [3, 5]
    per_class = make_policy({"policy": "moderate", "score": "d", "keep_n": 3, "per_class": True}).select(scores, np.ones(8, bool), context=ctx)
    # quotas 5:3 of 3 rows -> 2 and 1 (largest remainders: 1.875, 1.125); class medians 3 and 20
    assert np.flatnonzero(per_class).tolist() == [1, 2, 6]


def test_moderate_distance_to_the_class_centre_from_embeddings():
    emb = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.6, 0.8]], dtype=np.float32)
    ctx = SelectionContext(labels=np.array([0, 0, 1, 1]), embeddings=lambda: emb)
    keep = make_policy({"policy": "moderate", "keep_n": 2}).select({}, np.ones(4, bool), context=ctx)
    # class 0 centre (0.5, 0.5): both at 0.707; class 1 centre (0.8, 0.4): both at 0.447; median 0.577,
    # every gap 0.13: ties go to the lower rows
    assert np.flatnonzero(keep).tolist() == [0, 1]


def test_class_quotas_proportional_with_one_row_per_class():
    assert class_quotas(np.array([70, 20, 10]), 10).tolist() == [7, 2, 1]
    # shares 9.7, 0.2, 0.1 round to 10, 0, 0; the two empty classes each take one row from class 0
    assert class_quotas(np.array([97, 2, 1]), 10).tolist() == [8, 1, 1]
    # a budget below the number of classes cannot give every class a row
    assert class_quotas(np.array([97, 2, 1]), 2).tolist() == [2, 0, 0]


def test_class_quotas_equal_split_redistributes_what_small_classes_cannot_use():
    # 9 rows over 3 classes: 3 each, but class 0 has 1 row; its 2 go to the others -> 1, 4, 4
    assert class_quotas(np.array([1, 5, 10]), 9, mode="equal").tolist() == [1, 4, 4]
    assert class_quotas(np.array([1, 5, 10]), 16, mode="equal").tolist() == [1, 5, 10]


def test_drop_label_issues_floor_drops_only_the_most_suspicious_flagged_rows():
    flags = np.array([True, True, True, False, True, False, False, False, False, False])
    quality = np.array([0.3, 0.1, 0.9, 0.5, 0.2, 0.6, 0.7, 0.8, 0.4, 0.05])  # row 9 is unflagged: never dropped
    scores = {"is_label_issue": flags, "label_quality": quality}
    everything = np.ones(10, dtype=bool)
    # no floor: every flagged row goes (4 of 10)
    assert np.flatnonzero(~make_policy({"policy": "drop_label_issues"}).select(scores, everything)).tolist() == [0, 1, 2, 4]
    # floor 0.8 of 10 rows: only 2 may go, the two most suspicious flagged ones (quality 0.1, 0.2)
    floored = make_policy({"policy": "drop_label_issues", "min_keep_total": 0.8}).select(scores, everything)
    assert np.flatnonzero(~floored).tolist() == [1, 4]
    # a floor the flags already respect changes nothing
    assert np.flatnonzero(~make_policy({"policy": "drop_label_issues", "min_keep_total": 0.5}).select(scores, everything)).tolist() == [0, 1, 2, 4]
