"""HTTP service for context compression (FastAPI + uvicorn, the optional ``serve`` extra).

    datapruner serve --config configs/serve.yaml            # docs/service.md

Everything that decides what code runs is fixed when the server starts, from a compression config
(:class:`~datapruner.config.CompressConfig`): the methods a request may choose (the allow-list,
:mod:`datapruner.service.plan`), their params and models, the tokenizer and the options. A request
brings the data, optionally a budget, a method from the allow-list by name and a shorter deadline
(:mod:`datapruner.service.request`).

Endpoints
---------
``POST /v1/compress``  JSON ``{"query", "passages", "target_tokens" | "rate" | "threshold",
    "method", "timeout_s"}`` (only the first two are required). Returns the result as JSON
    (``text``, ``units``, ``passage_scores``, ``tokens_before``, ``tokens_after``, ``method``,
    ``budget``, ``ratio``) plus ``latency_ms``.
``GET /healthz``  status, version, the default compressor, budget, allowed methods and their
    models, request fields, and each lane's queue and workers.

With a token (``serve --token`` or ``$DATAPRUNER_TOKEN``) every endpoint needs
``Authorization: Bearer <token>`` (401 otherwise). Errors are JSON ``{"error": {"type", "field",
"message", ...}}``: 400 not JSON, 401 no or wrong token, 413 a size limit (body, passages,
characters per passage, total tokens; the limit and the value are named), 415 not
``application/json``, 422 a field with a bad type or value, 503 queue full or workers restarting
(with ``Retry-After``) or a model that cannot load, 504 the deadline passed (queued: never
started; running: stopped, its worker replaced).

Compressions run in worker processes behind bounded queues, one lane for the cheap methods and
one for the costly ones (:mod:`datapruner.service.workers`).
"""

# No `from __future__ import annotations`: FastAPI reads the endpoint's annotations (Request) at runtime.
import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import Any, Mapping

