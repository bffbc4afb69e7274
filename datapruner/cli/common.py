"""Flags shared by the subcommands (``--threads`` on every one), and the curation dict config."""

from __future__ import annotations

import argparse
from typing import Any


def add_threads_flag(p) -> None:
    """``--threads N``: the one threads flag of every command (config key ``models.threads``)."""
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch threads, an integer >= 1 (overrides models.threads; default 1)")


def parse_key_value(item: str, flag: str, example: str) -> tuple[str, Any]:
    """Split ``KEY=VALUE`` from a repeatable flag; the value is parsed as YAML (``0.2`` -> float).

    Raises
    ------
    ConfigError : no ``=`` or an empty key, naming `flag` and showing `example`.
    """
    import yaml

    from datapruner.errors import ConfigError

    key, eq, value = item.partition("=")
    if not eq or not key:
        raise ConfigError(flag, item, f"KEY=VALUE, e.g. {example}")
    return key, yaml.safe_load(value)


def add_model_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("models")
    add_threads_flag(g)
    g.add_argument("--lm", default=None, help="reference causal LM: 'bundled-smollm2' or a Hugging Face folder")
    g.add_argument("--embedder", default=None, help="embedder: 'bundled-minilm' or a sentence-transformers folder")


def add_input_flags(p: argparse.ArgumentParser, *, scorer_required: bool = True) -> None:
    g = p.add_argument_group("input")
    g.add_argument("--input", required=True, help="Parquet/JSONL/CSV/TSV file, folder, glob, or saved `datasets` folder")
    g.add_argument("--format", default="auto", help="auto | parquet | jsonl | csv | tsv | hf_disk")
    g.add_argument("--text-column", default="text")
    g.add_argument("--label-column", default=None)
    g.add_argument("--id-column", default=None)
    g.add_argument("--prompt-column", default=None)
    g.add_argument("--response-column", default=None)
    g.add_argument("--batch-size", type=int, default=1024, help="rows per streamed batch")
    g.add_argument("--random-state", type=int, default=0)
    g.add_argument("--engine", default="local", help="local | ray")
    p.add_argument("--scorer", action="append", required=scorer_required, default=None if scorer_required else [],
                   help="scorer name (repeatable); see `datapruner info`")
    p.add_argument("--param", action="append", default=[], metavar="SCORER.KEY=VALUE", help="scorer parameter, e.g. perplexity.response_only=true")
    p.add_argument("--out", required=True, help="output folder")
    add_overwrite_flag(p)


def add_overwrite_flag(p) -> None:
    """``--overwrite``: replace an earlier run in the output folder (config key ``output.overwrite``)."""
    p.add_argument("--overwrite", action="store_true", default=None,
                   help="replace an earlier datapruner run in the output folder (otherwise it is refused)")


def config_from_flags(args: argparse.Namespace, selection: list[dict[str, Any]], *,
                      scorer_params: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The run config of the CLI flags; `scorer_params` (a recipe's) are each scorer's defaults under ``--param``."""
    defaults = scorer_params or {}
    params: dict[str, dict[str, Any]] = {name: dict(defaults.get(name, {})) for name in args.scorer}
    for item in args.param:
        key, value = parse_key_value(item, "--param", "perplexity.response_only=true")
        scorer, dot, name = key.partition(".")
        if scorer not in params or not name or not dot:
            from datapruner.errors import ConfigError

            raise ConfigError("--param", item, f"SCORER.KEY=VALUE with SCORER one of {args.scorer}")
        params[scorer][name] = value
    columns = {"text": args.text_column, "label": args.label_column, "id": args.id_column,
               "prompt": args.prompt_column, "response": args.response_column}
    models = {k: v for k, v in {"threads": args.threads, "lm": args.lm, "embedder": args.embedder}.items() if v is not None}
    return {
        "input": {"path": args.input, "format": args.format, "batch_size": args.batch_size,
                  "columns": {k: v for k, v in columns.items() if v is not None}},
        "output": {"dir": args.out, "with_scores": getattr(args, "with_scores", False), "overwrite": bool(args.overwrite)},
        "scorers": [{"name": n, "params": params[n]} for n in args.scorer],
        "selection": selection,
        "models": models,
        "engine": args.engine,
        "random_state": args.random_state,
    }


def print_result(result) -> None:
    print(f"rows in: {result.n_rows}  kept: {result.n_kept}  dropped: {result.n_rows - result.n_kept}")
    for reason, count in sorted(result.dropped_by_reason.items()):
        print(f"  dropped {count:>8}  {reason}")
    print(f"pruned dataset: {result.pruned_dir}")
    print(f"row audit:      {result.scores_path}")
    print(f"manifest:       {result.manifest_path}")
    print(f"report:         {result.report_path}")
