"""What a selection policy may need besides score columns: labels, embeddings, the run's seed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from datapruner.errors import InputDataError


@dataclass
class SelectionContext:
    """The run's labels, embeddings and seed, handed to every policy's `select`.

    Attributes
    ----------
    labels : (N,) int class indices, -1 where a row has no label; None for unlabelled data.
    embeddings : a callable returning the (N, d) embeddings (called only by a policy that needs them,
        so a run whose policies never ask embeds nothing extra); None when there are none.
    random_state : seed of every random choice a policy makes (CCS sampling).
    """

    labels: np.ndarray | None = None
    embeddings: Callable[[], np.ndarray] | None = None
    random_state: int = 0
    _embedded: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def from_view(cls, view: Any) -> "SelectionContext":
        """The context of a curation run's `DatasetView` (its labels, cached embeddings and seed)."""
        return cls(labels=view.labels, embeddings=view.embeddings, random_state=int(view.random_state))

    def require_labels(self, policy: str) -> np.ndarray:
        """(N,) int64 labels; an `InputDataError` naming `policy` when the run has none."""
        if self.labels is None:
            raise InputDataError(
                f"selection policy {policy} needs class labels; map the label column with input.columns.label (--label-column)"
            )
        return np.asarray(self.labels, dtype=np.int64)

    def require_embeddings(self, policy: str) -> np.ndarray:
        """(N, d) float32 L2-normalised embeddings (computed once); an `InputDataError` when the run has none."""
        if self._embedded is None:
            if self.embeddings is None:
                raise InputDataError(f"selection policy {policy} needs embeddings; this run has no embedder (models.embedder)")
            e = np.asarray(self.embeddings(), dtype=np.float32)
            self._embedded = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
        return self._embedded
