"""`datapruner prune` and `datapruner score`: one-line curation without a config file."""

from __future__ import annotations

from datapruner.cli.common import add_input_flags, add_model_flags


def register(sub) -> None:
    p = sub.add_parser(
        "prune",
        help="score and prune a file in one command",
        description="Score every row, keep a fraction by one score (or by a named recipe), write pruned/, scores.parquet and "
        "manifest.json. Examples: datapruner prune --input data.parquet --scorer perplexity --keep 0.5 --band middle --out out/ ; "
        "datapruner prune --input train.csv --label-column label --recipe recommended --keep 0.3 --out out/",
    )
    add_input_flags(p, scorer_required=False)
    g = p.add_argument_group("selection")
    g.add_argument("--keep", type=float, required=True, help="fraction of rows to keep, in (0, 1] (with --recipe: of every input row)")
    g.add_argument("--recipe", default=None, help="a named selection chain instead of one score: 'recommended' "
                   "(drop label issues, never below the budget, then coverage over EL2N per class; docs/selection.md)")
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


def _selection(args) -> tuple[list[dict], dict[str, dict]]:
    """(selection chain, scorer parameters) of the flags; with --recipe, the recipe's chain, and the scorers it
    reads are added to `args.scorer` with the recipe's parameters (``--param`` still overrides them)."""
    from datapruner.errors import ConfigError

    if args.recipe is not None:
        from datapruner.pipelines.recipes import recipe_parts

        for flag, value, default in (("--band", args.band, None), ("--direction", args.direction, "high"),
                                     ("--offset", args.offset, 0.0), ("--score-column", args.score_column, None)):
            if value != default:
                raise ConfigError(flag, value, "no value together with --recipe (the recipe fixes the selection)")
        if args.label_column is None:
            raise ConfigError("--label-column", None, f"the label column: recipe {args.recipe!r} reads class labels")
        scorers, selection = recipe_parts(args.recipe, args.keep)
        args.scorer = [*args.scorer, *(s for s in scorers if s not in args.scorer)]
        return selection, scorers
    if not args.scorer:
        raise ConfigError("--scorer", None, "at least one scorer (see `datapruner info`), or --recipe")
    column = args.score_column or args.scorer[0]
    if args.band:
        return [{"policy": "band", "score": column, "keep": args.keep, "band": args.band}], {}
    rule = {"policy": "top_fraction", "score": column, "keep": args.keep, "direction": args.direction}
    if args.offset:
        rule["offset"] = args.offset
    return [rule], {}


def run_prune(args) -> int:
    from datapruner.cli.common import config_from_flags, print_result
    from datapruner.pipelines.curate import curate

    selection, scorer_params = _selection(args)
    print_result(curate(config_from_flags(args, selection, scorer_params=scorer_params)))
    return 0


def run_score(args) -> int:
    from datapruner.cli.common import config_from_flags
    from datapruner.pipelines.curate import score

    print(f"scores: {score(config_from_flags(args, []))}")
    return 0
