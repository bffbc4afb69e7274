"""`datapruner fit-fusion`: fit the learned fusion weights of the ``fused`` method (METHODS.md B5)."""

from __future__ import annotations

import argparse
import shlex
import sys

from datapruner.cli.common import add_threads_flag


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "fit-fusion",
        help="fit the logistic fusion weights of the fused compression method on the QA training split",
        description=("Build requests from the training split of HotpotQA, XQuAD and NQ-open (never the benchmark's "
                     "held-out questions), compute the fused method's four features per unit, fit a logistic model "
                     "and write its weights as JSON (use with params={'fusion': 'learned', 'weights': OUT})."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--data", required=True, help="folder holding the QA files (e.g. ../shared/data/qa)")
    p.add_argument("--out", required=True, help="the weights JSON to write")
    p.add_argument("--per-dataset", type=int, default=70, help="training questions drawn per dataset")
    p.add_argument("--random-state", type=int, default=0, help="seed of the question draw and the solver")
    add_threads_flag(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import json

    from datapruner.pipelines.fit_fusion import fit_fusion

    command = "datapruner fit-fusion " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    weights = fit_fusion(args.data, args.out, per_dataset=args.per_dataset, random_state=args.random_state,
                         threads=args.threads or 1, command=command)
    print(json.dumps(weights, indent=1))
    return 0
