"""Embeddings of units and queries for the embedding-based methods (mig, dense, fused), and their
``embedder`` / ``backend`` params.

Texts are never truncated: a text longer than the embedder window is embedded in windows of
whole tokens whose embeddings are averaged. A text that occurs several times in a batch (a
passage retrieved for several queries) is embedded once.
"""

from __future__ import annotations

import numpy as np

from datapruner.compression.item import CompressionItem
from datapruner.compression.method import CompressionMethod, check_model_name
from datapruner.errors import ConfigError
from datapruner.models import BUNDLED_EMBEDDER, ENCODER_BACKENDS, shared_embedder
from datapruner.validation import check_choice

EMBEDDER_DOC = "sentence embedder: 'bundled-minilm' (default), a folder or a cached hub name"


def backend_doc(default: str) -> str:
    """The ``params_doc`` entry of ``backend`` for a method whose bundled-encoder default is `default`."""
    return (f"what runs the bundled embedder: 'onnx-int8' (ONNX Runtime, dynamic int8), 'onnx' (ONNX Runtime "
            f"fp32) or 'torch' (fp32 PyTorch); default '{default}'; a named embedder folder runs on 'torch'")


def method_embedder(method: CompressionMethod, default_backend: str):
    """Read and check a method's ``embedder`` and ``backend`` params; returns the shared embedder.

    A compression method names its encoder backend in its params, like its embedder (the
    process-wide ``models.encoder_backend`` is curation's). The ONNX backends run the bundled
    MiniLM only: with a named embedder folder the default is ``torch`` and any other value fails
    here, naming ``params.backend``. The embedder's weights load on first use."""
    embedder = method.param("embedder", BUNDLED_EMBEDDER, check_model_name)
    bundled = embedder == BUNDLED_EMBEDDER
    backend = method.param("backend", default_backend if bundled else "torch", check_choice, ENCODER_BACKENDS)
    if backend != "torch" and not bundled:
        raise ConfigError("params.backend", backend,
                          "'torch' for a named embedder folder (the ONNX backends run the bundled MiniLM only)")
    return shared_embedder(embedder, backend=backend)


def embed_full(embedder, texts: list[str]) -> np.ndarray:
    """Embed texts without truncation: a text longer than the embedder window is split into windows
    of whole tokens whose embeddings are averaged (then re-normalised). Returns (n, d) float32."""
    if not texts:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    out = embedder.embed(texts)
    window = embedder.max_length
    lengths = embedder.token_lengths(texts)
    long = np.flatnonzero(lengths >= window)
    if len(long):
        tok = embedder.model.tokenizer
        for i in long:
            offsets = tok(texts[i], add_special_tokens=False, return_offsets_mapping=True, verbose=False)["offset_mapping"]
            if len(offsets) <= window - 2:
                continue
            step = window - 2
            pieces = [texts[i][offsets[a][0] : offsets[min(a + step, len(offsets)) - 1][1]] for a in range(0, len(offsets), step)]
            vec = embedder.embed(pieces).mean(axis=0)
            out[i] = vec / max(np.linalg.norm(vec), 1e-12)
    return out


def embed_items(embedder, items: list[CompressionItem], masks: list[np.ndarray] | None = None
                ) -> tuple[list[np.ndarray], np.ndarray]:
    """Embed every unit and every query of a batch in one call (each distinct text once).

    Parameters
    ----------
    embedder : the shared embedder.
    items : the items.
    masks : per item, (n_units,) bool units to embed (a cascade's candidates); None embeds all.
        Units outside the mask get a zero row.

    Returns
    -------
    (per item, its (n_units, d) unit embeddings), and the (n_items, d) query embeddings; embedded
    rows are L2-normalised.
    """
    chosen = [np.arange(it.n_units) if masks is None else np.flatnonzero(m) for it, m in
              zip(items, masks if masks is not None else [None] * len(items))]
    all_texts = [it.texts[i] for it, idx in zip(items, chosen) for i in idx] + [it.query for it in items]
    unique, inverse = np.unique(np.array(all_texts, dtype=object), return_inverse=True)
    emb = embed_full(embedder, [str(t) for t in unique])[inverse.reshape(-1)]
    units, offset = [], 0
    for it, idx in zip(items, chosen):
        e = np.zeros((it.n_units, emb.shape[1]), dtype=np.float32)
        e[idx] = emb[offset : offset + len(idx)]
        units.append(e)
        offset += len(idx)
    return units, emb[len(all_texts) - len(items):]
