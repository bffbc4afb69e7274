"""The curation pipeline users run: config in, pruned dataset + audit + manifest out."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from datapruner.config import RunConfig, config_from_dict, load_config
import numpy as np

from datapruner.io.writers import write_table_atomic
from datapruner.runner import RunResult, run_curation, score_dataset, scores_table


def _resolve(config: RunConfig | Mapping[str, Any] | str | Path, out: str | None) -> RunConfig:
    if isinstance(config, RunConfig):
        if out is not None:
            config.output.dir = str(out)
        return config.validate()
    if isinstance(config, Mapping):
        return config_from_dict(config, out=out)
    return load_config(config, out=out)


def curate(config: RunConfig | Mapping[str, Any] | str | Path, *, out: str | None = None) -> RunResult:
    """Run a curation job from a YAML path, a dict or a `RunConfig`.

    Returns a `RunResult` with the counts and paths of `pruned/`, `scores.parquet` and `manifest.json`.
    """
    return run_curation(_resolve(config, out))


def score(config: RunConfig | Mapping[str, Any] | str | Path, *, out: str | None = None) -> Path:
    """Scores only: write `scores.parquet` (`id`, score columns, `reason` = "scored" or why a row was
    skipped) without selecting or pruning. Returns its path."""
    cfg = _resolve(config, out)
    _, view, _, _ = score_dataset(cfg)
    info = view.info
    reason = np.where(info.valid, "scored", np.char.add("invalid:", info.invalid_reason.astype(str))).astype(object)
    path = Path(cfg.output.dir) / "scores.parquet"
    write_table_atomic(scores_table(info.ids, view.scores, keep=None, reason=reason), path)
    return path
