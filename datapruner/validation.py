"""The one place that checks plain parameter values (counts, fractions, numbers, choices).

Every check raises :class:`~datapruner.errors.ConfigError` naming the key, the value and what is
expected, and returns the value (converted where that is lossless) so callers can write
``self.k = check_positive_int("k", k)``. Booleans are never accepted as numbers.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

from datapruner.errors import ConfigError


def check_positive_int(key: str, value: Any, *, minimum: int = 1, hint: str = "") -> int:
    """An integer >= `minimum` (default 1)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(key, value, f"an integer >= {minimum}{hint}")
    return int(value)


def check_fraction(key: str, value: Any, *, hint: str = "") -> float:
    """A number in (0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 < value <= 1):
        raise ConfigError(key, value, f"a number in (0, 1]{hint}")
    return float(value)


def check_number(key: str, value: Any, *, low: float = -math.inf, high: float = math.inf,
                 low_open: bool = False, hint: str = "") -> float:
    """A finite number in [low, high] (or (low, high] with `low_open`)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and value <= high
    if not ok:
        lo = "(" if low_open else "["
        span = "" if (low, high) == (-math.inf, math.inf) else f" in {lo}{low:g}, {high:g}]"
        raise ConfigError(key, value, f"a finite number{span}{hint}")
    return float(value)


def check_choice(key: str, value: Any, choices: Iterable[Any]) -> Any:
    """One of `choices`."""
    choices = list(choices)
    if value not in choices:
        raise ConfigError(key, value, "one of " + ", ".join(repr(c) for c in choices))
    return value
