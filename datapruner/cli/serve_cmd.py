"""`datapruner serve`: the compression HTTP service (needs the `serve` extra: fastapi, uvicorn).

One compressor is built when the server starts, from ``--config`` and the compression flags; a
request sets only query, passages and optionally its budget.
"""

from __future__ import annotations

from datapruner.cli.compress_flags import add_compress_parser, compress_config


def register(sub) -> None:
    p = add_compress_parser(sub, "serve", help="run the compression HTTP service (POST /v1/compress, GET /healthz)",
                            description=__doc__)
    g = p.add_argument_group("service (config section service:)")
    g.add_argument("--host", default=None, help="default 127.0.0.1")
    g.add_argument("--port", type=int, default=None, help="default 8000")
    g.add_argument("--timeout-s", type=float, default=None, help="per-request time limit in seconds (default 30)")
    g.add_argument("--max-request-bytes", type=int, default=None, help="largest request body (default 1000000)")
    g.add_argument("--max-passages", type=int, default=None, help="most passages per request (default 1000)")
    g.add_argument("--warmup", action="store_true", help="load the method's models before serving")
    p.set_defaults(func=run)


def run(args) -> int:
    from datapruner.service.app import serve

    service = {"host": args.host, "port": args.port, "timeout_s": args.timeout_s,
               "max_request_bytes": args.max_request_bytes, "max_passages": args.max_passages}
    serve(compress_config(args, service=service), warmup=args.warmup)
    return 0
