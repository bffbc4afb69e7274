"""Resolve model names to local folders, offline-first.

Model hubs are often unreachable where datapruner runs. A name that is neither a local folder nor
already in the Hugging Face cache fails at once with a message saying how to point at a folder,
instead of hanging on a network call.
"""

from __future__ import annotations

import os
from pathlib import Path

from datapruner.errors import ModelLoadError

BUNDLED_EMBEDDER = "bundled-minilm"
BUNDLED_LM = "bundled-smollm2"


def set_threads(threads: int | None) -> int:
    """Set torch's intra-op thread count (None keeps torch's default); returns the count in force."""
    import torch

    if threads is not None:
        if threads < 1:
            raise ModelLoadError(f"threads must be >= 1, got {threads}")
        torch.set_num_threads(int(threads))
    return torch.get_num_threads()


def offline_mode() -> bool:
    """True unless the user explicitly allows hub downloads with HF_HUB_OFFLINE=0."""
    return os.environ.get("HF_HUB_OFFLINE", "1").strip().lower() not in {"0", "false", "no"}


def ensure_offline_env() -> None:
    """Make the Hugging Face libraries fail fast instead of retrying network calls.

    Their own progress bars are silenced too: datapruner reports progress through one API.
    """
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass
    if offline_mode():
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def resolve_hf_model(name_or_path: str, *, kind: str, flag: str) -> str:
    """Return a local folder (or a cached hub name) that `from_pretrained` can load offline.

    Parameters
    ----------
    name_or_path : a local folder, or a hub name such as ``org/model``.
    kind : what the model is for, used in the error ("causal LM", "embedder", "tokenizer").
    flag : the CLI flag or config key the user sets to point at a folder.
    """
    ensure_offline_env()
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(f"{kind} path {str(path)!r} is a file; pass the model's folder")
        check_model_folder(path, kind=kind, flag=flag)
        return str(path)
    if _in_hf_cache(name_or_path):
        return name_or_path
    if not offline_mode():
        check_hub_reachable(name_or_path, kind=kind, flag=flag)
        return name_or_path
    raise ModelLoadError(
        f"{kind} {name_or_path!r} is not a local folder and is not in the Hugging Face cache, "
        f"and downloads are off (offline). Copy the model folder to this machine and pass its "
        f"path with {flag}, e.g. {flag} /models/{name_or_path.split('/')[-1]}; "
        f"or set HF_HUB_OFFLINE=0 where the hub is reachable."
    )


WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.pt", "*.pth", "*.gguf", "*.h5", "*.msgpack")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "tokenizer.model", "spiece.model")


def check_model_folder(path: Path, *, kind: str, flag: str) -> None:
    """Refuse a local model folder that cannot load: no weights (a tokenizer: no tokenizer files).

    Raises
    ------
    ModelLoadError : naming the folder, what it holds, what is missing and the flag to set.
    """
    if kind == "tokenizer":
        ok = any((path / f).exists() for f in TOKENIZER_FILES)
        missing = f"tokenizer files ({', '.join(TOKENIZER_FILES[:3])}, ...)"
    else:
        ok = any(next(path.glob(p), None) or next(path.glob(f"*/{p}"), None) for p in WEIGHT_PATTERNS)
        missing = "model weights (*.safetensors or *.bin)"
    if not ok:
        held = sorted(p.name for p in path.iterdir())[:8]
        raise ModelLoadError(
            f"{kind} folder {str(path)!r} has no {missing}; it holds {held or 'nothing'}. "
            f"Copy the complete model folder (config.json and the weights) and pass it with {flag}"
        )


def check_hub_reachable(name: str, *, kind: str, flag: str, timeout: float = 3.0) -> None:
    """With downloads on (HF_HUB_OFFLINE=0), fail in seconds when the hub cannot be reached.

    One TCP connection to the hub endpoint (``HF_ENDPOINT``), unless an HTTPS proxy is set; the
    Hugging Face libraries would otherwise retry for about a minute, then raise a traceback.
    """
    import socket
    from urllib.parse import urlsplit

    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return
    endpoint = os.environ.get("HF_ENDPOINT")
    if not endpoint:
        from huggingface_hub import constants

        endpoint = constants.ENDPOINT
    url = urlsplit(endpoint)
    host, port = url.hostname, url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        raise ModelLoadError(
            f"{kind} {name!r} is not a local folder or in the Hugging Face cache, and the hub ({endpoint}) "
            f"cannot be reached ({exc}), although HF_HUB_OFFLINE=0 allows downloads. Copy the model folder "
            f"to this machine and pass its path with {flag}, or fix the network (or set HTTPS_PROXY)"
        ) from None


def _in_hf_cache(name: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub ships with transformers
        return False
    if name.count("/") != 1:
        return False
    found = try_to_load_from_cache(name, "config.json")
    return isinstance(found, str)
