"""The HTTP service over a real `datapruner serve` on 127.0.0.1: health, results, config errors."""

from __future__ import annotations

import pytest

from datapruner.cli import main


def test_healthz_reports_the_compressor_methods_and_lanes(guarded_server):
    health = guarded_server.health()
    assert health["status"] == "ok" and health["compressor"]["method"] == "lead"
    assert health["budget"]["rate"] == 0.5 and health["compressor"]["threads"] == 1
    assert health["request_fields"] == ["query", "passages", "target_tokens", "rate", "threshold", "method", "timeout_s"]
    lane = health["lanes"]["cheap"]
    assert lane["methods"] == ["lead", "bm25"] and lane["max_queue"] == 32 and len(lane["workers"]) == 1
    assert lane["workers"][0]["state"] == "ready" and lane["workers"][0]["pid"] != guarded_server.process.pid


def test_the_request_budget_replaces_the_configured_one(guarded_server):
    passages = ["The Eiffel Tower was completed in 1889.", "It is in Paris. It is made of iron. Many visit it."]
    out = guarded_server.post({"query": "When?", "passages": passages, "target_tokens": 9}).json()
    assert out["budget"] == 9 and out["tokens_after"] <= 9 and out["latency_ms"] > 0
    out = guarded_server.post({"query": "When?", "passages": passages}).json()  # the server's rate 0.5
    assert out["budget"] != 9 and out["tokens_after"] <= out["budget"] <= out["tokens_before"] * 0.5


@pytest.fixture(scope="module")
def uncached_server(start_server, tmp_path_factory):
    config = {"compress": {"method": "lead", "rate": 0.5, "tokenizer": "org/uncached"}, "service": {"workers": 1}}
    with start_server(tmp_path_factory.mktemp("uncached"), config) as server:
        yield server


def test_a_model_that_cannot_load_is_a_503_naming_it(uncached_server):
    r = uncached_server.post({"query": "q?", "passages": ["One passage."]})
    assert r.status_code == 503 and r.json()["error"]["type"] == "model_unavailable"
    assert "org/uncached" in r.json()["error"]["message"]
    assert uncached_server.health()["lanes"]["cheap"]["unavailable"]


@pytest.mark.parametrize("args, message", [
    (["--method", "mig", "--param", "alpha=-1"], "'compress.params.alpha' has value -1"),
    (["--timeout-s", "0"], "'service.timeout_s' has value 0"),
    (["--methods", "mig,nope"], "'service.methods' has value 'nope'"),
    (["--method", "mig", "--methods", "perplexity", "--workers", "1"], "'service.workers' has value 1"),
    (["--method", "mig", "--methods", "perplexity", "--workers", "2", "--costly-workers", "2"],
     "'service.costly_workers' has value 2"),
    (["--max-passages", "0"], "'service.max_passages' has value 0"),
    (["--method", "mig", "--param", "embedder=bundled-minilm", "--embedder", "other"],
     "'service.embedder' has value 'other'"),
    (["--method", "lead", "--threshold", "0.5"], "'compress.threshold' has value 0.5"),
])
def test_a_bad_config_fails_before_the_server_starts(capsys, args, message):
    assert main(["serve", *args]) == 2
    assert message in capsys.readouterr().err


def test_the_serve_config_example_loads_with_its_allow_list_and_lanes():
    from pathlib import Path

    from datapruner.config import load_compress_config
    from datapruner.service.plan import serving_plan

    cfg = load_compress_config(Path(__file__).parents[2] / "configs" / "serve.yaml", overrides={"service": {"workers": 4}})
    plan = serving_plan(cfg)
    assert plan.methods == ["mig", "perplexity", "bm25"] and cfg.service.host == "127.0.0.1"
    assert [(lane.name, lane.methods, lane.workers) for lane in plan.lanes] == [
        ("cheap", ("mig", "bm25"), 2), ("costly", ("perplexity",), 2)]
    assert plan.options["mig"]["params"] == {"temperature": 0.1} and plan.options["perplexity"]["params"] == {}
    assert plan.models() == {"mig": {"embedder": "bundled-minilm"}, "perplexity": {"lm": "bundled-smollm2"}, "bm25": {}}
