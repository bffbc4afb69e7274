"""Model backends shared by every scorer: sentence embedder and reference causal LM."""

from datapruner.models.causal_lm import CausalLM, TokenStats, load_tokenizer
from datapruner.models.embedder import Embedder, encoder_backend, set_encoder_backend
from datapruner.models.loading import BUNDLED_EMBEDDER, BUNDLED_LM, set_threads
from datapruner.models.onnx_encoder import ENCODER_BACKENDS
from datapruner.models.shared import shared_causal_lm, shared_embedder

__all__ = [
    "BUNDLED_EMBEDDER", "BUNDLED_LM", "CausalLM", "ENCODER_BACKENDS", "Embedder", "TokenStats", "encoder_backend",
    "load_tokenizer", "set_encoder_backend", "set_threads", "shared_causal_lm", "shared_embedder",
]
