"""What a client of `datapruner serve` can and cannot do (docs/service.md, Security).

- It cannot make the server load a model, a tokenizer or code from a path it names, nor turn on
  ``trust_remote_code``: the models are fixed when the server starts; a request may choose only
  a method of the allow-list, by name.
- Without the token it gets 401 on every endpoint; the token is compared in constant time.
- The server listens on 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import json

import httpx
import pytest

from datapruner.service.auth import authorized

MODEL_FIELDS = ["lm", "embedder", "model", "seqlabel_model", "tokenizer", "model_path", "path"]


@pytest.fixture(scope="module")
def remote_code_folder(tmp_path_factory):
    """A model folder whose Python code, if the server ever imported it, would write `marker`."""
    folder = tmp_path_factory.mktemp("evil-model")
    marker = folder / "CODE-RAN"
    (folder / "config.json").write_text(json.dumps({
        "model_type": "evil", "auto_map": {"AutoConfig": "modeling_evil.EvilConfig", "AutoModel": "modeling_evil.Evil"},
    }))
    (folder / "modeling_evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    return folder, marker


@pytest.mark.parametrize("field", MODEL_FIELDS)
def test_a_request_cannot_name_a_model_folder(guarded_server, remote_code_folder, field):
    folder, marker = remote_code_folder
    body = {"query": "q?", "passages": ["One passage."], field: str(folder)}
    r = guarded_server.post(body)
    assert r.status_code == 422 and r.json()["error"]["field"] == field
    assert "fixed when the server starts" in r.json()["error"]["message"]
    assert not marker.exists()


@pytest.mark.parametrize("body_extra", [
    {"params": {"model": "FOLDER"}}, {"params": {"lm": "FOLDER", "trust_remote_code": True}},
    {"trust_remote_code": True}, {"method": "seqlabel"}, {"method": "FOLDER"},
])
def test_no_request_runs_remote_code_or_chooses_a_method_outside_the_allow_list(guarded_server, remote_code_folder,
                                                                               body_extra):
    folder, marker = remote_code_folder
    body_extra = json.loads(json.dumps(body_extra).replace("FOLDER", str(folder)))
    r = guarded_server.post({"query": "q?", "passages": ["One passage."], **body_extra})
    assert r.status_code == 422, r.text
    assert not marker.exists()


def test_the_models_are_the_ones_fixed_at_start(guarded_server):
    health = guarded_server.health()
    assert health["methods"] == ["lead", "bm25"] and health["default_method"] == "lead"
    assert "method" in health["request_fields"] and "params" not in health["request_fields"]
    assert health["compressor"]["tokenizer"] == "bundled-smollm2"


@pytest.mark.parametrize("path, method", [("/v1/compress", "post"), ("/healthz", "get")])
@pytest.mark.parametrize("header", [None, "Bearer wrong", "Bearer s3cret-test-toke", "Basic s3cret-test-token", "s3cret-test-token"])
def test_every_endpoint_needs_the_token(guarded_server, path, method, header):
    headers = {"authorization": header} if header else {}
    r = httpx.request(method, guarded_server.url + path, headers=headers, json={"query": "q?", "passages": ["a."]},
                      timeout=30)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert r.json()["error"]["field"] == "Authorization"


def test_the_right_token_is_served(guarded_server):
    r = guarded_server.post({"query": "When was it completed?", "passages": ["It was completed in 1889."], "rate": 1.0})
    assert r.status_code == 200 and "1889" in r.json()["text"]


def test_the_token_check():
    assert authorized(None, None) and authorized("Bearer anything", None)
    assert authorized("Bearer tok", "tok") and authorized("bearer  tok ", "tok")
    for header in (None, "", "Bearer", "Bearer to", "Bearer tok2", "Basic tok", "tok", "Bearer tök"):
        assert not authorized(header, "tok"), header


def test_the_server_listens_on_loopback_only(guarded_server):
    psutil = pytest.importorskip("psutil")
    addresses = {c.laddr.ip for c in psutil.Process(guarded_server.process.pid).net_connections(kind="inet")
                 if c.status == psutil.CONN_LISTEN}
    assert addresses == {"127.0.0.1"}


def test_loopback_is_the_default_of_the_cli_and_the_config():
    from datapruner.cli import build_parser
    from datapruner.cli.compress_flags import compress_config
    from datapruner.config import ServiceConfig

    args = build_parser().parse_args(["serve"])
    service = {k: getattr(args, k) for k in ("host", "port")}
    assert compress_config(args, service=service).service.host == "127.0.0.1" == ServiceConfig().host
