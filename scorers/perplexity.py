"""A3. Perplexity under a reference causal LM (Marion et al. 2023; Ankner et al. 2024).

`ppl_i = exp(mean token NLL of x_i)` with padding masked. For prompt/response data,
`response_only=True` scores only the response tokens, conditioned on the prompt. Selection is a
separate policy: `band` keeps the bottom, middle or top fraction of the distribution.

Speed: the executor hands this step up to `bucket_rows` rows at once, so `CausalLM.token_stats`
sorts them by token length across many input batches (the whole dataset when it is smaller) and
pads little; without entropy the NLL comes from a gather and a logsumexp. Each row's result is
kept in a per-row cache keyed by model, window and text (`RowScoreCache`), so a rerun, another
policy over the same data, or an overlapping dataset does not run the LM again for those rows.
"""

from __future__ import annotations

import numpy as np

from datapruner.curation.dataset import Batch
from datapruner.curation.row_score_cache import RowScoreCache, text_keys
from datapruner.curation.steps import ScoreStep
from datapruner.models import TokenStats
from datapruner.errors import ConfigError


def perplexities(stats: list[TokenStats]) -> np.ndarray:
    """(N,) perplexity per text: exp(mean NLL over its scored tokens); NaN when none was scored.

    Lower = more predictable (typical, possibly boilerplate); higher = surprising (rare or noisy).
    """
    return np.array([s.perplexity for s in stats], dtype=np.float64)


class PerplexityStep(ScoreStep):
    """Adds `perplexity`, `ppl_tokens` (tokens scored) and `ppl_truncated` (text longer than the LM window)."""

    name = "perplexity"
    needs = frozenset({"text", "lm"})
    columns = {
        "perplexity": "exp(mean token NLL) under the reference LM; lower = more typical",
        "ppl_tokens": "number of tokens scored",
        "ppl_truncated": "true when the text was longer than models.lm_max_length and only its start was scored",
    }
    params_doc = {"response_only": "score only response tokens, conditioned on the prompt (needs prompt/response columns; default false)"}
    bucket_rows = 65_536

    def __init__(self, **params):
        super().__init__(**params)
        self.response_only = params.get("response_only", False)
        if not isinstance(self.response_only, bool):
            raise ConfigError(f"scorers[{self.name}].params.response_only", self.response_only, "true or false")

    def fit(self, view) -> None:
        """Check the prompt/response mapping and take the run's reference LM."""
        if self.response_only and view.dataset.columns.response is None:
            raise ConfigError(f"scorers[{self.name}].params.response_only", True, "input.columns.prompt and .response to be set")
        self.lm = view.lm
        self.cache = RowScoreCache(
            "perplexity", f"{self.lm.model_id}|max_length={self.lm.max_length}", ("perplexity", "ppl_tokens", "ppl_truncated")
        )

    def score_batch(self, batch: Batch) -> dict[str, np.ndarray]:
        """Perplexity, tokens scored and truncation of each valid row of the batch (cached rows are looked up)."""
        n = len(batch)
        values = np.full((n, 3), np.nan)
        rows = np.flatnonzero(batch.valid)
        if rows.size:
            texts = [(batch.responses if self.response_only else batch.texts)[i] for i in rows]
            prompts = [batch.prompts[i] for i in rows] if self.response_only else None
            keys = text_keys(texts, prompts)
            found = self.cache.get(keys)
            todo = [j for j, k in enumerate(keys) if k not in found]
            if todo:
                stats = self.lm.token_stats([texts[j] for j in todo], prompts=None if prompts is None else [prompts[j] for j in todo])
                computed = np.column_stack([perplexities(stats), [s.nll.size for s in stats], [s.truncated for s in stats]])
                self.cache.put([keys[j] for j in todo], computed)
                found.update({keys[j]: tuple(v) for j, v in zip(todo, computed)})
            values[rows] = np.array([found[k] for k in keys], dtype=np.float64)  # NULL (a NaN stored) reads as nan
        return {
            "perplexity": values[:, 0],
            "ppl_tokens": np.nan_to_num(values[:, 1]).astype(np.int64),
            "ppl_truncated": values[:, 2] == 1,
        }
