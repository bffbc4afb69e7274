"""The one process-wide model cache.

Loading a model takes seconds and hundreds of MB, so every loaded object (tokenizer, network,
embedder, pruner) is built once per process and key, and shared by curation steps, compression
methods, the batch job and the service. Nothing else in the code base keeps its own model cache.

    >>> from datapruner.models.cache import shared_model
    >>> tok = shared_model("tokenizer", "bundled-smollm2", lambda: load(...))

Keys are ``(kind, name, *options)``; the factory runs once per key, under a lock, so two threads
asking for the same model get the same object.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Hashable, TypeVar

T = TypeVar("T")

_MODELS: dict[tuple[Hashable, ...], Any] = {}
_LOCK = threading.RLock()


def shared_model(kind: str, name: str, factory: Callable[[], T], *options: Hashable) -> T:
    """Return the cached object for ``(kind, name, *options)``, building it with `factory` once.

    Parameters
    ----------
    kind : what the object is ("tokenizer", "causal_lm", "embedder", "seqlabel", ...).
    name : the model name or folder as the user wrote it.
    factory : called with no arguments to build the object the first time.
    *options : further hashable parts of the key (e.g. a maximum length).
    """
    key = (kind, name, *options)
    with _LOCK:
        if key not in _MODELS:
            _MODELS[key] = factory()
        return _MODELS[key]


def cached_models() -> list[tuple[Hashable, ...]]:
    """The keys of every model loaded in this process (for `datapruner info` and tests)."""
    with _LOCK:
        return list(_MODELS)


def clear_models() -> None:
    """Forget every cached model (tests; a long-lived process that must free memory)."""
    with _LOCK:
        _MODELS.clear()
