"""Per-example scores recorded while a user's own model trained (``scores_file`` of the `el2n` and
`grand` steps): the Parquet file format, its writer and its reader aligned to a dataset's row ids.

The recorders are in :mod:`datapruner.pipelines.training_hooks`; this module is what the scorers
read, so it sits in the engine, below them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from datapruner.errors import ConfigError, InputDataError

RECORDED_SCORES = ("el2n", "grand")


def recorded_params_doc(column: str) -> dict[str, str]:
    """The `params_doc` entries of a step that can read `column` from a recorded scores file."""
    return {
        "scores_file": f"Parquet file of recorded per-example scores (id, epoch, {column}) from "
                       "datapruner.pipelines.training_hooks; replaces the proxy",
        "epoch": "with scores_file: the recorded epoch to use (default: the latest)",
    }


def write_recorded_scores(path: str | Path, rows: dict[str, list]) -> Path:
    """Write recorded scores (`id`, `epoch`, `seed`, score columns) to Parquet atomically."""
    import pyarrow as pa

    from datapruner.io.writers import write_table_atomic

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table({
        "id": pa.array([str(i) for i in rows["id"]], pa.string()),
        "epoch": pa.array(rows["epoch"], pa.int32()),
        "seed": pa.array(rows["seed"], pa.int64()),
        **{s: pa.array(rows[s], pa.float64()) for s in RECORDED_SCORES if s in rows},
    })
    write_table_atomic(table, path)
    return path


def read_recorded_scores(path: str | Path, column: str, ids: Sequence[str], *, epoch: int | None = None) -> np.ndarray:
    """Recorded scores aligned to `ids`: (N,) float64, NaN for ids that were not recorded.

    Parameters
    ----------
    path : Parquet file with columns ``id``, ``epoch`` and `column` (written by
        `ExampleScoreCallback` or `write_recorded_scores`).
    column : ``"el2n"`` or ``"grand"``.
    ids : the dataset's row ids (set ``input.columns.id`` to the column the recorder used).
    epoch : the recorded epoch to read; default the latest. Rows sharing id and epoch (several
        runs) are averaged.
    """
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.exists():
        raise InputDataError(f"scores_file {str(path)!r} does not exist; record it with datapruner.pipelines.training_hooks.ExampleScoreCallback")
    table = pq.read_table(path)
    for need in ("id", "epoch", column):
        if need not in table.column_names:
            raise InputDataError(f"scores_file {str(path)!r} has no {need!r} column (columns: {table.column_names}); record {column} with the callback")
    rec_ids = np.asarray([str(i) for i in table.column("id").to_pylist()], dtype=object)
    epochs = table.column("epoch").to_numpy()
    values = table.column(column).to_numpy(zero_copy_only=False).astype(np.float64)
    available = sorted(set(epochs.tolist()))
    use = max(available) if epoch is None else int(epoch)
    if use not in available:
        raise ConfigError("epoch", epoch, f"one of the recorded epochs {available}")
    sel = epochs == use
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for i, v in zip(rec_ids[sel], values[sel]):
        sums[i] = sums.get(i, 0.0) + v
        counts[i] = counts.get(i, 0) + 1
    out = np.array([sums[i] / counts[i] if i in sums else np.nan for i in ids], dtype=np.float64)
    if np.isnan(out).all():
        raise InputDataError(
            f"no row id of the dataset appears in scores_file {str(path)!r} (e.g. dataset id {ids[0]!r}, "
            f"recorded id {rec_ids[0]!r}); set input.columns.id to the id column used when recording"
        )
    return out


def recorded_scores_for_step(step, view, column: str) -> np.ndarray | None:
    """For the `el2n` / `grand` steps: the `scores_file` column aligned to the view, or None without one."""
    where = f"scorers[{step.name}].params"
    if not step.params.get("scores_file"):
        if "epoch" in step.params:
            raise ConfigError(f"{where}.epoch", step.params["epoch"], "to be used only with scores_file")
        return None
    values = read_recorded_scores(step.params["scores_file"], column, view.info.ids.to_pylist(), epoch=step.params.get("epoch"))
    values[~view.valid] = np.nan
    return values
