"""What a server serves, fixed when it starts: the allowed methods, their models, and the worker lanes.

A :class:`ServingPlan` is built from a validated :class:`~datapruner.config.CompressConfig`:

- the **allow-list** of methods a request may choose by name (``compress.method`` first, the
  default, then ``service.methods``), each with its compressor options: ``compress.params`` for
  ``compress.method``, the method's defaults for the others, and for every method the models of
  ``service.embedder`` / ``service.lm`` / ``service.seqlabel_model`` (given to the params named
  ``embedder`` / ``lm`` / ``model``);
- the **lanes**: the cheap methods and the costly ones (``service.costly_methods``) run on
  separate worker processes, so a long perplexity call never holds the worker a mig call needs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from datapruner.config import CompressConfig
from datapruner.errors import ConfigError
from datapruner.registry import get_compression_method, make_compression_method

# service key -> the method param it sets (in every served method that has that param)
MODEL_KEYS = {"embedder": "embedder", "lm": "lm", "seqlabel_model": "model"}


@dataclass(frozen=True)
class Lane:
    """Methods that share a bounded queue and a set of worker processes."""

    name: str  # "cheap" or "costly"
    methods: tuple[str, ...]
    workers: int


@dataclass(frozen=True)
class ServingPlan:
    """The methods, their options and the lanes of one server (see the module docstring).

    Attributes
    ----------
    default_method : the method of a request without ``"method"`` (``compress.method``).
    options : ``{method: Compressor keyword options}`` of every allowed method.
    lanes : the non-empty lanes.
    """

    default_method: str
    options: dict[str, dict[str, Any]]
    lanes: tuple[Lane, ...]

    @property
    def methods(self) -> list[str]:
        """The allow-list, the default first."""
        return list(self.options)

    def lane_of(self, method: str) -> Lane:
        """The lane that runs `method` (an allowed method)."""
        return next(lane for lane in self.lanes if method in lane.methods)

    def models(self) -> dict[str, dict[str, Any]]:
        """``{method: {param: model}}`` of the allowed methods (for ``/healthz`` and the docs)."""
        resolved = {m: make_compression_method(m, o["params"]).describe() for m, o in self.options.items()}
        return {m: {p: v for p, v in params.items() if p in MODEL_KEYS.values()} for m, params in resolved.items()}


def available_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def serving_plan(cfg: CompressConfig) -> ServingPlan:
    """The :class:`ServingPlan` of a validated config.

    Raises
    ------
    ConfigError : a model given both in ``compress.params`` and in ``service`` with different
        values, or too few workers to give each lane one.
    """
    s = cfg.service
    base = cfg.compressor_options()
    names = [cfg.compress.method] + [m for m in s.methods if m != cfg.compress.method]
    options = {}
    for name in names:
        params = dict(base["params"]) if name == cfg.compress.method else {}
        accepted = get_compression_method(name).params_doc
        for key, param in MODEL_KEYS.items():
            model = getattr(s, key)
            if model is None or param not in accepted:
                continue
            if params.get(param, model) != model:
                raise ConfigError(f"service.{key}", model,
                                  f"the same model as compress.params.{param} ({params[param]!r}), or leave one unset")
            params[param] = model
        make_compression_method(name, params)  # a bad model name fails here, before any worker starts
        options[name] = {**base, "params": params, "method": name}
    costly = tuple(m for m in names if m in s.costly_methods)
    cheap = tuple(m for m in names if m not in s.costly_methods)
    workers = s.workers or available_cores()
    if cheap and costly:
        if workers < 2:
            raise ConfigError("service.workers", workers,
                              f"at least 2 when both cheap ({', '.join(cheap)}) and costly ({', '.join(costly)}) methods "
                              "are served, so a costly call cannot hold the only worker")
        n_costly = s.costly_workers or max(1, workers // 2)
        if n_costly >= workers:
            raise ConfigError("service.costly_workers", n_costly, f"fewer than service.workers ({workers})")
        lanes = (Lane("cheap", cheap, workers - n_costly), Lane("costly", costly, n_costly))
    else:
        lanes = (Lane("cheap" if cheap else "costly", cheap or costly, workers),)
    return ServingPlan(cfg.compress.method, options, lanes)


def describe_plan(plan: ServingPlan) -> dict[str, Any]:
    """JSON-safe summary: the allowed methods, the default, and each method's models."""
    return {"methods": plan.methods, "default_method": plan.default_method, "models": plan.models()}
