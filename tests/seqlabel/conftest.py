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


_PROVENCE_CODE = '''
from dataclasses import dataclass

import torch
from torch import nn
from transformers import BertConfig, BertModel, PreTrainedModel
from transformers.utils import ModelOutput


class TinyProvenceConfig(BertConfig):
    model_type = "tinyprovence"


@dataclass
class TinyProvenceOutput(ModelOutput):
    compression_logits: torch.FloatTensor | None = None
    ranking_scores: torch.FloatTensor | None = None


class TinyProvenceModel(PreTrainedModel):
    """Provence's output contract: per-token (drop, keep) logits and one ranking score per pair."""

    config_class = TinyProvenceConfig
    base_model_prefix = "bert"

    def __init__(self, config):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.token_classifier = nn.Linear(config.hidden_size, 2)
        self.classifier = nn.Linear(config.hidden_size, 1)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return TinyProvenceOutput(
            compression_logits=self.token_classifier(hidden),
            ranking_scores=self.classifier(hidden[:, 0]).squeeze(-1),
        )

    def process(self, question, context, threshold=0.1):
        raise NotImplementedError("datapruner scores through forward(), never through process()")
'''


@pytest.fixture(scope="session")
def provence_dir(tmp_path_factory):
    """A tiny Provence-style remote-code checkpoint folder (modeling file + auto_map + weights).

    Token logits (0, 2) for every token -> keep-probability 0.8808; ranking score 1.5 for every pair."""
    import importlib.util

    import torch
    from transformers import AutoTokenizer

    from datapruner.models.embedder import bundled_embedder_path

    folder = tmp_path_factory.mktemp("tiny_provence")
    (folder / "modeling_tinyprovence.py").write_text(_PROVENCE_CODE)
    spec = importlib.util.spec_from_file_location("modeling_tinyprovence", folder / "modeling_tinyprovence.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    tokenizer = AutoTokenizer.from_pretrained(bundled_embedder_path())
    config = module.TinyProvenceConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=256,
    )
    config.auto_map = {
        "AutoConfig": "modeling_tinyprovence.TinyProvenceConfig",
        "AutoModel": "modeling_tinyprovence.TinyProvenceModel",
    }
    torch.manual_seed(0)
    model = module.TinyProvenceModel(config)
    with torch.no_grad():
        model.token_classifier.weight.zero_()
        model.token_classifier.bias.copy_(torch.tensor([0.0, 2.0]))
        model.classifier.weight.zero_()
        model.classifier.bias.fill_(1.5)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
