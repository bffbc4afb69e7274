"""Batching by token count: sort by length, then cut where the padded batch would overflow."""

from __future__ import annotations

import numpy as np


def token_budget_groups(sorted_lengths: np.ndarray, max_tokens: int) -> list[slice]:
    """Split a length-sorted sequence into consecutive slices whose padded size fits `max_tokens`.

    A batch padded to its longest member costs ``len(batch) * max(lengths)`` tokens.
    """
    groups, start, longest = [], 0, 0
    for i, length in enumerate(sorted_lengths):
        longest_if_added = max(longest, int(length))
        if i > start and longest_if_added * (i - start + 1) > max_tokens:
            groups.append(slice(start, i))
            start, longest_if_added = i, int(length)
        longest = longest_if_added
    if len(sorted_lengths):
        groups.append(slice(start, len(sorted_lengths)))
    return groups
