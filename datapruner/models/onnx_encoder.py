"""ONNX Runtime backend of the bundled sentence encoder (fp32, and int8 by dynamic quantisation).

The bundled all-MiniLM-L6-v2 is exported once per cache folder to
``$DATAPRUNER_CACHE/models/all-MiniLM-L6-v2-onnx/`` (a file lock plus an atomic rename, like the
bundled LM's GGUF conversion, so concurrent processes on a fresh cache export it once). The
exported graph holds the whole sentence-transformers pipeline of that model: the BERT encoder,
mean pooling over the attention mask and L2 normalisation, so its output is the embedding.
``int8`` is a per-channel dynamic quantisation of the fp32 graph (weights int8, activations
quantised at run time), written beside it.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import numpy as np

from datapruner.errors import ModelLoadError
from datapruner.paths import cache_dir, file_lock

log = logging.getLogger(__name__)

ENCODER_BACKENDS = ("torch", "onnx", "onnx-int8")
EXPORT_DIR = "all-MiniLM-L6-v2-onnx"
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


def require_package(module: str):
    """Import `module` (onnxruntime, onnx), or raise an error naming it, the setting and the fix."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ModelLoadError(
            f"the ONNX encoder backend needs the package '{module}', which is not installed; "
            f"install it (pip install {module}) or set models.encoder_backend: torch"
        ) from exc


def bundled_onnx_path(backend: str) -> Path:
    """The exported graph for `backend` ("onnx" or "onnx-int8"), exporting it on first use."""
    if backend not in ("onnx", "onnx-int8"):
        raise ModelLoadError(f"encoder backend {backend!r} has no ONNX graph; use 'onnx' or 'onnx-int8'")
    require_package("onnxruntime")
    require_package("onnx")
    folder = cache_dir() / "models" / EXPORT_DIR
    fp32, int8 = folder / "model.onnx", folder / "model-int8.onnx"
    wanted = fp32 if backend == "onnx" else int8
    if wanted.exists():
        return wanted
    with file_lock(folder.with_suffix(".lock")):
        if not fp32.exists():
            export_bundled_encoder(fp32)
        if backend == "onnx-int8" and not int8.exists():
            quantize_int8(fp32, int8)
    return wanted


def export_bundled_encoder(final: Path) -> None:
    """Export the bundled MiniLM (encoder + mean pooling + normalisation) to `final`, atomically."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from datapruner.models.embedder import bundled_embedder_path
    from datapruner.models.loading import ensure_offline_env

    ensure_offline_env()
    path = bundled_embedder_path()
    log.info("exporting the bundled encoder to ONNX in %s (once)", final.parent)
    model = AutoModel.from_pretrained(path, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(path)
    sample = tok(["a short text", "a somewhat longer text to pad the batch"], padding=True, return_tensors="pt")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # The TorchScript exporter warns that it is deprecated and about traced shape checks;
            # the exported graph is checked against the torch path in tests/engine/test_models.py.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                pooled_encoder(model), tuple(sample[k] for k in INPUT_NAMES), str(tmp),
                input_names=list(INPUT_NAMES), output_names=["embedding"],
                dynamic_axes={**{k: {0: "batch", 1: "tokens"} for k in INPUT_NAMES}, "embedding": {0: "batch"}},
                opset_version=17, dynamo=False,
            )
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def quantize_int8(fp32: Path, final: Path) -> None:
    """Dynamic int8 quantisation of `fp32` (per-channel weights) into `final`, atomically.

    Per-channel scales keep the embeddings closer to fp32 than per-tensor ones on this model
    (the test bounds the cosine to torch; docs/encoders.md has the measured agreement).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    # onnxruntime suggests its optional pre-processing step through the root logger (which would
    # also install a handler there); the graph is quantised as exported, so the line is kept quiet.
    root, quiet = logging.getLogger(), logging.NullHandler()
    level = root.level
    root.addHandler(quiet)
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
        os.replace(tmp, final)
    finally:
        root.setLevel(level)
        root.removeHandler(quiet)
        tmp.unlink(missing_ok=True)


def pooled_encoder(model):
    """The bundled model's sentence-transformers pipeline as one torch module (for export)."""
    import torch

    class _Pooled(torch.nn.Module):
        def __init__(self, encoder):
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                  token_type_ids=token_type_ids).last_hidden_state
            weight = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weight).sum(1) / weight.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    return _Pooled(model)


class OnnxSentenceEncoder:
    """The bundled encoder on ONNX Runtime: tokenise, run the exported graph, return embeddings.

    Parameters
    ----------
    backend : ``"onnx"`` (fp32) or ``"onnx-int8"``.
    threads : ONNX Runtime intra-op threads (the process's torch thread count by default, so one
        ``models.threads`` setting governs both backends).
    """

    def __init__(self, backend: str, *, threads: int | None = None):
        ort = require_package("onnxruntime")
        from transformers import AutoTokenizer

        from datapruner.models.embedder import bundled_embedder_path

        path = bundled_embedder_path()
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.max_seq_length = 256  # the bundled model's sentence_bert_config.json
        if threads is None:
            import torch

            threads = torch.get_num_threads()
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(bundled_onnx_path(backend)), options, providers=["CPUExecutionProvider"])
        self.dim = int(self.session.get_outputs()[0].shape[1] or 384)

    def encode(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) float32, L2-normalised, one padded batch."""
        enc = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_seq_length,
                             return_tensors="np")
        feeds = {k: enc[k].astype(np.int64) for k in INPUT_NAMES}
        return self.session.run(None, feeds)[0].astype(np.float32, copy=False)
