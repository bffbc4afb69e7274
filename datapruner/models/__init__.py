"""Model backends shared by every scorer: sentence embedder and reference causal LM."""

from datapruner.models.causal_lm import CausalLM, TokenStats, load_tokenizer
from datapruner.models.embedder import Embedder
from datapruner.models.loading import BUNDLED_EMBEDDER, BUNDLED_LM, set_threads
from datapruner.models.shared import shared_causal_lm, shared_embedder

__all__ = [
    "BUNDLED_EMBEDDER", "BUNDLED_LM", "CausalLM", "Embedder", "TokenStats", "load_tokenizer", "set_threads",
    "shared_causal_lm", "shared_embedder",
]
