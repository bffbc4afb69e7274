"""HTTP service for context compression (FastAPI + uvicorn, the optional ``serve`` extra).

    datapruner serve --config configs/rag-compress.yaml --port 8000

The service builds ONE :class:`~datapruner.pipelines.compress.Compressor` when it starts, from a
compression config (:class:`~datapruner.config.CompressConfig`: the method, its params and the
options are fixed for the life of the server, and so are the models they load); a request brings
the data and, optionally, its own budget.

Endpoints
---------
``POST /v1/compress``  JSON body with ``query`` (string), ``passages`` (list of strings) and
    optionally ``target_tokens``, ``rate`` or ``threshold`` (:data:`REQUEST_FIELDS`). A budget in
    the request replaces the configured one (:func:`datapruner.config.override_budget`); any other
    field is a 400 naming it. Returns the result as JSON (``text``, ``units``,
    ``passage_scores``, ``tokens_before``, ``tokens_after``, ``method``, ``budget``, ``ratio``)
    plus ``latency_ms``.
``GET /healthz``  ``{"status": "ok", "version": ..., "compressor": Compressor.describe(),
    "budget": the configured budget, "request_fields": [...]}``.

Errors are JSON ``{"error": {"type": ..., "message": ...}}``: 400 for bad input or options, 413
for a body above ``service.max_request_bytes`` or more than ``service.max_passages`` passages, 415
for a non-JSON body, 503 when a model cannot be loaded, 504 when a request takes longer than
``service.timeout_s``. Requests are computed one at a time in a worker thread (the CPU is the
bottleneck); the timeout includes the wait in that queue. A request that times out gets its 504
at once, but its computation cannot be interrupted and finishes in the background before the next
request starts.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoint's annotations (Request) at runtime.
import asyncio
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Mapping

from datapruner import __version__
from datapruner.config import BUDGET_KEYS, CompressConfig, as_compress_config, override_budget
from datapruner.errors import DataprunerError, ModelLoadError, require_extra

log = logging.getLogger(__name__)

REQUEST_FIELDS = ("query", "passages", *BUDGET_KEYS)


def _error(status: int, kind: str, message: str):
    from fastapi.responses import JSONResponse

    return JSONResponse(status_code=status, content={"error": {"type": kind, "message": message}})


def _check_request(payload: Any, max_passages: int):
    """(status, type, message) of a request body that cannot be served, or None."""
    if not isinstance(payload, dict):
        return 400, "invalid_request", "body must be a JSON object with 'query' and 'passages'"
    unknown = sorted(set(payload) - set(REQUEST_FIELDS))
    if unknown:
        return 400, "invalid_request", (
            f"field {unknown[0]!r} (value {payload[unknown[0]]!r}) cannot be set per request; allowed fields: "
            f"{', '.join(REQUEST_FIELDS)} (the method, its params and the options are fixed when the server starts)")
    missing = [k for k in ("query", "passages") if k not in payload]
    if missing:
        return 400, "invalid_request", f"missing field(s) {missing}; send 'query' (string) and 'passages' (list of strings)"
    passages = payload["passages"]
    if isinstance(passages, list) and len(passages) > max_passages:
        return 413, "too_many_passages", f"{len(passages)} passages; the limit is {max_passages}"
    return None


def create_app(config: CompressConfig | Mapping[str, Any] | str | Path | None = None, *, warmup: bool = False):
    """Build the FastAPI app and its one compressor.

    Parameters
    ----------
    config : a :class:`~datapruner.config.CompressConfig`, its mapping or a YAML file (None: the
        defaults). ``compress`` builds the compressor and gives the default budget, ``service``
        the limits, ``models.threads`` the threads.
    warmup : compress one small request before returning, so the method's models are loaded
        before the first real request.

    Raises
    ------
    ConfigError : a bad config value (before the server listens).
    MissingExtraError : fastapi is not installed.
    """
    fastapi = require_extra("fastapi", "serve")
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from datapruner.pipelines.compress import Compressor

    cfg = as_compress_config(config)
    limits = cfg.service
    compressor = Compressor(**cfg.compressor_options())
    default_budget = cfg.budget()
    compressor.budget_mode(**default_budget)  # a bad default budget fails at start-up
    if warmup:
        compressor.compress("warm up", ["The service is warming up its models."], **default_budget)
    app = fastapi.FastAPI(title="datapruner compression service", version=__version__)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="datapruner-compress")
    app.state.executor = executor
    app.state.compressor = compressor

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request, exc):
        return _error(exc.status_code, "http_error", str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request, exc):
        return _error(400, "validation_error", str(exc.errors()))

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok", "version": __version__, "compressor": compressor.describe(),
                "budget": default_budget, "request_fields": list(REQUEST_FIELDS)}

    @app.post("/v1/compress")
    async def compress_endpoint(request: Request):
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limits.max_request_bytes:
            return _error(413, "request_too_large",
                          f"request body has {declared} bytes; the limit is {limits.max_request_bytes}")
        body = bytearray()
        async for piece in request.stream():
            body.extend(piece)
            if len(body) > limits.max_request_bytes:
                return _error(413, "request_too_large",
                              f"request body exceeds the limit of {limits.max_request_bytes} bytes")
        ctype = request.headers.get("content-type", "")
        if ctype and "json" not in ctype:
            return _error(415, "unsupported_media_type", f"content-type {ctype!r}; send application/json")
        try:
            payload = json.loads(body or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return _error(400, "invalid_json", f"body is not valid JSON: {exc}")
        problem = _check_request(payload, limits.max_passages)
        if problem:
            return _error(*problem)
        budget = override_budget(default_budget, payload)
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(
            executor, lambda: compressor.compress(payload["query"], payload["passages"], **budget))
        try:
            result = await asyncio.wait_for(asyncio.shield(future), timeout=limits.timeout_s)
        except asyncio.TimeoutError:
            return _error(504, "timeout", f"compression took longer than {limits.timeout_s} s; send fewer or shorter passages")
        except ModelLoadError as exc:
            return _error(503, "model_unavailable", str(exc))
        except DataprunerError as exc:
            return _error(400, type(exc).__name__, str(exc))
        except Exception as exc:  # a bug, not bad input: log it, answer JSON
            log.exception("compression failed")
            return _error(500, "internal_error", f"{type(exc).__name__}: {exc}")
        out = result.to_dict()
        out["latency_ms"] = round(1000 * (time.perf_counter() - started), 1)
        return out

    return app


def serve(config: CompressConfig | Mapping[str, Any] | str | Path | None = None, *, warmup: bool = False,
          log_level: str = "info") -> None:
    """Run the service with uvicorn on ``service.host``:``service.port`` until interrupted.

    Parameters
    ----------
    config, warmup : see :func:`create_app`.
    log_level : uvicorn's log level.
    """
    uvicorn = require_extra("uvicorn", "serve")
    cfg = as_compress_config(config)
    uvicorn.run(create_app(cfg, warmup=warmup), host=cfg.service.host, port=cfg.service.port, log_level=log_level)
