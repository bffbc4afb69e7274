"""Table of bad requests to a real `datapruner serve`: each gets its status and a JSON error naming the field."""

from __future__ import annotations

import json

import pytest

PASSAGES = ["The Eiffel Tower was completed in 1889. It was designed by Gustave Eiffel's company.",
            "Bananas are rich in potassium. They grow in tropical regions."]
OK = {"query": "When was the Eiffel Tower completed?", "passages": PASSAGES}
WORDS = " ".join(f"word{i}" for i in range(200))  # ~1,400 characters, ~400 tokens


def body(**fields):
    return {**OK, **fields}


CASES = [
    # (id, request, status, error type, field, text in the message)
    ("body-over-limit", {"content": json.dumps(body(passages=["x" * 25_000])).encode()}, 413, "limit_exceeded",
     "body", "service.max_request_bytes is 20000"),
    ("malformed-json", {"content": b'{"query": "q?", "passages": ['}, 400, "invalid_json", None, "not valid JSON"),
    ("not-utf8", {"content": b'{"query": "\xff"}'}, 400, "invalid_json", None, "not UTF-8"),
    ("not-an-object", {"body": ["q?", PASSAGES]}, 400, "invalid_request", None, "must be a JSON object"),
    ("empty-body", {"content": b""}, 400, "invalid_request", None, "got nothing"),
    ("target-tokens-abc", {"body": body(target_tokens="abc")}, 422, "invalid_field", "target_tokens", '"abc"'),
    ("target-tokens-bool", {"body": body(target_tokens=True)}, 422, "invalid_field", "target_tokens", "true"),
    ("rate-as-string", {"body": body(rate="0.5")}, 422, "invalid_field", "rate", "send a number"),
    ("unknown-field", {"body": body(colour="red")}, 422, "unknown_field", "colour", "allowed fields: query, passages"),
    ("path-in-lm", {"body": body(lm="/etc")}, 422, "unknown_field", "lm", "fixed when the server starts"),
    ("path-in-params", {"body": body(params={"model": "/tmp/any-folder"})}, 422, "unknown_field", "params",
     "models, tokenizers and method params are fixed"),
    ("remote-code", {"body": body(trust_remote_code=True)}, 422, "unknown_field", "trust_remote_code", "fixed"),
    ("tokenizer-path", {"body": body(tokenizer="/etc")}, 422, "unknown_field", "tokenizer", "fixed"),
    ("method-unknown", {"body": body(method="nope")}, 422, "invalid_field", "method", "serves lead, bm25"),
    ("method-not-served", {"body": body(method="perplexity")}, 422, "invalid_field", "method", "serves lead, bm25"),
    ("method-a-path", {"body": body(method="/tmp/evil")}, 422, "invalid_field", "method", "/tmp/evil"),
    ("too-many-passages", {"body": body(passages=["a."] * 6)}, 413, "limit_exceeded", "passages",
     "service.max_passages is 5"),
    ("passage-over-char-limit", {"body": body(passages=["short.", "y" * 2_001])}, 413, "limit_exceeded", "passages[1]",
     "service.max_passage_chars is 2000"),
    ("too-many-tokens", {"body": body(passages=[WORDS] * 5)}, 413, "limit_exceeded", "passages",
     "service.max_total_tokens is 1500"),
    ("missing-token", {"body": OK, "token": None}, 401, "unauthorized", "Authorization", "no Authorization header"),
    ("wrong-token", {"body": OK, "token": "guess"}, 401, "unauthorized", "Authorization", "a wrong token"),
    ("negative-budget", {"body": body(target_tokens=-5)}, 422, "invalid_field", "target_tokens", "-5"),
    ("rate-above-one", {"body": body(rate=2)}, 422, "invalid_field", "rate", "has value 2"),
    ("budget-and-threshold", {"body": body(target_tokens=10, threshold=0.5)}, 422, "invalid_field", "threshold",
     "no threshold when a budget"),
    ("threshold-for-a-budget-only-method", {"body": body(threshold=0.5)}, 422, "invalid_field", "threshold", "lead"),
    ("empty-passages", {"body": body(passages=[])}, 422, "invalid_field", "passages", "empty list"),
    ("passages-a-string", {"body": body(passages="one passage")}, 422, "invalid_field", "passages", "list of strings"),
    ("passage-not-a-string", {"body": body(passages=["ok.", 7])}, 422, "invalid_field", "passages[1]", "int"),
    ("empty-query", {"body": body(query="  ")}, 422, "invalid_field", "query", "non-empty string"),
    ("missing-query", {"body": {"passages": PASSAGES}}, 422, "missing_field", "query", "missing field 'query'"),
    ("timeout-above-the-server's", {"body": body(timeout_s=600)}, 422, "invalid_field", "timeout_s", "(0, 60]"),
    ("wrong-media-type", {"content": b"query=q", "headers": {"content-type": "text/plain"}}, 415,
     "unsupported_media_type", "content-type", "application/json"),
]


@pytest.mark.parametrize("request_kwargs, status, kind, field, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_request_gets_its_status_and_names_the_field(guarded_server, request_kwargs, status, kind, field, message):
    r = guarded_server.post(**request_kwargs, timeout=60)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json") and "Traceback" not in r.text
    error = r.json()["error"]
    assert (error["type"], error["field"]) == (kind, field), error
    assert message in error["message"], error["message"]


def test_a_limit_error_carries_the_limit_and_the_value(guarded_server):
    error = guarded_server.post(body(passages=["a."] * 6)).json()["error"]
    assert (error["limit"], error["value"], error["max"]) == ("service.max_passages", 6, 5)


def test_the_good_request_of_the_table_is_served(guarded_server):
    """The table's base request is fine: each case above fails for its own field only."""
    r = guarded_server.post(body(target_tokens=12, method="bm25"))
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["method"] == "bm25" and 0 < out["tokens_after"] <= 12


def test_an_unknown_path_is_a_json_404(guarded_server):
    import httpx

    r = httpx.get(guarded_server.url + "/v1/nothing", headers=guarded_server.headers(), timeout=10)
    assert r.status_code == 404 and r.json()["error"]["type"] == "http_error"
    assert "POST /v1/compress" in r.json()["error"]["message"]
