"""Errors a user can act on. Every message names the field, the value and the fix."""


class DataprunerError(Exception):
    """Base class for errors caused by input, configuration or environment."""


class ConfigError(DataprunerError):
    """A config key has a bad value."""

    def __init__(self, key: str, value, expected: str):
        self.key, self.value, self.expected = key, value, expected
        super().__init__(f"config key '{key}' has value {value!r}; expected {expected}")


class InputDataError(DataprunerError):
    """The input data cannot be read or does not have what a step needs."""


class OutputFolderError(DataprunerError):
    """The output folder cannot be written: it holds other files, an earlier run (without
    ``--overwrite``), another run is writing it, or the disk filled up while writing."""


class OutputCheckError(DataprunerError):
    """The files a run wrote disagree with what it decided (a bug: the run is not published)."""


class ModelLoadError(DataprunerError):
    """A model or tokenizer cannot be loaded (usually: a hub name while offline)."""


class NotFittedError(DataprunerError):
    """A stateful piece was used before `fit`."""


class MissingExtraError(DataprunerError):
    """An optional dependency is not installed."""

    def __init__(self, module: str, extra: str):
        super().__init__(
            f"this feature needs the optional package '{module}'; "
            f"install it with: pip install 'datapruner[{extra}]'"
        )


def require_extra(module: str, extra: str):
    """Import an optional dependency or raise an error naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(module, extra) from exc
