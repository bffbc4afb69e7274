"""Run configurations: YAML or dict -> a validated config, for both jobs.

The modules: :mod:`~datapruner.config.curation` (:class:`RunConfig`),
:mod:`~datapruner.config.compression` (:class:`CompressConfig`) and
:mod:`~datapruner.config.sections` (the shared ``models:`` sections and section builders). The
names below are the public API; import them from ``datapruner.config``.

* Curation: :func:`load_config` / :func:`config_from_dict` -> :class:`RunConfig`
  (sections ``input``, ``output``, ``scorers``, ``selection``, ``models``, ...).
* Compression: :func:`load_compress_config` / :func:`compress_config_from_dict` ->
  :class:`CompressConfig` (sections ``compress``, ``batch``, ``service``, ``models``).

Both are built the same way: every section is a dataclass, unknown keys and wrong types fail
with a :class:`~datapruner.errors.ConfigError` that names the key, the bad value and the allowed
values, and every value is validated when the config is loaded, before any data is read or any
model loads (scorer, policy and compression method names and their params go through
:mod:`datapruner.registry`). Relative paths inside a config file resolve against the config
file's folder. ``models.threads`` is the one threads setting of every command. The resolved config
is written to the manifest.
"""

from datapruner.config.compression import (
    BUDGET_KEYS,
    BatchConfig,
    CompressConfig,
    CompressSection,
    ServiceConfig,
    as_compress_config,
    compress_config_from_dict,
    load_compress_config,
    override_budget,
)
from datapruner.config.curation import ENGINES, InputConfig, OutputConfig, RunConfig, ScorerConfig, config_from_dict, load_config
from datapruner.config.sections import ModelsConfig, ThreadsConfig

__all__ = [
    "BUDGET_KEYS", "BatchConfig", "CompressConfig", "CompressSection", "ENGINES", "InputConfig", "ModelsConfig",
    "OutputConfig", "RunConfig", "ScorerConfig", "ServiceConfig", "ThreadsConfig", "as_compress_config",
    "compress_config_from_dict", "config_from_dict", "load_compress_config", "load_config", "override_budget",
]
