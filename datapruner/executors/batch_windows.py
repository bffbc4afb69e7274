"""Join consecutive `Batch`es into windows of up to a given number of rows.

Executors use it for steps that set `ScoreStep.bucket_rows`: a model-backed step then sees many
input batches at once and can sort their rows by length before batching the forward passes.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np
import pyarrow as pa

from datapruner.curation.dataset import Batch


def join_batches(parts: list[Batch]) -> Batch:
    """One `Batch` holding consecutive `parts` (each starts where the previous one ends)."""
    if len(parts) == 1:
        return parts[0]
    for a, b in zip(parts, parts[1:]):
        if b.start != a.start + len(a):
            raise ValueError(f"batches are not consecutive: one ends at row {a.start + len(a)}, the next starts at {b.start}")

    def lists(name):
        values = [getattr(p, name) for p in parts]
        return None if values[0] is None else [x for v in values for x in v]

    def arrays(name):
        values = [getattr(p, name) for p in parts]
        return None if values[0] is None else np.concatenate(values)

    record = pa.Table.from_batches([p.record_batch for p in parts]).combine_chunks().to_batches()
    return Batch(
        start=parts[0].start, ids=lists("ids"), texts=lists("texts"), valid=arrays("valid"), labels=arrays("labels"),
        record_batch=record[0] if record else parts[0].record_batch.slice(0, 0),
        prompts=lists("prompts"), responses=lists("responses"), embeddings=arrays("embeddings"),
    )


def batch_windows(batches: Iterable[Batch], rows: int | None) -> Iterator[Batch]:
    """Yield `batches` joined into windows of at most `rows` rows (a batch is never split).

    With `rows` None, or not larger than the batches, every batch is yielded as it is.
    """
    window: list[Batch] = []
    size = 0
    for batch in batches:
        if window and (rows is None or size + len(batch) > rows):
            yield join_batches(window)
            window, size = [], 0
        window.append(batch)
        size += len(batch)
    if window:
        yield join_batches(window)
