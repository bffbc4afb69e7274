"""`datapruner compress` (one query, print the compressed text) and `datapruner compress-batch` (Parquet)."""

from __future__ import annotations

import argparse


def _add_compress_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("compression (flags override the config file)")
    g.add_argument("--method", default=None, help="mig | perplexity | seqlabel | hybrid (baselines: random, lead); default mig")
    budget = g.add_mutually_exclusive_group()
    budget.add_argument("--target-tokens", type=int, default=None, help="hard cap in tokens")
    budget.add_argument("--rate", type=float, default=None, help="hard cap as a fraction of the input tokens, in (0, 1]")
    g.add_argument("--threshold", type=float, default=None, help="with no budget: the method's keep threshold")
    g.add_argument("--tokenizer", default=None, help="tokenizer that counts the budget (default bundled-smollm2)")
    g.add_argument("--reorder", choices=["relevance"], default=None, help="order passages by relevance")
    g.add_argument("--force-keep", action="append", default=None, metavar="PATTERN",
                   help="keep units matching 'numbers', 'entities' or a regex (repeatable)")
    g.add_argument("--content", choices=["text", "code"], default=None, help="text (sentences) or code (functions, statements)")
    g.add_argument("--language", default=None, help="code language (python uses ast; others a blank-line fallback)")
    g.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="any other compress option, e.g. mig_temperature=0.2 or seqlabel_model=/models/provence")
    g.add_argument("--config", default=None, help="YAML config (see configs/rag-compress.yaml)")
    g.add_argument("--threads", type=int, default=None, help="torch threads (default: 1)")


def register(sub) -> None:
    p = sub.add_parser("compress", help="compress passages for a query under a token budget; prints the text")
    p.add_argument("--query", required=True, help="the question the context should answer")
    p.add_argument("--passages", required=True, metavar="FILE",
                   help="a .json list of strings, a .jsonl file (strings or {\"text\": ...}), or a text file "
                        "(passages separated by blank lines; with --content code the whole file); '-' reads stdin")
    p.add_argument("--json", action="store_true", help="print the whole result as JSON instead of the text")
    _add_compress_options(p)
    p.set_defaults(func=run)

    b = sub.add_parser("compress-batch", help="compress a Parquet file of query + passages rows (resumable)")
    b.add_argument("--input", default=None, help="Parquet file (or batch.input in the config)")
    b.add_argument("--out", default=None, help="output folder (or batch.out in the config)")
    b.add_argument("--query-column", default=None, help="default: query")
    b.add_argument("--passages-column", default=None, help="default: passages")
    b.add_argument("--rows-per-shard", type=int, default=None, help="rows per resumable shard (default 256)")
    b.add_argument("--batch-pairs", type=int, default=None, help="pairs per batched model call (default 16)")
    b.add_argument("--overwrite", action="store_true", help="start again instead of resuming")
    _add_compress_options(b)
    b.set_defaults(func=run_batch)


def _options(args) -> tuple[dict, dict]:
    """(compress options, config dict) from the config file, then the flags on top."""
    import yaml

    from datapruner.errors import ConfigError
    from datapruner.pipelines.compress_batch_job import load_compress_config

    conf = load_compress_config(args.config) if args.config else {"compress": {}, "batch": {}, "service": {}}
    opts = dict(conf["compress"])
    flags = {"method": args.method, "target_tokens": args.target_tokens, "rate": args.rate, "threshold": args.threshold,
             "tokenizer": args.tokenizer, "reorder": args.reorder, "force_keep": args.force_keep,
             "content": args.content, "language": args.language}
    if args.target_tokens is not None:
        opts.pop("rate", None)
    if args.rate is not None:
        opts.pop("target_tokens", None)
    opts.update({k: v for k, v in flags.items() if v is not None})
    for item in args.option:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ConfigError("--option", item, "KEY=VALUE, e.g. mig_temperature=0.2")
        opts[key] = yaml.safe_load(value)
    return opts, conf


def _set_threads(args, conf: dict) -> None:
    from datapruner.models import set_threads

    set_threads(args.threads or conf.get("service", {}).get("threads") or 1)


def _read_passages(path: str, content: str | None) -> list[str]:
    import json
    import sys
    from pathlib import Path

    from datapruner.errors import InputDataError

    if path == "-":
        text, suffix = sys.stdin.read(), ""
    else:
        p = Path(path)
        if not p.is_file():
            raise InputDataError(f"--passages {path!r} is not a file")
        text, suffix = p.read_text(encoding="utf-8"), p.suffix.lower()
    if suffix == ".json":
        data = json.loads(text)
        if isinstance(data, dict):
            data = data.get("passages")
        if not isinstance(data, list):
            raise InputDataError(f"{path}: expected a JSON list of strings or {{\"passages\": [...]}}")
        return [x["text"] if isinstance(x, dict) and "text" in x else x for x in data]
    if suffix == ".jsonl":
        out = []
        for n, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                row = json.loads(line)
                if isinstance(row, dict):
                    if "text" not in row:
                        raise InputDataError(f"{path}:{n}: a JSON object needs a 'text' field")
                    row = row["text"]
                out.append(row)
        return out
    if content == "code":
        return [text]
    return [block.strip() for block in text.split("\n\n") if block.strip()]


def run(args) -> int:
    import json

    from datapruner.pipelines.compress import compress

    opts, conf = _options(args)
    _set_threads(args, conf)
    passages = _read_passages(args.passages, opts.get("content"))
    result = compress(args.query, passages, **opts)
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(result.text)
    return 0


def run_batch(args) -> int:
    from datapruner.errors import ConfigError
    from datapruner.pipelines.compress_batch_job import run_compress_batch

    opts, conf = _options(args)
    _set_threads(args, conf)
    job = dict(conf["batch"])
    flags = {"input": args.input, "out": args.out, "query_column": args.query_column,
             "passages_column": args.passages_column, "rows_per_shard": args.rows_per_shard,
             "batch_pairs": args.batch_pairs}
    job.update({k: v for k, v in flags.items() if v is not None})
    if args.overwrite:
        job["overwrite"] = True
    for key in ("input", "out"):
        if not job.get(key):
            raise ConfigError(key, None, f"--{key} PATH (or batch.{key} in the config)")
    result = run_compress_batch(**job, **opts)
    ratio = f"{result.tokens_before / result.tokens_after:.2f}x" if result.tokens_after else "inf"
    print(f"rows: {result.n_rows}  shards: {result.n_shards} ({result.shards_skipped} already done)  "
          f"tokens: {result.tokens_before} -> {result.tokens_after} ({ratio})  {result.seconds:.1f} s")
    print(f"output:   {result.out_dir / 'shards'}")
    print(f"manifest: {result.manifest_path}")
    return 0