from datapruner import __version__
from datapruner.config import CompressConfig, as_compress_config, override_budget
from datapruner.errors import ConfigError, ModelLoadError, require_extra
from datapruner.service.auth import authorized
from datapruner.service.plan import describe_plan, serving_plan
from datapruner.service.request import REQUEST_FIELDS, RequestError, limit_error, parse_request
from datapruner.service.workers import DeadlinePassed, Job, LaneRunner, LaneUnavailable, QueueFull, WorkerLost

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def create_app(config: CompressConfig | Mapping[str, Any] | str | Path | None = None, *,
               token: str | None = None, warmup: bool = False):
    """Build the FastAPI app; its worker processes start with the app (ASGI lifespan).

    Parameters
    ----------
    config : a :class:`~datapruner.config.CompressConfig`, its mapping or a YAML file (None: the
        defaults). ``compress`` gives the default method, its options and budget, ``service``
        the allow-list, models, limits, workers and queues, ``models.threads`` the threads.
    token : the bearer token every request must carry (None: no token).
    warmup : wait until every worker has loaded its models before accepting requests.

    Raises
    ------
    ConfigError : a bad config value (before the server listens).
    MissingExtraError : fastapi is not installed.
    """
    fastapi = require_extra("fastapi", "serve")
    from fastapi import Request
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from datapruner.pipelines.compress import Compressor
    from datapruner.pipelines.token_count import count_tokens

    cfg = as_compress_config(config)
    limits = cfg.service
    plan = serving_plan(cfg)
    compressors = {m: Compressor(**o) for m, o in plan.options.items()}  # validated; no model loads here
    default_budget = cfg.budget()
    for method, compressor in compressors.items():  # a default budget a served method cannot take fails now
        try:
            compressor.budget_mode(**default_budget)
        except ConfigError as exc:
            raise ConfigError("service.methods", method, f"a method that accepts the configured budget ({exc})") from None
    runners = {lane.name: LaneRunner(lane, {m: plan.options[m] for m in lane.methods}, max_queue=limits.max_queue)
               for lane in plan.lanes}

    def error(exc: RequestError, headers: dict[str, str] | None = None):
        return JSONResponse(status_code=exc.status, content=exc.body(), headers=headers)

    def retry_later(status: int, kind: str, message: str):
        return error(RequestError(status, kind, None, message, retry_after_s=limits.retry_after_s),
                     headers={"Retry-After": str(limits.retry_after_s)})

    @contextlib.asynccontextmanager
    async def lifespan(app):
        for runner in runners.values():
            await runner.start()
        try:  # the budget tokenizer counts every request's tokens here, before it is queued
            await asyncio.to_thread(count_tokens, ["warm up"], tokenizer=cfg.compress.tokenizer)
        except ModelLoadError as exc:
            log.error("the budget tokenizer cannot be loaded; every request will get a 503: %s", exc)
        if warmup:
            await asyncio.gather(*(r.ready.wait() for r in runners.values()))
        yield
        for runner in runners.values():
            await runner.stop()

    app = fastapi.FastAPI(title="datapruner compression service", version=__version__, lifespan=lifespan)
    app.state.runners = runners
    app.state.plan = plan

    @app.middleware("http")
    async def require_token(request: Request, call_next):
        if not authorized(request.headers.get("authorization"), token):
            given = "no Authorization header" if "authorization" not in request.headers else "a wrong token"
            return error(RequestError(401, "unauthorized", "Authorization", f"{given}; send 'Authorization: Bearer "
                                      "<token>' with the token the server was started with"),
                         headers={"WWW-Authenticate": "Bearer"})
        return await call_next(request)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, exc):
        return error(RequestError(exc.status_code, "http_error", None, f"{exc.detail}: {request.method} {request.url.path}; "
                                  "the endpoints are POST /v1/compress and GET /healthz"))

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok", "version": __version__, "compressor": compressors[plan.default_method].describe(),
                "budget": default_budget, "request_fields": list(REQUEST_FIELDS), **describe_plan(plan),
                "lanes": {name: r.describe() for name, r in runners.items()}}

    @app.post("/v1/compress")
    async def compress_endpoint(request: Request):
        arrived = time.monotonic()
        try:
            body = await read_body(request, limits.max_request_bytes)
            req = parse_request(body, limits=limits, methods=plan.methods, default_method=plan.default_method)
            budget = override_budget(default_budget, req.budget)
            try:
                compressors[req.method].budget_mode(**budget)
            except ConfigError as exc:
                raise RequestError(422, "invalid_field", exc.key, str(exc)) from None
            tokens = await asyncio.to_thread(count_tokens, [req.query, *req.passages], tokenizer=cfg.compress.tokenizer)
            if tokens > limits.max_total_tokens:
                raise limit_error("max_total_tokens", "passages", tokens, limits.max_total_tokens,
                                  "the query and passages have too many tokens")
        except RequestError as exc:
            return error(exc)
        except ModelLoadError as exc:
            return error(RequestError(503, "model_unavailable", None, str(exc)))
        runner = runners[plan.lane_of(req.method).name]
        job = Job(req.method, req.query, req.passages, budget, deadline=arrived + req.timeout_s)
        try:
            reply = await runner.submit(job)
        except QueueFull:
            return retry_later(503, "overloaded", f"the {runner.lane.name} queue is full ({limits.max_queue} requests "
                               f"waiting, service.max_queue); retry after {limits.retry_after_s} s")
        except DeadlinePassed as exc:
            what = ("it was stopped and its worker replaced" if exc.started else
                    "it waited in the queue and never started")
            return retry_later(504, "timeout", f"the request passed its deadline of {req.timeout_s:g} s (timeout_s): "
                               f"{what}; send fewer or shorter passages, or retry when the server is less busy")
        except WorkerLost as exc:
            return retry_later(503, "worker_lost", f"{exc}; retry")
        except LaneUnavailable as exc:
            return error(RequestError(503, "model_unavailable", None, str(exc)))
        if reply[0] == "error":
            _, status, kind, message, field = reply
            return error(RequestError(status, kind, field, message))
        out = reply[1]
        out["latency_ms"] = round(1000 * (time.monotonic() - arrived), 1)
        return out

    return app


async def read_body(request, max_bytes: int) -> bytes:
    """The request body, refused (413) above `max_bytes` before it is all read, or (415) when not JSON."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise limit_error("max_request_bytes", "body", int(declared), max_bytes, "the request body has too many bytes")
    body = bytearray()
    async for piece in request.stream():
        body.extend(piece)
        if len(body) > max_bytes:
            raise limit_error("max_request_bytes", "body", len(body), max_bytes, "the request body has too many bytes")
    ctype = request.headers.get("content-type", "")
    if ctype and "json" not in ctype:
        raise RequestError(415, "unsupported_media_type", "content-type",
                           f"content-type {ctype!r}; send the body as application/json")
    return bytes(body)


def serve(config: CompressConfig | Mapping[str, Any] | str | Path | None = None, *, token: str | None = None,
          warmup: bool = False, log_level: str = "info") -> None:
    """Run the service with uvicorn on ``service.host``:``service.port`` until interrupted.

    Parameters
    ----------
    config, token, warmup : see :func:`create_app`.
    log_level : uvicorn's log level.
    """
    uvicorn = require_extra("uvicorn", "serve")
    cfg = as_compress_config(config)
    if cfg.service.host not in LOOPBACK and token is None:
        log.warning("listening on %s without a token: anyone who can reach this address can use the service; "
                    "set --token or $DATAPRUNER_TOKEN (docs/service.md, Security)", cfg.service.host)
    uvicorn.run(create_app(cfg, token=token, warmup=warmup), host=cfg.service.host, port=cfg.service.port,
                log_level=log_level, limit_concurrency=cfg.service.max_connections)
