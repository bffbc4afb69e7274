"""Flags shared by the compression commands (``compress``, ``compress-batch``, ``serve``).

Every flag maps to one key of the compression config (:class:`datapruner.config.CompressConfig`);
:func:`compress_config` reads ``--config`` (if given) and puts the flags on top, so the three
commands resolve their options the same way. The registered methods and their params are listed
in each command's help, read from :mod:`datapruner.registry` when the help is shown.
"""

from __future__ import annotations

import argparse

from datapruner.cli.common import add_threads_flag, parse_key_value

METHODS_EPILOG = "<the registered compression methods>"  # replaced when the help is formatted


class MethodsHelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help formatter that writes the registered methods and their params in place of the epilog,
    so building the parser imports no method module."""

    def add_text(self, text):
        super().add_text(describe_methods() if text == METHODS_EPILOG else text)


def describe_methods() -> str:
    """Every registered compression method: its summary, its params (``params_doc``) and what
    ``--threshold`` means for it."""
    from datapruner.registry import compression_method_names, get_compression_method

    lines = ["compression methods (--method NAME; --param KEY=VALUE sets one of its params):"]
    for name in compression_method_names():
        cls = get_compression_method(name)
        summary = cls.summary or (cls.__doc__ or "").strip().splitlines()[0]
        lines.append(f"  {name:12} {summary}")
        for key, meaning in cls.params_doc.items():
            lines.append(f"      {key:16} {meaning}")
        lines.append(f"      {'(threshold)':16} {cls.threshold_doc or 'none: needs a budget (--target-tokens or --rate)'}")
    return "\n".join(lines)


def add_compress_parser(sub, name: str, **kwargs) -> argparse.ArgumentParser:
    """A subparser for a compression command: its help ends with the registered methods; it has
    the ``--config``, ``--threads`` and compression flags."""
    p = sub.add_parser(name, epilog=METHODS_EPILOG, formatter_class=MethodsHelpFormatter, **kwargs)
    p.add_argument("--config", default=None, help="YAML config (see configs/rag-compress.yaml); flags override it")
    add_threads_flag(p)
    g = p.add_argument_group("compression (config section compress:)")
    g.add_argument("--method", default=None, help="a registered method, listed below (default mig)")
    g.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a parameter of the method (repeatable), e.g. temperature=0.2; listed below")
    budget = g.add_mutually_exclusive_group()
    budget.add_argument("--target-tokens", type=int, default=None, help="hard cap in tokens")
    budget.add_argument("--rate", type=float, default=None, help="hard cap as a fraction of the input tokens, in (0, 1]")
    g.add_argument("--threshold", type=float, default=None, help="with no budget: the method's keep threshold (below)")
    g.add_argument("--tokenizer", default=None, help="tokenizer that counts the budget (default bundled-smollm2)")
    g.add_argument("--reorder", default=None, help="'relevance' orders passages by relevance (default: input order)")
    g.add_argument("--force-keep", action="append", default=None, metavar="PATTERN",
                   help="keep units matching 'numbers', 'entities' or a regex (repeatable)")
    g.add_argument("--content", default=None, help="'text' (sentences, default) or 'code' (functions, statements)")
    g.add_argument("--language", default=None, help="code language (python uses ast; others a blank-line fallback)")
    g.add_argument("--max-unit-tokens", type=int, default=None, help="longer units are split at word boundaries (default 128)")
    g.add_argument("--random-state", type=int, default=None, help="seed of every random choice (default 0)")
    return p


def compress_config(args, **sections):
    """The validated :class:`~datapruner.config.CompressConfig` of a command: ``--config`` (or the
    defaults), then the compression flags and `sections` (``{section: {key: flag value}}``) on top.
    A budget flag replaces the configured budget (:func:`datapruner.config.override_budget`)."""
    from datapruner.config import compress_config_from_dict, load_compress_config

    params = dict(parse_key_value(item, "--param", "temperature=0.2") for item in args.param)
    compress = {"method": args.method, "params": params or None, "target_tokens": args.target_tokens,
                "rate": args.rate, "threshold": args.threshold, "tokenizer": args.tokenizer,
                "reorder": args.reorder, "force_keep": args.force_keep, "content": args.content,
                "language": args.language, "max_unit_tokens": args.max_unit_tokens,
                "random_state": args.random_state}
    overrides = {"compress": compress, "models": {"threads": args.threads}, **sections}
    if args.config:
        return load_compress_config(args.config, overrides=overrides)
    return compress_config_from_dict({}, overrides=overrides)
