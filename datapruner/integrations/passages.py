"""What both RAG adapters share: one validated Compressor + budget, and the kept text per passage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from datapruner.pipelines.compress import Compressor

METADATA_KEY = "datapruner"


@dataclass(frozen=True)
class KeptPassage:
    """One input passage that kept at least one unit.

    index : its position in the input. text : its kept units joined (a space between sentences, a
    newline between code units). metadata : what the adapters store under ``metadata["datapruner"]``:
    method, passage_index, passage_score, units (start, end, score, text in the original passage),
    and the whole context's tokens_before, tokens_after and budget.
    """

    index: int
    text: str
    metadata: dict[str, Any]


class PassageCompression:
    """One `Compressor` and one budget, both validated at construction (the extension point the adapters share).

    Parameters
    ----------
    method, params : as for `datapruner.compress`.
    target_tokens, rate, threshold : the budget, as for `datapruner.compress` (a hard cap over all
        passages of one call together; none of them: the method's default).
    options : the other `Compressor` options (tokenizer, content, force_keep, reorder, ...).

    Raises
    ------
    ConfigError : a bad method, parameter, option or budget, before any model loads.
    """

    def __init__(self, method: str = "mig", *, target_tokens: int | None = None, rate: float | None = None,
                 threshold: float | None = None, params: dict[str, Any] | None = None, **options: Any):
        self.compressor = Compressor(method, params=params, **options)
        self.budget = {"target_tokens": target_tokens, "rate": rate, "threshold": threshold}
        self.compressor.budget_mode(**self.budget)  # checks the budget now

    def compress(self, query: str, passages: list[str]) -> list[KeptPassage]:
        """Compress `passages` for `query`; the passages that kept something, in input order."""
        if not passages:
            return []
        result = self.compressor.compress(query, passages, **self.budget).to_dict()
        joiner = "\n" if self.compressor.content == "code" else " "
        shared = {"method": result["method"], "tokens_before": result["tokens_before"],
                  "tokens_after": result["tokens_after"], "budget": result["budget"]}
        kept = []
        for index in range(len(passages)):
            units = sorted((u for u in result["units"] if u["passage"] == index), key=lambda u: u["start"])
            if not units:
                continue
            meta = {**shared, "passage_index": index, "passage_score": result["passage_scores"][index],
                    "units": [{k: u[k] for k in ("start", "end", "score", "text")} for u in units]}
            kept.append(KeptPassage(index=index, text=joiner.join(u["text"] for u in units), metadata=meta))
        return kept
