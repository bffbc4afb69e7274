"""The shared model objects a run asks for by name, from the one process-wide model cache.

Curation steps, compression methods, the batch job and the service get their embedder and
reference LM here, so one process holds one copy per name (and window), whoever asked first.
Nothing loads until a model is used: the objects load their weights lazily.

(The names carry a `shared_` prefix because `datapruner.models.embedder` and
`datapruner.models.causal_lm` are the modules that define the classes.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from datapruner.models.cache import shared_model
from datapruner.models.loading import BUNDLED_EMBEDDER, BUNDLED_LM

if TYPE_CHECKING:
    from datapruner.models.causal_lm import CausalLM
    from datapruner.models.embedder import Embedder


def shared_embedder(name: str = BUNDLED_EMBEDDER, backend: str | None = None) -> "Embedder":
    """The process-wide :class:`~datapruner.models.Embedder` for model `name` on encoder `backend`.

    Parameters
    ----------
    name : ``"bundled-minilm"`` (default), a sentence-transformers folder, or a cached hub name.
    backend : ``"torch"``, ``"onnx"`` or ``"onnx-int8"`` (bundled model only); None takes the
        process-wide ``datapruner.models.encoder_backend()`` (``models.encoder_backend``).

    Returns
    -------
    Embedder
        The same object for every call with the same name and backend; its weights load on first use.
    """
    from datapruner.models.embedder import Embedder

    embedder = Embedder(name, backend=backend)  # resolves the backend (and rejects a bad one) now
    return shared_model("embedder", name, lambda: embedder, embedder.backend)


def shared_causal_lm(name: str = BUNDLED_LM, max_length: int = 512) -> "CausalLM":
    """The process-wide :class:`~datapruner.models.CausalLM` for model `name` and window `max_length`.

    Parameters
    ----------
    name : ``"bundled-smollm2"`` (default), a Hugging Face folder, or a cached hub name.
    max_length : model window in tokens (longer texts are scored on their first `max_length` tokens).

    Returns
    -------
    CausalLM
        The same object for every call with the same name and window; the network and tokenizer
        are shared across windows and load on first use.
    """
    from datapruner.models.causal_lm import CausalLM

    return shared_model("causal_lm_scorer", name, lambda: CausalLM(name, max_length=max_length), int(max_length))
