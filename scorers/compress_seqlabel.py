"""B1 sequence-labelling pruner as a compression method (Provence 2025; LLMLingua-2 2024).

The pruner (:class:`datapruner.scorers.seqlabel.SequenceLabelPruner`) gives every unit the mean
keep-probability of its tokens and every passage a rerank score, for all items of a batch in
shared forward passes. Budget mode keeps forced units, then units by keep-probability while they
fit (Provence under a budget). Threshold mode (the default when no budget is given) keeps the
units whose keep-probability exceeds the threshold (0.1, conservative, as in Provence).
"""

from __future__ import annotations

import numpy as np

from datapruner.compression.item import CompressionItem
from datapruner.compression.method import CompressionMethod, check_model_name
from datapruner.compression.selection import UnitSelection, select_by_scores
from datapruner.errors import ConfigError
from datapruner.models.cache import shared_model
from datapruner.scorers.seqlabel import SequenceLabelPruner
from datapruner.scorers.seqlabel_windows import CONSERVATIVE_THRESHOLD, keep_units_by_threshold
from datapruner.validation import check_choice


class SeqlabelMethod(CompressionMethod):
    """Units by the pruner's keep-probability; passages by its rerank head."""

    name = "seqlabel"
    summary = "B1 sequence-labelling pruner (bundled MiniLM pruner, Provence or token-classification checkpoints)"
    params_doc = {
        "model": "pruner: 'bundled' (default), a train-pruner folder, a Provence folder or a token-classification checkpoint",
        "trust_remote_code": "run the Python of a model folder that declares remote code (Provence), true/false "
                             "(default false; only for folders you trust)",
    }
    threshold_doc = "minimum mean keep-probability of a kept unit, in [0, 1) (0.1 conservative, 0.5 aggressive)"
    default_threshold = CONSERVATIVE_THRESHOLD

    def __init__(self, **params):
        super().__init__(**params)
        self.model = self.param("model", "bundled", check_model_name)
        self.trust_remote_code = self.param("trust_remote_code", False, check_choice, (False, True))

    def check_threshold(self, threshold):
        value = super().check_threshold(threshold)
        if not 0.0 <= value < 1.0:
            raise ConfigError("threshold", threshold, f"a number in [0, 1) ({self.threshold_doc})")
        return value

    def pruner(self) -> SequenceLabelPruner:
        """The shared pruner, its network loaded (once per process, under the model cache's lock)."""
        def load() -> SequenceLabelPruner:
            pruner = SequenceLabelPruner(self.model, trust_remote_code=self.trust_remote_code)
            pruner.backend  # noqa: B018 - loads the network now, so two threads never load it twice
            return pruner

        return shared_model("seqlabel", self.model, load, self.trust_remote_code)

    def allowed_units(self, item: CompressionItem, passage_scores: np.ndarray) -> np.ndarray:
        """(n_units,) bool, the units that may be kept: all of them (see the hybrid method)."""
        return np.ones(item.n_units, dtype=bool)

    def select(self, items, *, random_state=0):
        batch = [(it.query, it.passages, [[it.spans[i] for i in it.units_of(p)] for p in range(len(it.passages))])
                 for it in items]
        out = []
        for it, (unit_probs, passage_scores) in zip(items, self.pruner().score_units_batch(batch)):
            scores = np.zeros(it.n_units)
            for p, probs in enumerate(unit_probs):
                scores[it.passage == p] = np.asarray(probs, dtype=np.float64)
            passage_scores = np.asarray(passage_scores, dtype=np.float64)
            allowed = self.allowed_units(it, passage_scores)
            if it.cap is None:
                keep = (it.forced | keep_units_by_threshold(scores, threshold=it.threshold)) & allowed
            else:
                keep = select_by_scores(it, scores, allowed=allowed)
            out.append(UnitSelection(scores, passage_scores, keep))
        return out
