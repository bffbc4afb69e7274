"""What a compression returns: the kept units and the compressed text."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class KeptUnit:
    """One kept unit: ``passages[passage][start:end] == text``; `score` is the method's unit score
    (higher = more worth keeping; its scale depends on the method)."""

    passage: int
    start: int
    end: int
    score: float
    text: str


@dataclass
class CompressionResult:
    """What :func:`datapruner.compress` returns.

    text : the compressed context (kept units joined; passages separated by a blank line; code
        elisions marked by comments).
    units : the kept units, in output order.
    passage_scores : relevance of each input passage (higher = more relevant).
    tokens_before, tokens_after : tokens of the input (passages joined by a blank line) and of `text`.
    method : the method used.
    budget : the hard cap in tokens, or None in threshold mode.
    """

    text: str
    units: list[KeptUnit]
    passage_scores: list[float]
    tokens_before: int
    tokens_after: int
    method: str
    budget: int | None = None

    @property
    def ratio(self) -> float:
        """tokens_before / tokens_after (inf when nothing is kept)."""
        return self.tokens_before / self.tokens_after if self.tokens_after else math.inf

    def to_dict(self) -> dict:
        """A JSON-safe dict (NaN scores, e.g. of an empty passage, and an infinite ratio become None)."""
        out = asdict(self)
        out["ratio"] = None if math.isinf(self.ratio) else self.ratio
        out["passage_scores"] = [finite_or_none(x) for x in self.passage_scores]
        for unit in out["units"]:
            unit["score"] = finite_or_none(unit["score"])
        return out


def finite_or_none(x: float | None) -> float | None:
    """`x` as a float, or None when it is None, NaN or infinite (JSON has no NaN)."""
    return float(x) if x is not None and math.isfinite(x) else None
