"""`datapruner compress` (one query, print the compressed text) and `datapruner compress-batch` (Parquet)."""

from __future__ import annotations

from datapruner.cli.compress_flags import add_compress_parser, compress_config
from datapruner.cli.passage_files import PASSAGE_FORMATS


def register(sub) -> None:
    p = add_compress_parser(sub, "compress", help="compress passages for a query under a token budget; prints the text")
    p.add_argument("--query", required=True, help="the question the context should answer")
    p.add_argument("--passages", required=True, metavar="FILE",
                   help="a .json list (strings or {\"text\": ...}), a .jsonl file (one string or {\"text\": ...} "
                        "a line), or a text file (passages separated by blank lines; with --content code the whole "
                        "file); '-' reads stdin")
    p.add_argument("--passages-format", default="auto", choices=PASSAGE_FORMATS,
                   help="how to read --passages (default auto: by extension; for stdin, JSON when it starts "
                        "with [ or {, else text)")
    p.add_argument("--json", action="store_true", help="print the whole result as JSON instead of the text")
    p.set_defaults(func=run)

    b = add_compress_parser(sub, "compress-batch", help="compress a Parquet file of query + passages rows (resumable)")
    g = b.add_argument_group("batch job (config section batch:)")
    g.add_argument("--input", default=None, help="Parquet file (or batch.input in the config)")
    g.add_argument("--out", default=None, help="output folder (or batch.out in the config)")
    g.add_argument("--query-column", default=None, help="default: query")
    g.add_argument("--passages-column", default=None, help="default: passages")
    g.add_argument("--rows-per-shard", type=int, default=None, help="rows per resumable shard (default 256)")
    g.add_argument("--batch-pairs", type=int, default=None, help="pairs per batched model call (default 16)")
    g.add_argument("--overwrite", action="store_true", default=None, help="start again instead of resuming")
    b.set_defaults(func=run_batch)


def run(args) -> int:
    import json
    import logging

    from datapruner.cli.passage_files import read_passages
    from datapruner.pipelines.compress import Compressor

    cfg = compress_config(args)
    compressor = Compressor(**cfg.compressor_options())
    passages = read_passages(args.passages, fmt=args.passages_format, content=cfg.compress.content)
    result = compressor.compress(args.query, passages, **cfg.budget())
    if not result.text and any(p.strip() for p in passages):
        logging.getLogger(__name__).warning(
            "the compressed text is empty: %d passage(s), %d tokens in, a budget of %s tokens kept no unit; "
            "raise --target-tokens or --rate (or lower --threshold)", len(passages), result.tokens_before, result.budget)
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(result.text)
    return 0


def run_batch(args) -> int:
    from datapruner.pipelines.compress_batch_job import run_compress_batch

    batch = {"input": args.input, "out": args.out, "query_column": args.query_column,
             "passages_column": args.passages_column, "rows_per_shard": args.rows_per_shard,
             "batch_pairs": args.batch_pairs, "overwrite": args.overwrite}
    result = run_compress_batch(compress_config(args, batch=batch))
    ratio = f"{result.tokens_before / result.tokens_after:.2f}x" if result.tokens_after else "inf"
    print(f"rows: {result.n_rows}  shards: {result.n_shards} ({result.shards_skipped} already done)  "
          f"tokens: {result.tokens_before} -> {result.tokens_after} ({ratio})  {result.seconds:.1f} s")
    print(f"output:   {result.out_dir / 'shards'}")
    print(f"manifest: {result.manifest_path}")
    return 0
