"""Fixtures for the sequence-labelling pruner tests: the shipped pruner, held-out HotpotQA, a tiny
token-classification checkpoint saved with save_pretrained."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="session")
def hotpot_heldout(test_data) -> list[dict]:
    """The 30 held-out HotpotQA questions (the last 30 of the shared 100-question sample)."""
    return json.loads((test_data / "qa" / "hotpotqa_heldout30.json").read_text())


@pytest.fixture(scope="session")
def bundled_pruner():
    from datapruner.scorers.seqlabel import SequenceLabelPruner

    pruner = SequenceLabelPruner("bundled")
    pruner.score_units("warm up?", ["Warm up."], [[(0, 8)]])
    return pruner


@pytest.fixture(scope="session")
def token_clf_dir(tmp_path_factory):
    """A randomly initialised 2-layer BertForTokenClassification (labels drop/keep) with the bundled
    MiniLM tokenizer, saved as a real checkpoint folder. Its classifier weights are zero, so the
    keep-probability is set by the bias alone: softmax([0, 3])[1] = 0.9526 for every token."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForTokenClassification

    from datapruner.models.embedder import bundled_embedder_path

    tokenizer = AutoTokenizer.from_pretrained(bundled_embedder_path())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=2,
        id2label={0: "drop", 1: "keep"},
        label2id={"drop": 0, "keep": 1},
    )
    torch.manual_seed(0)
    model = BertForTokenClassification(config)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([0.0, 3.0]))
    folder = tmp_path_factory.mktemp("token_clf")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
