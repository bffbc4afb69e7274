"""A3. Perplexity under a reference causal LM (Marion et al. 2023; Ankner et al. 2024).

`ppl_i = exp(mean token NLL of x_i)` with padding masked. For prompt/response data,
`response_only=True` scores only the response tokens, conditioned on the prompt. Selection is a
separate policy: `band` keeps the bottom, middle or top fraction of the distribution.
"""

from __future__ import annotations

import numpy as np

from datapruner.curation.dataset import Batch
from datapruner.models import TokenStats
from datapruner.curation.steps import ScoreStep
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

    def score_batch(self, batch: Batch) -> dict[str, np.ndarray]:
        """Perplexity, tokens scored and truncation of each valid row of the batch."""
        n = len(batch)
        ppl = np.full(n, np.nan)
        tokens = np.zeros(n, dtype=np.int64)
        truncated = np.zeros(n, dtype=bool)
        rows = np.flatnonzero(batch.valid)
        if rows.size:
            if self.response_only:
                stats = self.lm.token_stats([batch.responses[i] for i in rows], prompts=[batch.prompts[i] for i in rows])
            else:
                stats = self.lm.token_stats([batch.texts[i] for i in rows])
            ppl[rows] = perplexities(stats)
            tokens[rows] = [s.nll.size for s in stats]
            truncated[rows] = [s.truncated for s in stats]
        return {"perplexity": ppl, "ppl_tokens": tokens, "ppl_truncated": truncated}
