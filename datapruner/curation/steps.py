"""The one step contract every scorer follows.

A step is constructed from its config `params`, may learn global state in `fit` (k-means, proxy
models, quantiles) from a `DatasetView`, and then maps batches to new score columns in
`score_batch`. Executors (local, Ray) call `score_batch` without knowing which scorer it is.
Steps run in config order; `fit` can read the columns of earlier steps in `view.scores`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from datapruner.curation.dataset import Batch, DatasetView
from datapruner.errors import ConfigError


class ScoreStep:
    """Base class of a scoring step.

    Subclasses set `name` (the registry key), `needs` (any of "text", "embeddings", "labels",
    "lm", "prompt_response") and `columns` (the names of the score columns they add, with a
    one-line meaning each, used in docs and the manifest). Rows whose text is invalid must get
    NaN (float columns) or the column's documented null value.

    `draw_plots` is set by the pipeline from ``output.plots``: `write_report` draws PNG plots only
    when it is true (tables are always written).
    """

    name: ClassVar[str] = ""
    draw_plots: bool = True
    needs: ClassVar[frozenset[str]] = frozenset({"text"})
    columns: ClassVar[dict[str, str]] = {}
    params_doc: ClassVar[dict[str, str]] = {}
    bucket_rows: ClassVar[int | None] = None
    """Rows an executor may hand to `score_batch` at once when more than ``input.batch_size``
    (consecutive input batches joined). A model-backed step sets it so that it can sort by length
    across many input batches and pad less; None = one input batch at a time."""

    def __init__(self, **params: Any):
        unknown = set(params) - set(self.params_doc)
        if unknown:
            raise ConfigError(
                f"scorers[{self.name}].params.{sorted(unknown)[0]}", params[sorted(unknown)[0]],
                f"one of {sorted(self.params_doc)}",
            )
        self.params = params

    def fit(self, view: DatasetView) -> None:
        """Learn global state from the whole dataset. The default learns nothing."""

    def score_batch(self, batch: Batch) -> dict[str, np.ndarray]:
        """Return {column: (len(batch),) array} for this batch."""
        raise NotImplementedError

    def write_report(self, out_dir: Path, scores: dict[str, np.ndarray]) -> dict[str, Any]:
        """Write step-specific artefacts (tables, plots) into `out_dir`; return manifest entries."""
        return {}

    @property
    def needs_embeddings(self) -> bool:
        """Whether the executor must attach embeddings to each batch."""
        return "embeddings" in self.needs


def nan_column(n: int) -> np.ndarray:
    """A float64 column of `n` NaN values (the null value of float score columns)."""
    return np.full(n, np.nan, dtype=np.float64)
