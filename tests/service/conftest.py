"""Real `datapruner serve` processes on 127.0.0.1, started once per test session and shared.

``running_server(config, token=...)`` writes the config to a YAML file, starts the CLI in a
subprocess on a free loopback port and waits (bounded) until every worker has loaded its models.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from datapruner.service.server_process import free_port, stop_server

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")
pytest.importorskip("fastapi")

START_TIMEOUT_S = 300  # a loaded CI machine spawns and warms up the workers slowly
TOKEN = "s3cret-test-token"


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    token: str | None

    def headers(self, token: str | None = "default") -> dict[str, str]:
        token = self.token if token == "default" else token
        return {"authorization": f"Bearer {token}"} if token else {}

    def post(self, body=None, *, content: bytes | None = None, headers=None, timeout: float = 120, token="default"):
        headers = {"content-type": "application/json", **self.headers(token), **(headers or {})}
        if content is None:
            return httpx.post(self.url + "/v1/compress", json=body, headers=headers, timeout=timeout)
        return httpx.post(self.url + "/v1/compress", content=content, headers=headers, timeout=timeout)

    def health(self) -> dict:
        r = httpx.get(self.url + "/healthz", headers=self.headers(), timeout=10)
        r.raise_for_status()
        return r.json()

    def wait_until_ready(self, timeout_s: float = START_TIMEOUT_S) -> dict:
        """Wait until every worker of every lane is ready (or a lane is unavailable); the health."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"datapruner serve exited with {self.process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                health = self.health()
                lanes = health["lanes"].values()
                if all(lane["unavailable"] or all(w["state"] == "ready" for w in lane["workers"]) for lane in lanes):
                    return health
            time.sleep(0.5)
        raise RuntimeError(f"datapruner serve was not ready within {timeout_s} s")


def cli_path() -> str:
    """The `datapruner` console script of this interpreter's environment."""
    beside = Path(sys.executable).parent / "datapruner"
    found = str(beside) if beside.exists() else shutil.which("datapruner")
    if not found:
        pytest.skip("the datapruner console script is not installed (pip install -e .)")
    return found


@contextlib.contextmanager
def running_server(tmp_dir: Path, config: dict, *, token: str | None = None, args: tuple[str, ...] = ()):
    """A `datapruner serve` subprocess with `config` (a compression config mapping), ready."""
    port = free_port()
    config = {**config, "service": {**config.get("service", {}), "port": port}}
    path = tmp_dir / f"serve-{port}.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "DATAPRUNER_TOKEN"}
    if token:
        env["DATAPRUNER_TOKEN"] = token
    cmd = [cli_path(), "serve", "--config", str(path), *args]
    process = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    server = Server(f"http://127.0.0.1:{port}", process, token)
    try:
        server.wait_until_ready()
        yield server
    finally:
        stop_server(process)


GUARDED = {  # cheap methods only, small limits, a token: the bad-request and security tests
    "compress": {"method": "lead", "rate": 0.5},
    "service": {"methods": ["bm25"], "workers": 1, "max_request_bytes": 20_000, "max_passages": 5,
                "max_passage_chars": 2_000, "max_total_tokens": 1_500, "timeout_s": 60},
}


@pytest.fixture(scope="session")
def guarded_server(tmp_path_factory):
    """`datapruner serve` with :data:`GUARDED` and the token :data:`TOKEN` (from $DATAPRUNER_TOKEN)."""
    with running_server(tmp_path_factory.mktemp("guarded"), GUARDED, token=TOKEN) as server:
        yield server


@pytest.fixture(scope="session")
def start_server():
    """:func:`running_server`, for a module that needs a server of its own."""
    return running_server
