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


@pytest.fixture(scope="module")
def server():
    """Two apps: a normal one and one with a tiny timeout, each on its own loopback port."""
    from datapruner.service.app import create_app

    servers, urls = [], []
    for options in ({"max_request_bytes": 20_000, "timeout_s": 120, "defaults": {"method": "mig", "rate": 0.5}},
                    {"timeout_s": 0.001}):
        port = _free_port()
        srv = uvicorn.Server(uvicorn.Config(create_app(**options), host="127.0.0.1", port=port, log_level="warning"))
        threading.Thread(target=srv.run, daemon=True).start()
        deadline = time.time() + 30
        while not srv.started:
            if time.time() > deadline:
                raise RuntimeError("uvicorn did not start within 30 s")
            time.sleep(0.05)
        servers.append(srv)
        urls.append(f"http://127.0.0.1:{port}")
    yield urls
    for srv in servers:
        srv.should_exit = True


def _post(url, body=None, **kwargs):
    return httpx.post(url + "/v1/compress", json=body, timeout=180, **kwargs)


def test_healthz(server):
    r = httpx.get(server[0] + "/healthz", timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "ok"


@pytest.mark.slow
def test_compress_over_http_matches_the_api(server, embedder):  # embedder: loaded before the first request
    from datapruner import compress

    # the request's target_tokens replaces the server's default rate (defaults: mig, rate 0.5)
    body = {"query": "When was the Eiffel Tower completed?", "passages": PASSAGES, "target_tokens": 20}
    r = _post(server[0], body)
    assert r.status_code == 200, r.text
    out = r.json()
    direct = compress(body["query"], PASSAGES, method="mig", target_tokens=20)
    assert out["text"] == direct.text and "1889" in out["text"]
    assert out["tokens_after"] <= 20 and out["method"] == "mig" and len(out["passage_scores"]) == 2
    assert out["units"][0]["passage"] == 0 and out["latency_ms"] > 0
    # an empty passage has no score (NaN in Python) and must still give valid JSON
    r = _post(server[0], {"query": "When?", "passages": ["", PASSAGES[0]], "rate": 0.9})
    assert r.status_code == 200, r.text
    assert r.json()["passage_scores"][0] is None and r.json()["passage_scores"][1] > 0


@pytest.mark.parametrize(
    "body, status, kind",
    [
        ({"query": "", "passages": PASSAGES}, 400, "InputDataError"),
        ({"query": "q?", "passages": []}, 400, "InputDataError"),
        ({"query": "q?", "passages": PASSAGES, "rate": 2}, 400, "ConfigError"),
        ({"query": "q?", "passages": PASSAGES, "method": "nope"}, 400, "ConfigError"),
        ({"query": "q?", "passages": PASSAGES, "method": "lead", "rate": 0.5, "tokenizer": "org/uncached"}, 503, "model_unavailable"),
        ({"passages": PASSAGES}, 400, "invalid_request"),
        ([1, 2], 400, "invalid_request"),
        ({"query": "q?", "passages": ["x" * 30_000]}, 413, "request_too_large"),
    ],
)
def test_json_errors(server, body, status, kind):
    r = _post(server[0], body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["type"] == kind and r.json()["error"]["message"]


def test_invalid_json_and_media_type(server):
    r = httpx.post(server[0] + "/v1/compress", content=b"{not json", headers={"content-type": "application/json"}, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_json"
    r = httpx.post(server[0] + "/v1/compress", content=b"query=x", headers={"content-type": "text/plain"}, timeout=10)
    assert r.status_code == 415


def test_timeout_gives_504(server):
    body = {"query": "q?", "passages": PASSAGES * 20, "method": "lead", "rate": 0.5}
    r = _post(server[1], body)
    assert r.status_code == 504 and r.json()["error"]["type"] == "timeout"
