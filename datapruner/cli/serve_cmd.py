"""`datapruner serve`: the compression HTTP service (needs the `serve` extra: fastapi, uvicorn)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("serve", help="run the compression HTTP service (POST /v1/compress, GET /healthz)")
    p.add_argument("--host", default=None, help="default 127.0.0.1")
    p.add_argument("--port", type=int, default=None, help="default 8000")
    p.add_argument("--timeout", type=float, default=None, help="per-request time limit in seconds (default 30)")
    p.add_argument("--max-request-bytes", type=int, default=None, help="largest request body (default 1000000)")
    p.add_argument("--max-passages", type=int, default=None, help="most passages per request (default 1000)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default 1)")
    p.add_argument("--config", default=None, help="YAML config; its compress section gives request defaults")
    p.add_argument("--warmup", action="store_true", help="load the default method's models before serving")
    p.set_defaults(func=run)


def run(args) -> int:
    from datapruner.errors import ConfigError
    from datapruner.models import set_threads
    from datapruner.pipelines.compress_batch_job import load_compress_config
    from datapruner.service.app import DEFAULT_MAX_PASSAGES, DEFAULT_MAX_REQUEST_BYTES, DEFAULT_TIMEOUT_S, serve

    conf = load_compress_config(args.config) if args.config else {"compress": {}, "service": {}}
    svc = conf["service"]
    host = args.host or svc.get("host", "127.0.0.1")
    port = args.port or svc.get("port", 8000)
    timeout = args.timeout or svc.get("timeout_s", DEFAULT_TIMEOUT_S)
    if timeout <= 0:
        raise ConfigError("timeout", timeout, "a number of seconds > 0")
    set_threads(args.threads or svc.get("threads") or 1)
    defaults = dict(conf["compress"])
    if args.warmup:
        from datapruner.pipelines.compress import compress

        compress("warm up", ["The service is warming up its models."], **defaults)
    serve(host=host, port=int(port), timeout_s=float(timeout), defaults=defaults,
          max_request_bytes=args.max_request_bytes or svc.get("max_request_bytes", DEFAULT_MAX_REQUEST_BYTES),
          max_passages=args.max_passages or svc.get("max_passages", DEFAULT_MAX_PASSAGES))
    return 0
