"""The shipped pruner on held-out HotpotQA questions, against the embedding-similarity baseline.

The committed sample holds only the 30 held-out questions; the test checks that none of them is in
the training split, that the pruner ranks evidence sentences far above chance, and that the
numbers equal the held-out metrics recorded beside the shipped weights (so the documented figures
are what the model does)."""

from __future__ import annotations

import json

import pytest


def test_sample_is_exactly_the_heldout_split(hotpot_heldout, shared_data):
    from datapruner.pipelines import train_pruner as tr

    records = tr.load_hotpotqa(tr.find_data_file(shared_data / "qa", tr.HOTPOT_FILE))
    train_ids = {r["_id"] for r in tr.hotpotqa_split(records, "train")}
    heldout_ids = [r["_id"] for r in tr.hotpotqa_split(records, "heldout")]
    assert [r["_id"] for r in hotpot_heldout] == heldout_ids
    assert not train_ids & set(heldout_ids)


@pytest.mark.slow
def test_pruner_evidence_recall_beats_chance_and_matches_shipped_metrics(bundled_pruner, embedder, hotpot_heldout):
    from datapruner.scorers.seqlabel_net import CONFIG_FILE, bundled_pruner_dir
    from datapruner.pipelines.evaluate_pruner import hotpotqa_evidence_recall

    got = hotpotqa_evidence_recall(hotpot_heldout, pruner=bundled_pruner, embedder=embedder)
    assert got["n_questions"] == 30
    chance = got["chance"]["at_gold"]
    assert got["seqlabel"]["at_gold"] > chance + 0.2, got
    assert got["embedding"]["at_gold"] > chance + 0.2, got
    shipped = json.loads((bundled_pruner_dir() / CONFIG_FILE).read_text())["heldout_metrics"]
    recorded = shipped["hotpotqa_evidence_recall"]
    for method in ("seqlabel", "seqlabel_x_rerank", "embedding", "chance"):
        for key, value in recorded[method].items():
            assert got[method][key] == pytest.approx(value, abs=0.01), (method, key)
