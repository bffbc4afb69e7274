"""The one contract every compression method follows (the extension point of compression).

A method is a class in its own module under ``scorers/``, registered by one line in
``scorers/__init__.py`` (``COMPRESSION_METHODS = {name: module}``). The engine finds it by name
through :mod:`datapruner.registry`, builds it from the user's ``params`` and calls
:meth:`CompressionMethod.select` on a batch of items. Everything else -- cutting passages into
units, token weights, the budget, forced units, code closure, rendering and the final cap -- is
the engine's (:mod:`datapruner.compression.item`, :mod:`~datapruner.compression.render`).

Recipe (see docs/compression.md, "How to add a method")::

    class Longest(ScoreOnlyMethod):
        name = "longest"
        params_doc = {}

        def unit_scores(self, items, *, random_state):
            return [it.weights.astype(float) for it in items]
"""

from __future__ import annotations

import math
from typing import Any, Callable, ClassVar

import numpy as np

from datapruner.compression.item import CompressionItem
from datapruner.compression.selection import UnitSelection, passage_max_scores, select_by_scores
from datapruner.errors import ConfigError
from datapruner.validation import check_number


def check_model_name(key: str, value: Any) -> str:
    """A model name or folder: a non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(key, value, "a model name or folder (a non-empty string), e.g. 'bundled'")
    return value


class CompressionMethod:
    """Base class of a compression method: scores the units of items and selects what to keep.

    Subclasses set the class attributes and implement :meth:`select`.

    Attributes
    ----------
    name : ClassVar[str]
        The registry key (``method=`` of :func:`datapruner.compress`).
    summary : ClassVar[str]
        One line saying what the method does (CLI help, service, docs).
    params_doc : ClassVar[dict[str, str]]
        ``{param: one-line meaning, with its default}`` for every parameter the method accepts in
        ``params``. Any other key fails at construction.
    threshold_doc : ClassVar[str | None]
        What ``threshold=`` means for this method, or None when the method has no threshold mode
        and needs a budget (``target_tokens`` or ``rate``); a threshold given to such a method fails.
    default_threshold : ClassVar[float | None]
        The threshold used when the caller gives neither a budget nor a threshold; None means
        the engine's default budget (``rate=0.5``) is used instead.

    Parameters
    ----------
    **params : the method's parameters (see `params_doc`). The constructor validates every one
        (unknown key, wrong type, out of range -> :class:`~datapruner.errors.ConfigError` naming
        ``params.<key>``) and loads no model: models load lazily in :meth:`select`, through
        :func:`datapruner.models.cache.shared_model`, so one object may serve many calls and threads.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    params_doc: ClassVar[dict[str, str]] = {}
    threshold_doc: ClassVar[str | None] = None
    default_threshold: ClassVar[float | None] = None

    def __init__(self, **params: Any):
        unknown = sorted(set(params) - set(self.params_doc))
        if unknown:
            allowed = ", ".join(sorted(self.params_doc)) or "none"
            raise ConfigError(f"params.{unknown[0]}", params[unknown[0]],
                              f"a parameter of method {self.name!r} (accepted: {allowed})")
        self.params = dict(params)
        self.resolved: dict[str, Any] = {}

    def param(self, key: str, default: Any, check: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """The value of parameter `key` (or `default`), checked by `check(f"params.{key}", value, ...)`.

        `check` is one of :mod:`datapruner.validation`'s checks (or any callable with that
        signature). The checked value is recorded in :attr:`resolved` (see :meth:`describe`).
        """
        value = check(f"params.{key}", self.params.get(key, default), *args, **kwargs)
        self.resolved[key] = value
        return value

    @property
    def supports_threshold(self) -> bool:
        """True when the method has a threshold mode (keeps units by score, with no budget)."""
        return self.threshold_doc is not None

    def check_threshold(self, threshold: Any) -> float:
        """Validate a threshold for this method (a finite number by default); subclasses narrow the range.

        Raises
        ------
        ConfigError : the method has no threshold mode, or the value is not valid for it.
        """
        if not self.supports_threshold:
            raise ConfigError("threshold", threshold,
                              f"no threshold: method {self.name!r} needs a budget (target_tokens or rate)")
        return check_number("threshold", threshold, hint=f" ({self.threshold_doc})")

    def describe(self) -> dict[str, Any]:
        """The resolved parameters (defaults filled in), JSON-safe."""
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in self.resolved.items()}

    def select(self, items: list[CompressionItem], *, random_state: int = 0) -> list[UnitSelection]:
        """Score and select the units of a batch of items (one model pass over the batch where possible).

        Parameters
        ----------
        items : the items; each carries its units, token weights, forced units, its cap
            (``item.cap``, None in threshold mode) and its threshold (``item.threshold``).
        random_state : seed for methods that draw random numbers.

        Returns
        -------
        one :class:`UnitSelection` per item, in order. In budget mode the kept units' weights
        should fit ``item.cap``, forced units first
        (:func:`datapruner.compression.selection.select_by_scores` does both); the engine then
        adds code structure, renders, and drops units if the rendered text is still over the cap.
        """
        raise NotImplementedError


class ScoreOnlyMethod(CompressionMethod):
    """A method that only scores units: the engine keeps forced units, then the best-scored units
    while they fit the budget (:func:`datapruner.compression.selection.select_by_scores`). Each
    passage scores as its best unit. Budget only (no threshold mode).

    Subclasses implement :meth:`unit_scores`.
    """

    def unit_scores(self, items: list[CompressionItem], *, random_state: int) -> list[np.ndarray]:
        """(n_units,) float scores per item (higher = keep first)."""
        raise NotImplementedError

    def select(self, items: list[CompressionItem], *, random_state: int = 0) -> list[UnitSelection]:
        """Greedy fill by :meth:`unit_scores` under each item's cap."""
        out = []
        for it, scores in zip(items, self.unit_scores(items, random_state=random_state)):
            scores = np.asarray(scores, dtype=np.float64)
            out.append(UnitSelection(scores, passage_max_scores(it, scores), select_by_scores(it, scores)))
        return out
