"""Every bad input gets a clear error naming the field, the value and the fix."""

from __future__ import annotations

import pytest

from datapruner import compress
from datapruner.errors import ConfigError, InputDataError, ModelLoadError
from datapruner.pipelines.compress import compress_batch

P = ["Paris is the capital of France. It has 2.1 million people."]


@pytest.mark.parametrize(
    "query, passages, kwargs, error, match",
    [
        ("", P, {}, InputDataError, "query is empty"),
        ("   ", P, {}, InputDataError, "query is empty"),
        (None, P, {}, InputDataError, "query must be a string"),
        ("q?", [], {}, InputDataError, "passages is empty"),
        ("q?", None, {}, InputDataError, "passages is None"),
        ("q?", "one string", {}, InputDataError, "wrap it"),
        ("q?", ["ok", 3], {}, InputDataError, r"passages\[1\]"),
        ("q?", P, {"target_tokens": 0}, ConfigError, "target_tokens"),
        ("q?", P, {"target_tokens": -5}, ConfigError, "target_tokens"),
        ("q?", P, {"rate": 0.0}, ConfigError, r"rate.*\(0, 1\]"),
        ("q?", P, {"rate": 1.01}, ConfigError, r"rate.*\(0, 1\]"),
        ("q?", P, {"rate": 0.5, "target_tokens": 10}, ConfigError, "not both"),
        ("q?", P, {"method": "magic"}, ConfigError, "mig, fused, perplexity, seqlabel, hybrid"),
        ("q?", P, {"reorder": "random"}, ConfigError, "relevance"),
        ("q?", P, {"content": "html"}, ConfigError, "content"),
        ("q?", P, {"not_an_option": 1}, ConfigError, "not_an_option"),
        ("q?", P, {"force_keep": ["("]}, ConfigError, "force_keep"),
        ("q?", P, {"threshold": "high"}, ConfigError, "threshold"),
        ("q?", P, {"method": "lead", "threshold": 0.5}, ConfigError, "needs a budget"),
        ("q?", P, {"method": "mig", "threshold": 0.5, "rate": 0.5}, ConfigError, "no threshold when a budget"),
        ("q?", P, {"method": "seqlabel", "threshold": 1.0}, ConfigError, r"\[0, 1\)"),
        ("q?", P, {"mig_alpha": 2.0}, ConfigError, r"params=\{"),
        ("q?", P, {"params": {"alpha": "big"}}, ConfigError, "params.alpha"),
        ("q?", P, {"method": "mig", "params": {"temprature": 0.2}}, ConfigError, r"params.temprature.*accepted: alpha, backend, beta, embedder"),
        ("q?", P, {"params": ["alpha"]}, ConfigError, "a mapping"),
        ("q?", P, {"threads": 0}, ConfigError, "threads"),
    ],
)
def test_bad_input(query, passages, kwargs, error, match):
    with pytest.raises(error, match=match):
        compress(query, passages, **kwargs)


def test_tokenizer_that_cannot_load_offline_fails_fast():
    with pytest.raises(ModelLoadError, match="--tokenizer"):
        compress("q?", P, tokenizer="some-org/not-a-cached-tokenizer", rate=0.5, method="lead")


def test_batch_names_the_bad_pair():
    with pytest.raises(InputDataError, match="pair 1: query is empty"):
        compress_batch([("q?", P), ("", P)], method="lead", rate=0.5)


def test_documented_edge_cases():
    # empty passages are allowed and contribute nothing; a budget above the input keeps everything
    r = compress("q?", ["", P[0], ""], method="lead", target_tokens=10_000)
    assert r.text == P[0] and r.tokens_after <= r.budget
    assert [u.passage for u in r.units] == [1, 1]
    # a budget too small for any unit gives an empty text, never an over-budget one
    r = compress("q?", P, method="lead", target_tokens=1)
    assert r.text == "" and r.units == [] and r.tokens_after == 0


def test_long_sentence_is_split_not_truncated():
    text = "word " * 3000  # one 3000-token "sentence", far beyond every model window
    r = compress("word?", [text], method="lead", rate=1.0)
    assert len(r.units) > 10 and all(len(u.text.split()) <= 128 for u in r.units)
    assert " ".join(u.text for u in r.units).split() == text.split()


@pytest.mark.slow
def test_threshold_mode_has_no_budget(embedder):
    passages = ["Paris is the capital of France. Bananas are yellow.", "The Seine flows through Paris."]
    loose = compress("What is the capital of France?", passages, method="mig", threshold=-1.0)
    strict = compress("What is the capital of France?", passages, method="mig", threshold=0.3)
    assert loose.budget is None and strict.budget is None
    assert len(loose.units) == 3 and 0 < len(strict.units) < 3
    assert strict.units[0].text == "Paris is the capital of France."


@pytest.mark.slow
def test_reorder_by_relevance(embedder):
    passages = ["Bananas are yellow fruit.", "Paris is the capital of France."]
    r = compress("What is the capital of France?", passages, method="mig", rate=1.0, reorder="relevance")
    assert r.passage_scores[1] > r.passage_scores[0]
    assert [u.passage for u in r.units] == [1, 0] and r.text.startswith("Paris")
