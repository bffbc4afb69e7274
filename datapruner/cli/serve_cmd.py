"""`datapruner serve`: the compression HTTP service (needs the `serve` extra: fastapi, uvicorn).

Everything that decides which code and models run is fixed when the server starts: the methods
a request may choose (--methods, the allow-list), their models (--embedder, --lm,
--seqlabel-model), the tokenizer and options (--config and the compression flags). A request
sets only query, passages, optionally its budget, a method from the allow-list by name, and a
shorter deadline. Listens on 127.0.0.1 unless --host says otherwise; with --token (or
$DATAPRUNER_TOKEN) every request needs 'Authorization: Bearer <token>'. See docs/service.md.
"""

from __future__ import annotations

from datapruner.cli.compress_flags import add_compress_parser, compress_config

SERVICE_FLAGS = {  # flag dest -> (type, help); each sets service.<dest>
    "host": (str, "address to listen on (default 127.0.0.1: this machine only)"),
    "port": (int, "default 8000"),
    "timeout_s": (float, "per-request deadline in seconds, queue wait included (default 30)"),
    "max_request_bytes": (int, "largest request body (default 1000000)"),
    "max_passages": (int, "most passages per request (default 1000)"),
    "max_passage_chars": (int, "most characters per passage (default 50000)"),
    "max_total_tokens": (int, "most tokens of query + passages per request (default 32000)"),
    "embedder": (str, "sentence embedder of the methods that use one (mig, dense): a bundled name or folder"),
    "lm": (str, "causal LM of the methods that use one (perplexity): a bundled name or folder"),
    "seqlabel_model": (str, "model of seqlabel and hybrid: 'bundled' or a folder"),
    "workers": (int, "worker processes (default: the CPU cores)"),
    "costly_workers": (int, "of those, the workers of the costly methods (default: half)"),
    "max_queue": (int, "requests waiting per lane before 503 (default 32)"),
    "max_connections": (int, "open connections before uvicorn answers 503 (default 256)"),
}


def register(sub) -> None:
    p = add_compress_parser(sub, "serve", help="run the compression HTTP service (POST /v1/compress, GET /healthz)",
                            description=__doc__)
    g = p.add_argument_group("service (config section service:)")
    g.add_argument("--methods", default=None, metavar="NAME,NAME",
                   help="methods a request may choose with \"method\" (besides --method, the default), e.g. mig,perplexity")
    g.add_argument("--costly-methods", default=None, metavar="NAME,NAME",
                   help="methods run on their own workers (default perplexity,seqlabel,hybrid)")
    for dest, (kind, text) in SERVICE_FLAGS.items():
        g.add_argument("--" + dest.replace("_", "-"), dest=dest, type=kind, default=None, help=text)
    g.add_argument("--token", default=None,
                   help="bearer token every request must send (default $DATAPRUNER_TOKEN; unset: no token). "
                        "Prefer the environment variable: a flag is visible to other users in the process list")
    g.add_argument("--warmup", action="store_true", help="accept requests only once every worker has loaded its models")
    p.set_defaults(func=run)


def run(args) -> int:
    from datapruner.service.app import serve
    from datapruner.service.auth import token_from_env

    service = {dest: getattr(args, dest) for dest in SERVICE_FLAGS}
    for key in ("methods", "costly_methods"):
        value = getattr(args, key)
        service[key] = None if value is None else [name.strip() for name in value.split(",") if name.strip()]
    serve(compress_config(args, service=service), token=args.token or token_from_env(), warmup=args.warmup)
    return 0
