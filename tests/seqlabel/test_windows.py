"""Window planning, token-to-unit mapping, threshold decisions and label construction (no model)."""

from __future__ import annotations

import numpy as np
import pytest

from datapruner.errors import InputDataError
from datapruner.scorers.seqlabel_windows import keep_units_by_threshold, plan_windows, unit_token_indices


def test_windows_cut_at_unit_ends_and_cover_every_token():
    ends = [4, 9, 15, 18, 30]
    windows = plan_windows(ends, 30, capacity=10)
    assert windows[0][0] == 0 and windows[-1][1] == 30
    assert all(a[1] == b[0] for a, b in zip(windows, windows[1:]))  # contiguous, nothing dropped
    assert all(0 < e - s <= 10 for s, e in windows)
    # every cut except inside the 12-token last unit falls on a unit end
    assert [e for _, e in windows[:3]] == [9, 18, 28]


def test_a_unit_longer_than_the_window_is_split_not_truncated():
    windows = plan_windows([25], 25, capacity=10)
    assert windows == [(0, 10), (10, 20), (20, 25)]
    assert plan_windows([], 0, capacity=10) == [(0, 0)]
    with pytest.raises(InputDataError, match="capacity"):
        plan_windows([3], 3, capacity=0)


def test_unit_token_indices_uses_character_overlap():
    offsets = np.array([[0, 5], [6, 8], [8, 9], [10, 15], [0, 0]])
    assert unit_token_indices(offsets, [(0, 9), (10, 15), (15, 15)]) == [[0, 1, 2], [3], []]


def test_threshold_mode_conservative_keeps_a_superset_of_aggressive():
    probs = np.array([0.05, 0.1, 0.2, 0.5, 0.51, 0.9])
    conservative = keep_units_by_threshold(probs, threshold=0.1)
    aggressive = keep_units_by_threshold(probs, threshold=0.5)
    assert conservative.tolist() == [False, False, True, True, True, True]
    assert aggressive.tolist() == [False, False, False, False, True, True]
    with pytest.raises(InputDataError, match="threshold"):
        keep_units_by_threshold(probs, threshold=1.0)


def test_evidence_labels_cover_exactly_the_supporting_sentences(hotpot_heldout):
    from transformers import AutoTokenizer

    from datapruner.models.embedder import bundled_embedder_path
    from datapruner.pipelines.train_pruner import Example, encode_examples, join_sentences

    tok = AutoTokenizer.from_pretrained(bundled_embedder_path())
    rec = next(r for r in hotpot_heldout if len(r["para_b"]) > 2)
    text, spans = join_sentences(rec["para_b"])
    gold = rec["supporting_facts"][1]
    ex = Example("hotpotqa", rec["_id"], rec["question"], text, [spans[i] for i in gold], True, spans)
    (window,) = encode_examples([ex], tok, max_length=512)
    labels = np.array(window.labels)
    n_query = len(tok(rec["question"], add_special_tokens=False)["input_ids"]) + 2
    assert (labels[:n_query] == -100).all() and labels[-1] == -100  # [CLS] query [SEP] ... [SEP]
    kept = tok.decode([i for i, lab in zip(window.ids, labels) if lab == 1])
    expected = tok.decode(tok(" ".join(text[s:e] for s, e in (spans[i] for i in gold)), add_special_tokens=False)["input_ids"])
    assert kept == expected
    assert window.rank_label == 1.0
    neg = Example("hotpotqa", rec["_id"], rec["question"], text, [], False, spans)
    (neg_window,) = encode_examples([neg], tok, max_length=512)
    assert neg_window.rank_label == 0.0 and 1 not in neg_window.labels
