"""HTTP service for context compression (FastAPI + uvicorn, the optional ``serve`` extra).

    datapruner serve --host 127.0.0.1 --port 8000

Endpoints
---------
``POST /v1/compress``  JSON body with the fields of :func:`datapruner.compress`: ``query``,
    ``passages`` (list of strings), and optionally ``method``, ``target_tokens``, ``rate``,
    ``threshold``, ``tokenizer``, ``reorder``, ``force_keep`` and any other compress option.
    Returns the result as JSON (``text``, ``units``, ``passage_scores``, ``tokens_before``,
    ``tokens_after``, ``method``, ``budget``, ``ratio``) plus ``latency_ms``.
``GET /healthz``  ``{"status": "ok", "version": ...}``.

Errors are JSON ``{"error": {"type": ..., "message": ...}}``: 400 for bad input or options, 413
for a body above ``max_request_bytes``, 415 for a non-JSON body, 503 when a model cannot be loaded,
504 when a request takes longer than ``timeout_s``. Requests are computed one at a time in a worker
thread (the CPU is the bottleneck); the timeout includes the wait in that queue. A request that
times out gets its 504 at once, but its computation cannot be interrupted and finishes in the
background before the next request starts.
"""


import asyncio
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from datapruner import __version__
from datapruner.errors import DataprunerError, ModelLoadError, require_extra

log = logging.getLogger(__name__)

DEFAULT_MAX_REQUEST_BYTES = 1_000_000
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MAX_PASSAGES = 1000


def _error(status: int, kind: str, message: str):
    from fastapi.responses import JSONResponse

    return JSONResponse(status_code=status, content={"error": {"type": kind, "message": message}})


def create_app(
    *,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    max_passages: int = DEFAULT_MAX_PASSAGES,
    defaults: dict[str, Any] | None = None,
):
    """Build the FastAPI app.

    Parameters
    ----------
    max_request_bytes : largest accepted request body.
    timeout_s : per-request time limit in seconds (queue wait included).
    max_passages : most passages per request.
    defaults : compress options applied when a request does not set them (e.g. from a config).
    """
    fastapi = require_extra("fastapi", "serve")
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from datapruner.pipelines.compress import compress

    defaults = dict(defaults or {})
    app = fastapi.FastAPI(title="datapruner compression service", version=__version__)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="datapruner-compress")
    app.state.executor = executor

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request, exc):
        return _error(exc.status_code, "http_error", str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request, exc):
        return _error(400, "validation_error", str(exc.errors()))

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok", "version": __version__}

    @app.post("/v1/compress")
    async def compress_endpoint(request: Request):
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_request_bytes:
            return _error(413, "request_too_large", f"request body has {declared} bytes; the limit is {max_request_bytes}")
        body = bytearray()
        async for piece in request.stream():
            body.extend(piece)
            if len(body) > max_request_bytes:
                return _error(413, "request_too_large", f"request body exceeds the limit of {max_request_bytes} bytes")
        ctype = request.headers.get("content-type", "")
        if ctype and "json" not in ctype:
            return _error(415, "unsupported_media_type", f"content-type {ctype!r}; send application/json")
        try:
            payload = json.loads(body or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return _error(400, "invalid_json", f"body is not valid JSON: {exc}")
        if not isinstance(payload, dict):
            return _error(400, "invalid_request", "body must be a JSON object with 'query' and 'passages'")
        missing = [k for k in ("query", "passages") if k not in payload]
        if missing:
            return _error(400, "invalid_request", f"missing field(s) {missing}; send 'query' (string) and 'passages' (list of strings)")
        passages = payload.get("passages")
        if isinstance(passages, list) and len(passages) > max_passages:
            return _error(413, "too_many_passages", f"{len(passages)} passages; the limit is {max_passages}")
        request_options = {k: v for k, v in payload.items() if k not in ("query", "passages")}
        base = dict(defaults)
        if "target_tokens" in request_options or "rate" in request_options:
            base.pop("target_tokens", None)  # a request's budget replaces the default budget
            base.pop("rate", None)
        options = {**base, **request_options}
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(executor, lambda: compress(payload["query"], passages, **options))
        try:
            result = await asyncio.wait_for(asyncio.shield(future), timeout=timeout_s)
        except asyncio.TimeoutError:
            return _error(504, "timeout", f"compression took longer than {timeout_s} s; send fewer or shorter passages")
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


def serve(*, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info", **app_options) -> None:
    """Run the service with uvicorn until interrupted."""
    uvicorn = require_extra("uvicorn", "serve")
    uvicorn.run(create_app(**app_options), host=host, port=port, log_level=log_level)
