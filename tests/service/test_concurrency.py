"""Queues, workers and deadlines of a real `datapruner serve` (mig and perplexity, 1 + 1 workers).

The reported failure: a 28 KB perplexity request held the only worker, and a small mig request
sent a second later got a 504. Here the costly methods have their own worker, a running request
past its deadline is stopped (its worker process replaced), a queued one past its deadline never
starts, and a full queue sheds with 503 + Retry-After.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

TIMEOUT_S = 30  # the server's deadline: room for small requests on a loaded CI machine
BIG_TIMEOUT_S = 4  # the long perplexity request's own, shorter deadline (request field timeout_s)
CONFIG = {"compress": {"method": "mig", "rate": 0.5},
          "service": {"methods": ["perplexity"], "workers": 2, "costly_workers": 1, "timeout_s": TIMEOUT_S,
                      "max_queue": 1}}
SMALL = {"query": "When was the Eiffel Tower completed?",
         "passages": ["The Eiffel Tower was completed in 1889. It was designed by the company of Gustave Eiffel.",
                      "Bananas are rich in potassium. They grow in tropical regions."]}


def big_perplexity_request() -> dict:
    """About 28 KB of XQuAD paragraphs for perplexity (tens of seconds of CPU, far above the deadline)."""
    data = json.loads((Path(__file__).parents[1] / "data" / "qa" / "xquad_en_sample.json").read_text(encoding="utf-8"))
    passages, size = [], 0
    for paragraph in (p["context"] for article in data["data"] for p in article["paragraphs"]):
        passages.append(paragraph)
        size += len(paragraph)
        if size >= 28_000:
            break
    return {"query": "What did the report say?", "passages": passages, "method": "perplexity", "rate": 0.25,
            "timeout_s": BIG_TIMEOUT_S}


@pytest.fixture(scope="module")
def mixed_server(start_server, tmp_path_factory):
    with start_server(tmp_path_factory.mktemp("mixed"), CONFIG) as server:
        yield server


def in_background(server, body) -> dict:
    """POST `body` in a thread; the dict gets ``response`` and ``seconds`` when it is answered."""
    out = {}

    def send():
        started = time.monotonic()
        out["response"] = server.post(body, timeout=120)
        out["seconds"] = time.monotonic() - started

    out["thread"] = threading.Thread(target=send, daemon=True)
    out["thread"].start()
    return out


def test_a_long_perplexity_call_neither_starves_mig_nor_outlives_its_deadline(mixed_server):
    health = mixed_server.health()
    assert health["lanes"]["cheap"]["methods"] == ["mig"] and health["lanes"]["costly"]["methods"] == ["perplexity"]
    costly_pid = health["lanes"]["costly"]["workers"][0]["pid"]

    big = in_background(mixed_server, big_perplexity_request())
    time.sleep(1.0)
    started = time.monotonic()
    r = mixed_server.post(SMALL)  # the reported failure: this got a 504
    assert r.status_code == 200, r.text
    assert "1889" in r.json()["text"] and time.monotonic() - started < TIMEOUT_S

    # the costly worker is busy: a perplexity request with a 1 s deadline waits and never starts
    started = time.monotonic()
    r = mixed_server.post({**SMALL, "method": "perplexity", "timeout_s": 1})
    assert r.status_code == 504 and "never started" in r.json()["error"]["message"]
    assert time.monotonic() - started < 3 and r.headers["retry-after"] == "1"

    # one request waits (max_queue 1); the next one is shed at once
    queued = in_background(mixed_server, {**SMALL, "method": "perplexity"})
    time.sleep(0.5)
    r = mixed_server.post({**SMALL, "method": "perplexity"})
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert r.json()["error"]["type"] == "overloaded" and "service.max_queue" in r.json()["error"]["message"]

    big["thread"].join(60)
    queued["thread"].join(60)
    assert big["response"].status_code == 504, big["response"].text
    assert "stopped and its worker replaced" in big["response"].json()["error"]["message"]
    assert big["seconds"] < BIG_TIMEOUT_S + 3  # answered at its deadline, not when the work would have ended
    assert queued["response"].status_code in (200, 504)  # its deadline may pass while the worker restarts
    assert queued["response"].status_code == 504 or queued["response"].json()["method"] == "perplexity"

    # the stopped worker is replaced by a new process, which serves perplexity again
    health = mixed_server.wait_until_ready()
    worker = health["lanes"]["costly"]["workers"][0]
    assert worker["restarts"] >= 1 and worker["pid"] != costly_pid
    r = mixed_server.post({**SMALL, "method": "perplexity"})
    assert r.status_code == 200, r.text
    assert r.json()["method"] == "perplexity" and "1889" in r.json()["text"]


def test_compress_over_http_matches_the_api(mixed_server):
    from datapruner import compress

    body = {**SMALL, "target_tokens": 20}  # replaces the server's rate 0.5
    r = mixed_server.post(body)
    assert r.status_code == 200, r.text
    out = r.json()
    direct = compress(body["query"], body["passages"], method="mig", target_tokens=20)
    assert out["text"] == direct.text and out["tokens_after"] <= 20 and len(out["passage_scores"]) == 2
    # an empty passage has no score (NaN in Python) and must still give valid JSON
    r = mixed_server.post({"query": "When?", "passages": ["", SMALL["passages"][0]], "rate": 0.9})
    assert r.status_code == 200 and r.json()["passage_scores"][0] is None
