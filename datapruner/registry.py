"""Find scorers and compression methods by name without importing every module.

Both catalogs live in `datapruner.scorers` (the top-level `scorers/` folder):
`CATALOG = {name: module}` for the curation scorers (each module defines a `ScoreStep` subclass
whose `name` matches) and `COMPRESSION_METHODS = {name: module}` for the compression methods
(each module defines a `CompressionMethod` subclass whose `name` matches). The engine imports a
module only when a config or a call asks for it.
"""

from __future__ import annotations

import importlib
import inspect
from typing import TYPE_CHECKING, Any

from datapruner.compression.method import CompressionMethod
from datapruner.errors import ConfigError

if TYPE_CHECKING:  # the curation data model (pyarrow) loads only when a scorer is asked for
    from datapruner.curation.steps import ScoreStep


def _catalog(name: str) -> dict[str, str]:
    return dict(getattr(importlib.import_module("datapruner.scorers"), name))


def _find_class(module_name: str, base: type, name: str) -> type:
    module = importlib.import_module(module_name)
    for obj in vars(module).values():
        if inspect.isclass(obj) and issubclass(obj, base) and obj.name == name:
            return obj
    raise RuntimeError(f"module {module_name} defines no {base.__name__} named {name!r}")


def scorer_catalog() -> dict[str, str]:
    """``{scorer name: module}`` of every registered curation scorer."""
    return _catalog("CATALOG")


def get_scorer(name: str) -> type[ScoreStep]:
    """The `ScoreStep` class registered as `name`.

    Raises
    ------
    ConfigError : no scorer has that name (the message lists the registered names).
    """
    catalog = scorer_catalog()
    if name not in catalog:
        raise ConfigError("scorers[].name", name, f"one of {sorted(catalog)}")
    from datapruner.curation.steps import ScoreStep

    return _find_class(catalog[name], ScoreStep, name)


def make_scorer(name: str, params: dict | None = None) -> ScoreStep:
    """Build the scorer `name` from its config `params` (validated by the step's constructor).

    Parameters
    ----------
    name : a key of ``datapruner.scorers.CATALOG``.
    params : the step's parameters (see its ``params_doc``); None for the defaults.
    """
    return get_scorer(name)(**(params or {}))


def compression_method_catalog() -> dict[str, str]:
    """``{method name: module}`` of every registered compression method, in registration order."""
    return _catalog("COMPRESSION_METHODS")


def compression_method_names() -> list[str]:
    """The registered compression method names, in registration order (CLI help, service, tests)."""
    return list(compression_method_catalog())


def get_compression_method(name: str) -> type[CompressionMethod]:
    """The `CompressionMethod` class registered as `name`.

    Raises
    ------
    ConfigError : no method has that name (the message lists the registered names).
    """
    catalog = compression_method_catalog()
    if not isinstance(name, str) or name not in catalog:
        raise ConfigError("method", name, f"one of {', '.join(catalog)}")
    return _find_class(catalog[name], CompressionMethod, name)


def make_compression_method(name: str, params: dict[str, Any] | None = None) -> CompressionMethod:
    """Build the compression method `name` from its `params` (validated; no model loads).

    Parameters
    ----------
    name : a key of ``datapruner.scorers.COMPRESSION_METHODS``.
    params : the method's parameters (see its ``params_doc``); None for the defaults.

    Raises
    ------
    ConfigError : unknown method, `params` not a mapping, or a bad parameter (``params.<key>``).
    """
    cls = get_compression_method(name)
    if params is None:
        params = {}
    if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
        raise ConfigError("params", params, f"a mapping of parameter names to values for method {name!r}")
    return cls(**params)
