"""The HTTP service over a real socket on 127.0.0.1 (uvicorn in a thread, bounded requests)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

httpx = pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")

PASSAGES = [
    "The Eiffel Tower was completed in 1889. It was designed by the company of Gustave Eiffel.",
    "Bananas are rich in potassium. They grow in tropical regions.",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SERVERS = {  # each app is built from a compression config, like `datapruner serve --config`
    "mig": {"compress": {"method": "mig", "rate": 0.5}, "service": {"max_request_bytes": 20_000, "timeout_s": 120}},
    "slow": {"compress": {"method": "lead", "rate": 0.5}, "service": {"timeout_s": 0.001}},
    "uncached": {"compress": {"method": "lead", "rate": 0.5, "tokenizer": "org/uncached"}},
}


@pytest.fixture(scope="module")
def server():
    """One app per config of SERVERS, each on its own loopback port: {name: url}."""
    from datapruner.service.app import create_app

    servers, urls = [], {}
    for name, config in SERVERS.items():
        port = _free_port()
        srv = uvicorn.Server(uvicorn.Config(create_app(config), host="127.0.0.1", port=port, log_level="warning"))
        threading.Thread(target=srv.run, daemon=True).start()
        deadline = time.time() + 30
        while not srv.started:
            if time.time() > deadline:
                raise RuntimeError("uvicorn did not start within 30 s")
            time.sleep(0.05)
        servers.append(srv)
        urls[name] = f"http://127.0.0.1:{port}"
    yield urls
    for srv in servers:
        srv.should_exit = True


def _post(url, body=None, **kwargs):
    return httpx.post(url + "/v1/compress", json=body, timeout=180, **kwargs)


def test_healthz_reports_the_compressor(server):
    r = httpx.get(server["mig"] + "/healthz", timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "ok"
    health = r.json()
    assert health["compressor"]["method"] == "mig" and health["compressor"]["params"]["temperature"] == 0.1
    assert health["compressor"]["threads"] == 1 and health["budget"]["rate"] == 0.5
    assert health["request_fields"] == ["query", "passages", "target_tokens", "rate", "threshold"]


@pytest.mark.slow
def test_compress_over_http_matches_the_api(server, embedder):  # embedder: loaded before the first request
    from datapruner import compress

    # the request's target_tokens replaces the server's default rate (defaults: mig, rate 0.5)
    body = {"query": "When was the Eiffel Tower completed?", "passages": PASSAGES, "target_tokens": 20}
    r = _post(server["mig"], body)
    assert r.status_code == 200, r.text
    out = r.json()
    direct = compress(body["query"], PASSAGES, method="mig", target_tokens=20)
    assert out["text"] == direct.text and "1889" in out["text"]
    assert out["tokens_after"] <= 20 and out["method"] == "mig" and len(out["passage_scores"]) == 2
    assert out["units"][0]["passage"] == 0 and out["latency_ms"] > 0
    # an empty passage has no score (NaN in Python) and must still give valid JSON
    r = _post(server["mig"], {"query": "When?", "passages": ["", PASSAGES[0]], "rate": 0.9})
    assert r.status_code == 200, r.text
    assert r.json()["passage_scores"][0] is None and r.json()["passage_scores"][1] > 0


@pytest.mark.parametrize(
    "name, body, status, kind, message",
    [
        ("mig", {"query": "", "passages": PASSAGES}, 400, "InputDataError", "query is empty"),
        ("mig", {"query": "q?", "passages": []}, 400, "InputDataError", "passages"),
        ("mig", {"query": "q?", "passages": PASSAGES, "rate": 2}, 400, "ConfigError", "'rate' has value 2"),
        ("mig", {"query": "q?", "passages": PASSAGES, "rate": 0.5, "target_tokens": 9}, 400, "ConfigError",
         "'target_tokens/rate' has value (9, 0.5)"),
        ("mig", {"query": "q?", "passages": PASSAGES, "method": "lead"}, 400, "invalid_request",
         "field 'method' (value 'lead') cannot be set per request; allowed fields: query, passages, target_tokens, rate, threshold"),
        ("mig", {"query": "q?", "passages": PASSAGES, "params": {"alpha": 2}}, 400, "invalid_request", "field 'params'"),
        ("uncached", {"query": "q?", "passages": PASSAGES}, 503, "model_unavailable", "org/uncached"),
        ("mig", {"passages": PASSAGES}, 400, "invalid_request", "missing field(s) ['query']"),
        ("mig", [1, 2], 400, "invalid_request", "JSON object"),
        ("mig", {"query": "q?", "passages": ["x" * 30_000]}, 413, "request_too_large", "20000"),
    ],
)
def test_json_errors(server, name, body, status, kind, message):
    r = _post(server[name], body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["type"] == kind and message in r.json()["error"]["message"]


def test_a_bad_config_fails_before_the_server_starts():
    from datapruner.errors import ConfigError
    from datapruner.service.app import create_app

    with pytest.raises(ConfigError, match=r"'compress.params.alpha' has value -1"):
        create_app({"compress": {"method": "mig", "params": {"alpha": -1}}})
    with pytest.raises(ConfigError, match=r"'service.timeout_s' has value 0"):
        create_app({"service": {"timeout_s": 0}})


def test_invalid_json_and_media_type(server):
    r = httpx.post(server["mig"] + "/v1/compress", content=b"{not json", headers={"content-type": "application/json"}, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_json"
    r = httpx.post(server["mig"] + "/v1/compress", content=b"query=x", headers={"content-type": "text/plain"}, timeout=10)
    assert r.status_code == 415


def test_timeout_gives_504(server):
    body = {"query": "q?", "passages": PASSAGES * 20}
    r = _post(server["slow"], body)
    assert r.status_code == 504 and r.json()["error"]["type"] == "timeout"
