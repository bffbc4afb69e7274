"""datapruner: decide which data is worth keeping.

Heavy libraries (torch, transformers, faiss) load only when a feature needs them, so importing
this package and running `datapruner --help` stay fast. Public entry points are resolved lazily.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# name -> module that defines it
_LAZY = {
    "Compressor": "datapruner.pipelines.compress",
    "compress": "datapruner.pipelines.compress",
    "compress_batch": "datapruner.pipelines.compress",
    "curate": "datapruner.pipelines.curate",
    "load_config": "datapruner.config",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'datapruner' has no attribute {name!r}")
