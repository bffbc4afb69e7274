"""datapruner: decide which data is worth keeping.

Heavy libraries (torch, transformers, faiss) load only when a feature needs them, so importing
this package and running `datapruner --help` stay fast.
"""

__version__ = "0.1.0"
