"""SequenceLabelPruner: the shipped pruner, a saved token-classification checkpoint, and the
offline failure path for hub names."""

from __future__ import annotations

import numpy as np
import pytest

from datapruner.errors import InputDataError, ModelLoadError
from datapruner.scorers.seqlabel import SequenceLabelPruner
from datapruner.pipelines.evaluate_pruner import hotpotqa_candidates


def test_hub_name_offline_fails_and_says_to_use_a_local_folder():
    pruner = SequenceLabelPruner("naver/provence-reranker-debertav3-v1")
    with pytest.raises(ModelLoadError, match="local folder") as err:
        pruner.score_units("who?", ["Someone."], [[(0, 8)]])
    assert "--model" in str(err.value)


def test_folder_that_is_not_a_pruner_is_rejected(tmp_path):
    (tmp_path / "pruner.json").write_text("{}")
    with pytest.raises(ModelLoadError, match=r"no model weights .*pruner\.json"):
        SequenceLabelPruner(str(tmp_path)).score_units("who?", ["Someone."], [[(0, 8)]])


@pytest.mark.parametrize(
    "item, match",
    [
        (("  ", ["a b"], [[(0, 3)]]), "query"),
        (("q?", ["a b", "c"], [[(0, 3)]]), "one span list per passage"),
        (("q?", ["a b"], [[(0, 9)]]), "outside"),
        (("q?", ["a b c"], [[(2, 3), (0, 1)]]), "out of order"),
        (("q?", "a b", [[(0, 3)]]), "list of strings"),
    ],
)
def test_bad_input_is_rejected_before_any_model_loads(item, match):
    pruner = SequenceLabelPruner("naver/not-loaded-for-this-test")
    with pytest.raises(InputDataError, match=match):
        pruner.score_units_batch([item])


@pytest.mark.slow
def test_token_classification_checkpoint_loads_and_drives_the_scores(token_clf_dir):
    pruner = SequenceLabelPruner(str(token_clf_dir))  # no remote code: loads without trust_remote_code
    text = "Paris is the capital of France. " * 60  # ~420 tokens, beyond the 128-position model
    spans = [(i * 32, i * 32 + 31) for i in range(60)]
    (probs,), scores = pruner.score_units("What is the capital of France?", [text], [spans])
    assert pruner.max_length == 128  # capped at the checkpoint's position limit
    assert pruner.has_rank_head is False
    assert probs.shape == (60,)
    # zero classifier weights + bias (0, 3): every token, in every window, has keep-prob softmax = 0.9526
    np.testing.assert_allclose(probs, 1 / (1 + np.exp(-3.0)), rtol=1e-5)
    np.testing.assert_allclose(scores, [1 / (1 + np.exp(-3.0))], rtol=1e-5)


@pytest.mark.slow
def test_bundled_pruner_shapes_ranges_and_batch_consistency(bundled_pruner, hotpot_heldout):
    recs = hotpot_heldout[:3]
    items = [(r["question"], *hotpotqa_candidates(r)[:2]) for r in recs]
    batch = bundled_pruner.score_units_batch(items)
    for (query, passages, spans), (unit_probs, scores) in zip(items, batch):
        assert scores.shape == (len(passages),) and np.isfinite(scores).all()
        assert [len(u) for u in unit_probs] == [len(s) for s in spans]
        for u in unit_probs:
            assert u.dtype == np.float32 and ((u > 0) & (u < 1)).all()
    single = bundled_pruner.score_units(*items[1])
    np.testing.assert_allclose(single[1], batch[1][1], atol=1e-5)
    for a, b in zip(single[0], batch[1][0]):
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.slow
def test_long_passage_is_windowed_and_the_evidence_at_its_end_still_scores(bundled_pruner, hotpot_heldout):
    """Evidence placed after ~4 windows' worth of distractor text is scored as it is alone."""
    rec = hotpot_heldout[0]
    passages, spans, gold = hotpotqa_candidates(rec)
    filler = " ".join(" ".join(s.strip() for s in d[1]) for d in rec["distractors"])
    evidence = " ".join(passages[0][s:e] for (s, e), g in zip(spans[0], gold[0]) if g)
    long_text = filler + " " + evidence
    long_spans = [(0, len(filler)), (len(filler) + 1, len(long_text))]
    small = SequenceLabelPruner("bundled", max_length=96)
    small._backend = bundled_pruner.backend  # same model, smaller window
    (probs,), _ = small.score_units(rec["question"], [long_text], [long_spans])
    n_tokens = len(small.backend.tokenizer(long_text, add_special_tokens=False)["input_ids"])
    assert n_tokens > 4 * 96
    (alone,), _ = bundled_pruner.score_units(rec["question"], [evidence], [[(0, len(evidence))]])
    assert probs[1] > 0.5 * alone[0]  # not truncated away (a truncated unit would score 0)
    assert probs[1] > probs[0]


def test_remote_code_folder_is_refused_by_default_before_its_code_runs(provence_dir, tmp_path):
    import shutil
    import sys

    folder = tmp_path / "untrusted_provence_copy"
    shutil.copytree(provence_dir, folder)
    with pytest.raises(ModelLoadError, match="trust_remote_code=True"):
        SequenceLabelPruner(str(folder)).score_units("Who?", ["Ann."], [[(0, 4)]])
    assert not [m for m in sys.modules if "untrusted_provence_copy" in m]  # its Python was never imported


@pytest.mark.slow
def test_provence_style_remote_code_folder_loads_through_transformers(provence_dir):
    pruner = SequenceLabelPruner(str(provence_dir), trust_remote_code=True)
    passages = ["Ann wrote it. It rained.", "Bob sang."]
    (p0, p1), scores = pruner.score_units("Who wrote it?", passages, [[(0, 13), (14, 24)], [(0, 9)]])
    assert pruner.backend.name.startswith("provence:")
    assert p0.shape == (2,) and p1.shape == (1,)
    np.testing.assert_allclose(np.concatenate([p0, p1]), 1 / (1 + np.exp(-2.0)), rtol=1e-5)  # softmax keep column
    np.testing.assert_allclose(scores, [1.5, 1.5], rtol=1e-5)  # the model's ranking_scores
