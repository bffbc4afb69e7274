"""Calling a Hugging Face causal LM across transformers versions: the KV cache and the logits kept.

transformers 5 names the KV-cache argument and output ``cache`` (``past_key_values`` is deprecated
and warns); transformers 4 knows only ``past_key_values``. ``logits_to_keep`` (4.50+) computes the
LM head on the last positions only, which saves the (tokens x vocabulary) projection where a
caller needs no per-token NLL. :func:`forward_with_cache` picks what the installed model accepts.
"""

from __future__ import annotations

import inspect
from functools import lru_cache


@lru_cache(maxsize=None)
def _forward_parameters(model_type: type) -> frozenset[str]:
    return frozenset(inspect.signature(model_type.forward).parameters)


def forward_with_cache(model, *, cache=None, last_logits_only: bool = False, **inputs):
    """Run `model` with KV cache `cache` (None: a new one); returns ``(logits, cache)``.

    Parameters
    ----------
    model : a Hugging Face causal LM.
    cache : the cache returned by the previous call on the same batch, or None.
    last_logits_only : compute logits for the last position only (when the model supports it;
        otherwise all positions are computed and the last one is returned).
    **inputs : ``input_ids``, ``attention_mask``, ``position_ids``.

    Returns
    -------
    logits : (batch, positions, vocab), positions = 1 with `last_logits_only`.
    cache : the updated KV cache.
    """
    params = _forward_parameters(type(model))
    cache_key = "cache" if "cache" in params else "past_key_values"
    kwargs = dict(inputs, use_cache=True)
    kwargs[cache_key] = cache
    if last_logits_only and "logits_to_keep" in params:
        kwargs["logits_to_keep"] = 1
    out = model(**kwargs)
    logits = out.logits[:, -1:] if last_logits_only else out.logits
    new_cache = out["cache"] if cache_key == "cache" else out["past_key_values"]
    return logits, new_cache
