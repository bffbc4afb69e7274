"""Token counts in a budget tokenizer, for the interfaces that bound work before compressing
(the HTTP service's ``service.max_total_tokens``)."""

from __future__ import annotations

from typing import Sequence

from datapruner.compression.budget import TokenCounter


def count_tokens(texts: Sequence[str], *, tokenizer: str = "bundled-smollm2") -> int:
    """Total tokens of `texts` in `tokenizer`, counted as the compression budget counts them.

    Raises
    ------
    ModelLoadError : the tokenizer cannot be loaded offline.
    """
    return sum(TokenCounter(tokenizer).count_many(texts))
