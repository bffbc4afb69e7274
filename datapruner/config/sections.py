"""The pieces both configs share: the ``models:`` sections and the builders every section goes through
(unknown keys, wrong types, relative paths, YAML reading)."""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

from datapruner.errors import ConfigError
from datapruner.validation import check_choice, check_positive_int
from datapruner.models.embedder import DEFAULT_ENCODER_BACKEND
from datapruner.models.loading import BUNDLED_EMBEDDER, BUNDLED_LM
from datapruner.models.onnx_encoder import ENCODER_BACKENDS

@dataclass
class ThreadsConfig:
    """``models:`` of a compression config: the torch thread count of the process.

    Attributes
    ----------
    threads : torch intra-op threads (an integer >= 1; None keeps torch's default). The same key,
        ``models.threads``, and the same flag, ``--threads``, serve every command; the manifest
        records the value in force.
    """

    threads: int | None = 1


@dataclass
class ModelsConfig(ThreadsConfig):
    """``models:`` of a curation config: the shared backends scorers use, and the thread count.

    Attributes
    ----------
    embedder : sentence embedder, ``"bundled-minilm"`` or a sentence-transformers folder.
    lm : reference causal LM, ``"bundled-smollm2"`` or a Hugging Face folder.
    lm_max_length : tokens the LM scores per text (longer texts are reported as truncated).
    encoder_backend : what runs the bundled embedder: ``"torch"``, ``"onnx"`` (ONNX Runtime fp32)
        or ``"onnx-int8"`` (dynamic int8); see docs/encoders.md. A named embedder folder runs on torch.
    threads : see :class:`ThreadsConfig`.
    """

    embedder: str = BUNDLED_EMBEDDER
    lm: str = BUNDLED_LM
    lm_max_length: int = 512
    encoder_backend: str = DEFAULT_ENCODER_BACKEND

    def __post_init__(self):
        check_choice("models.encoder_backend", self.encoder_backend, ENCODER_BACKENDS)


def read_yaml(path: Path) -> Mapping[str, Any]:
    """The mapping in YAML file `path` ({} for an empty file); a ConfigError for a missing file or bad YAML."""
    import yaml

    if not path.is_file():
        raise ConfigError("<config file>", str(path), "an existing YAML file")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError("<config file>", str(path), f"valid YAML ({exc})") from None
    return raw or {}


def resolve_path(base: Path, p: str) -> str:
    """A path from a config: absolute as given; relative ones against `base` (globs kept as globs)."""
    if Path(p).is_absolute():
        return str(p)
    if any(c in str(p) for c in "*?["):
        return str(base / p)
    return str((base / Path(p).expanduser()).resolve())


def check_sections(raw: Any, known) -> None:
    """`raw` is a mapping whose keys are all in `known` (the config's section names)."""
    if not isinstance(raw, Mapping):
        raise ConfigError("<top level>", type(raw).__name__, f"a mapping of sections ({', '.join(sorted(known))})")
    for key in raw:
        if key not in known:
            raise ConfigError(key, raw[key], f"a known section: {sorted(known)}")


def check_threads(models: ThreadsConfig) -> None:
    """``models.threads`` is None or an integer >= 1."""
    if models.threads is not None:
        check_positive_int("models.threads", models.threads)


@contextmanager
def keys_under(prefix: str) -> Iterator[None]:
    """Re-raise a ConfigError from a lower layer with its key placed under `prefix`."""
    try:
        yield
    except ConfigError as exc:
        raise ConfigError(f"{prefix}.{exc.key}", exc.value, exc.expected) from None


def section(raw: Mapping[str, Any], name: str, *, required: bool = False) -> Mapping[str, Any]:
    """Section `name` of `raw` as a mapping ({} when absent and not `required`)."""
    value = raw.get(name)
    if value is None:
        if required:
            raise ConfigError(name, None, f"a mapping (the {name} section is required)")
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(name, value, "a mapping")
    return value


def build_section(cls, values: Mapping[str, Any], where: str):
    """Dataclass `cls` from `values`: unknown keys and values of the wrong plain type fail, naming `where.key`."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in values:
        if key not in fields:
            raise ConfigError(f"{where}.{key}", values[key], f"one of {sorted(fields)}")
    for key, value in values.items():
        expected = fields[key].type
        if expected in ("int", int) and not (isinstance(value, int) and not isinstance(value, bool)):
            raise ConfigError(f"{where}.{key}", value, "an integer")
        if expected in ("bool", bool) and not isinstance(value, bool):
            raise ConfigError(f"{where}.{key}", value, "true or false")
        if expected in ("str", str) and not isinstance(value, str):
            raise ConfigError(f"{where}.{key}", value, "a string")
        if expected in ("str | None",) and not (value is None or isinstance(value, str)):
            raise ConfigError(f"{where}.{key}", value, "a string or null")
    return cls(**values)
