"""`datapruner prune` and `datapruner score`: one-line curation without a config file."""

from __future__ import annotations

from datapruner.cli.common import add_input_flags, add_model_flags


def register(sub) -> None:
    p = sub.add_parser(
        "prune",
        help="score and prune a file in one command",
        description="Score every row, keep a fraction by one score, write pruned/, scores.parquet and manifest.json. "
        "Example: datapruner prune --input data.parquet --scorer perplexity --keep 0.5 --band middle --out out/",
    )
    add_input_flags(p)
    g = p.add_argument_group("selection")
    g.add_argument("--keep", type=float, required=True, help="fraction of rows to keep, in (0, 1]")
    g.add_argument("--band", choices=["bottom", "middle", "top"], default=None, help="keep a band of the score distribution")
    g.add_argument("--direction", choices=["high", "low"], default="high", help="without --band: keep the highest or lowest scores")
    g.add_argument("--offset", type=float, default=0.0, help="without --band: skip this top fraction first")
    g.add_argument("--score-column", default=None, help="score column to select by (default: the first scorer's name)")
    p.add_argument("--with-scores", action="store_true", help="append score columns to pruned/")
    add_model_flags(p)
    p.set_defaults(func=run_prune)

    s = sub.add_parser("score", help="score every row, no selection", description="Write scores.parquet only.")
    add_input_flags(s)
    add_model_flags(s)
    s.set_defaults(func=run_score)


def _selection(args) -> list[dict]:
    column = args.score_column or args.scorer[0]
    if args.band:
        return [{"policy": "band", "score": column, "keep": args.keep, "band": args.band}]
    rule = {"policy": "top_fraction", "score": column, "keep": args.keep, "direction": args.direction}
    if args.offset:
        rule["offset"] = args.offset
    return [rule]


def run_prune(args) -> int:
    from datapruner.cli.common import config_from_flags, print_result
    from datapruner.pipelines.curate import curate

    print_result(curate(config_from_flags(args, _selection(args))))
    return 0


def run_score(args) -> int:
    from datapruner.cli.common import config_from_flags
    from datapruner.pipelines.curate import score

    print(f"scores: {score(config_from_flags(args, []))}")
    return 0
