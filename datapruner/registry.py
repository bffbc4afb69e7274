"""Find scorers and selection policies by name without importing every module.

The catalog of scorers lives in `datapruner.scorers` (the top-level `scorers/` folder) as
`CATALOG = {name: module}`; each module defines a `ScoreStep` subclass whose `name` matches.
The engine imports a scorer's module only when a config asks for it.
"""

from __future__ import annotations

import importlib
import inspect

from datapruner.errors import ConfigError
from datapruner.curation.steps import ScoreStep


def scorer_catalog() -> dict[str, str]:
    return dict(importlib.import_module("datapruner.scorers").CATALOG)


def get_scorer(name: str) -> type[ScoreStep]:
    catalog = scorer_catalog()
    if name not in catalog:
        raise ConfigError("scorers[].name", name, f"one of {sorted(catalog)}")
    module = importlib.import_module(catalog[name])
    for obj in vars(module).values():
        if inspect.isclass(obj) and issubclass(obj, ScoreStep) and obj.name == name:
            return obj
    raise RuntimeError(f"module {catalog[name]} defines no ScoreStep named {name!r}")


def make_scorer(name: str, params: dict | None = None) -> ScoreStep:
    return get_scorer(name)(**(params or {}))
