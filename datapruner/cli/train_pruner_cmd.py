"""`datapruner train-pruner`: fine-tune the bundled sequence-labelling pruner (METHODS.md B1)."""

from __future__ import annotations

import argparse
import shlex

from datapruner.cli.common import add_threads_flag


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train-pruner",
        help="train the bundled sequence-labelling pruner (MiniLM + token head + rerank head)",
        description=(
            "Fine-tune the top layers of the bundled MiniLM encoder plus a token keep-head and a "
            "passage rerank head on evidence labels from HotpotQA, XQuAD and NQ-open; write "
            "pruner.safetensors and pruner.json (config, command, held-out metrics) to --out."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--data", required=True, help="folder holding the QA files (e.g. ../shared/data/qa)")
    p.add_argument("--out", required=True, help="output folder (replaced atomically)")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--random-state", type=int, default=0, help="seed of every random choice (data order, sampling, init)")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many optimizer steps")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-4, help="learning rate of the trained encoder layers")
    p.add_argument("--head-lr", type=float, default=1e-3, help="learning rate of the two heads")
    p.add_argument("--rank-weight", type=float, default=1.0, help="weight of the rerank BCE loss")
    p.add_argument("--train-layers", type=int, default=2, help="top encoder layers to fine-tune (and ship)")
    p.add_argument("--max-length", type=int, default=256, help="encoder window in tokens")
    p.add_argument("--nq-train", type=int, default=500, help="NQ-open training questions to use")
    p.add_argument("--per-source", type=int, default=None, help="cap examples per source (smoke runs)")
    p.add_argument("--no-match-feature", action="store_true",
                   help="drop the exact-match-with-query token feature (ablation)")
    p.add_argument("--no-dense-feature", action="store_true",
                   help="drop the bi-encoder query-unit cosine added to the keep logit (ablation)")
    add_threads_flag(p)
    p.add_argument("--no-eval", action="store_true", help="skip the held-out evaluation")
    p.set_defaults(func=run)


def run(args) -> int:
    import json
    import logging
    import time

    from datapruner.pipelines.train_pruner import TrainConfig, train_pruner, write_metrics

    log = logging.getLogger("datapruner.train_pruner")
    config = TrainConfig(
        epochs=args.epochs,
        random_state=args.random_state,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        lr=args.lr,
        head_lr=args.head_lr,
        rank_weight=args.rank_weight,
        n_train_layers=args.train_layers,
        max_length=args.max_length,
        nq_train=args.nq_train,
        per_source=args.per_source,
        match_feature=not args.no_match_feature,
        dense_feature=not args.no_dense_feature,
    )
    command = _command_line(args)
    t0 = time.perf_counter()
    record = train_pruner(args.data, args.out, config, command=command, threads=args.threads or 1)
    log.info("trained in %.1f s", time.perf_counter() - t0)
    if not args.no_eval:
        from datapruner.pipelines.evaluate_pruner import evaluate_pruner_folder

        t1 = time.perf_counter()
        metrics = evaluate_pruner_folder(args.data, args.out, max_length=args.max_length)
        metrics["seconds"] = round(time.perf_counter() - t1, 1)
        record = write_metrics(args.out, metrics)
    print(json.dumps({k: record.get(k) for k in ("data", "steps", "final_loss", "seconds", "heldout_metrics")}, indent=2))
    return 0


_OPTIONS = (
    "data", "out", "epochs", "random_state", "max_steps", "batch_size", "lr", "head_lr", "rank_weight",
    "train_layers", "max_length", "nq_train", "per_source", "threads",
)


def _command_line(args) -> str:
    """The full command that reproduces this run (every option spelled out), for the JSON record."""
    parts = ["datapruner", "train-pruner"]
    for name in _OPTIONS:
        value = getattr(args, name)
        if value is not None:
            parts += [f"--{name.replace('_', '-')}", shlex.quote(str(value))]
    for flag in ("no_match_feature", "no_dense_feature", "no_eval"):
        if getattr(args, flag):
            parts.append("--" + flag.replace("_", "-"))
    return " ".join(parts)
