"""The `datapruner` command. Each subcommand lives in its own module under `datapruner/cli/`.

A subcommand module defines `register(subparsers)`, which adds its parser and sets
`func=run` with `run(args) -> int`. Heavy imports happen inside `run`, so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from datapruner import __version__
from datapruner.errors import DataprunerError

# Order here is the order in `datapruner --help`.
COMMAND_MODULES = [
    "datapruner.cli.run_cmd",
    "datapruner.cli.report_cmd",
    "datapruner.cli.prune_cmd",
    "datapruner.cli.info_cmd",
    "datapruner.cli.train_pruner_cmd",
    "datapruner.cli.fit_fusion_cmd",
    "datapruner.cli.compress_cmd",
    "datapruner.cli.serve_cmd",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="datapruner",
        description="Score, select and audit training data; compress RAG contexts under a token budget.",
    )
    parser.add_argument("--version", action="version", version=f"datapruner {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # The libraries underneath draw their own tqdm bars; the CLI reports progress through one API.
    os.environ.setdefault("TQDM_DISABLE", "1")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except DataprunerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
