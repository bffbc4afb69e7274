"""`datapruner run CONFIG [--out DIR]`: run a YAML curation config."""

from __future__ import annotations

from datapruner.cli.common import add_overwrite_flag, add_threads_flag


def register(sub) -> None:
    p = sub.add_parser("run", help="run a curation config (YAML)", description=__doc__)
    p.add_argument("config", help="YAML config; relative paths resolve against its folder")
    p.add_argument("--out", default=None, help="override output.dir")
    add_threads_flag(p)
    add_overwrite_flag(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from datapruner.cli.common import print_result
    from datapruner.config import load_config
    from datapruner.pipelines.curate import curate

    cfg = load_config(args.config, out=args.out)
    if args.overwrite:
        cfg.output.overwrite = True
    if args.threads is not None:
        cfg.models.threads = args.threads
        cfg.validate()
    print_result(curate(cfg))
    return 0
