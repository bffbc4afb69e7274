"""The one progress API: rich bars on a terminal, silent in tests and when disabled.

Set `DATAPRUNER_PROGRESS=0` (or call `set_enabled(False)`) to silence every bar.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")
_enabled: bool | None = None


def set_enabled(enabled: bool) -> None:
    global _enabled
    _enabled = enabled


def is_enabled() -> bool:
    if _enabled is not None:
        return _enabled
    if os.environ.get("DATAPRUNER_PROGRESS", "").strip() in {"0", "false", "no"}:
        return False
    return sys.stderr.isatty()


class _Bar:
    def __init__(self, progress, task_id):
        self._progress, self._task = progress, task_id

    def advance(self, n: float = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)


@contextmanager
def progress_bar(description: str, total: float | None = None) -> Iterator[_Bar]:
    """A context manager yielding a bar with `.advance(n)`; a no-op when disabled."""
    if not is_enabled():
        yield _Bar(None, None)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=False,
    ) as progress:
        yield _Bar(progress, progress.add_task(description, total=total))


def track(items: Iterable[T], description: str, total: float | None = None) -> Iterator[T]:
    """Iterate `items` with a progress bar (one step per item)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with progress_bar(description, total) as bar:
        for item in items:
            yield item
            bar.advance()
