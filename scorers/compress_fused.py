"""B5 fused lexical + dense ranking as a compression method (the formulas: :mod:`datapruner.scorers.fusion`).

Per request: BM25 of every unit and of every passage, cosine of every unit and of every passage
(the mean of its unit vectors) with the query under the bundled MiniLM (on ONNX Runtime int8 by
default, ``backend``), fused by the shipped logistic model (``fusion: learned``, the default) or by
reciprocal rank fusion (``fusion: rrf``, k = 60, w = 1); the compression benchmark compares them.
Selection: a budget-free MMR order on the fused score (``redundancy`` = lambda of B5, 0 disables
it), taken while units fit the cap (forced units first); the engine then fills what is left and
re-checks the cap on the rendered text. Because the order does not depend on the budget, a larger
budget never keeps fewer tokens.

Cascade (``cascade`` > 0): units are first ranked by the lexical features alone (RRF of unit and
passage BM25); only the best of them, until they hold ``cascade`` x the cap in tokens, go through
the encoder. The others keep their lexical evidence and rank after every encoded unit.
"""

from __future__ import annotations

import numpy as np

from datapruner.compression.embedding import EMBEDDER_DOC, backend_doc, embed_items, method_embedder
from datapruner.compression.method import CompressionMethod, check_model_name
from datapruner.compression.selection import UnitSelection, select_in_order
from datapruner.scorers.fusion import (FEATURES, LearnedFusion, bundled_weights_path, lexical_features, mmr_order,
                                       request_features, rrf)
from datapruner.validation import check_choice, check_number

FUSIONS = ("rrf", "learned")
LEXICAL_COLUMNS = [FEATURES.index("bm25_unit"), FEATURES.index("bm25_passage")]
# The bundled MiniLM on ONNX Runtime int8 kept fp32 torch's answer recall (within the benchmark's interval) at under half its time
# (benchmarks/compression.py, "Speed levers").
DEFAULT_BACKEND = "onnx-int8"


class FusedMethod(CompressionMethod):
    """B5: BM25 + dense evidence of units and of their passages, fused, with MMR redundancy."""

    name = "fused"
    summary = "B5 fused ranking: BM25 + MiniLM cosine of units and passages, learned fusion (or RRF), MMR"
    params_doc = {
        "fusion": "'learned' (default): the logistic model in `weights`; 'rrf': reciprocal rank fusion, k = 60",
        "redundancy": "lambda of the MMR term fused01(u) - lambda * max cos(e_u, e_v) over units taken, >= 0; "
                      "0 disables it (default 0.0)",
        "cascade": "encode only the lexically best units until they hold this many times the cap, >= 0; "
                   "0 encodes every unit (default 0.0)",
        "k1": "BM25 term-frequency saturation, > 0 (default 1.5)",
        "b": "BM25 length normalisation, in [0, 1] (default 0.75)",
        "weights": "the learned fusion's weights: 'bundled' (default, shipped) or a JSON from `datapruner fit-fusion`",
        "embedder": EMBEDDER_DOC,
        "backend": backend_doc(DEFAULT_BACKEND),
    }

    def __init__(self, **params):
        super().__init__(**params)
        self.fusion = self.param("fusion", "learned", check_choice, FUSIONS)
        self.redundancy = self.param("redundancy", 0.0, check_number, low=0.0)
        self.cascade = self.param("cascade", 0.0, check_number, low=0.0)
        self.k1 = self.param("k1", 1.5, check_number, low=0.0, low_open=True)
        self.b = self.param("b", 0.75, check_number, low=0.0, high=1.0)
        self.weights = self.param("weights", "bundled", check_model_name)
        self.embedder = method_embedder(self, DEFAULT_BACKEND)
        self._model: LearnedFusion | None = None

    def learned(self) -> LearnedFusion:
        """The logistic fusion model (loaded once, on first use)."""
        if self._model is None:
            self._model = LearnedFusion.load(bundled_weights_path() if self.weights == "bundled" else self.weights)
        return self._model

    def encode_mask(self, item, lexical: np.ndarray) -> np.ndarray:
        """The units the cascade sends to the encoder (all of them when ``cascade`` is 0)."""
        if self.cascade == 0 or item.cap is None:
            return np.ones(item.n_units, dtype=bool)
        order = np.lexsort((np.arange(item.n_units), -rrf(lexical)))
        mask = np.zeros(item.n_units, dtype=bool)
        held = np.cumsum(item.weights[order])
        mask[order[: int(np.searchsorted(held, self.cascade * item.cap)) + 1]] = True
        return mask

    def fused_scores(self, features: np.ndarray, encoded: np.ndarray) -> np.ndarray:
        """(n,) fused score of each unit, higher = keep first.

        The learned fusion z-normalises over the encoded units only (the cascade's unencoded units
        have no dense evidence, and their stand-in values would shift the z-scores); unencoded units
        score below every encoded one, in the order of their lexical evidence."""
        if self.fusion == "rrf":
            return rrf(features)
        scores = np.empty(len(features))
        scores[encoded] = self.learned().score(features[encoded])
        if not encoded.all():
            lexical = rrf(features[~encoded][:, LEXICAL_COLUMNS])
            scores[~encoded] = lexical / lexical.max() - 1.0  # in (-1, 0]; the sigmoid of an encoded unit is > 0
        return scores

    def features(self, items) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per item: its (n_units, 4) features (:data:`datapruner.scorers.fusion.FEATURES`), the
        (n_units,) bool mask of encoded units and the (n_units, d) unit embeddings (zero rows for
        units the cascade did not encode). One encoder call for the batch, each text once."""
        lexical = [np.column_stack(lexical_features(it.query, it.texts, it.passage, it.passages, k1=self.k1, b=self.b))
                   if it.n_units else np.zeros((0, 2)) for it in items]
        masks = [self.encode_mask(it, lex) for it, lex in zip(items, lexical)]
        units, queries = embed_items(self.embedder, items, masks)
        return [(request_features(e, q, it.passage, len(it.passages), lex[:, 0], lex[:, 1], mask), mask, e)
                for it, lex, mask, e, q in zip(items, lexical, masks, units, queries)]

    def select(self, items, *, random_state=0):
        if self.fusion == "learned":
            self.learned()  # a bad weights file fails before the encoder runs
        out = []
        for it, (feats, mask, e) in zip(items, self.features(items)):
            scores = self.fused_scores(feats, mask) if it.n_units else np.zeros(0)
            passage_scores = np.full(len(it.passages), np.nan)
            for p in np.unique(it.passage):
                passage_scores[p] = float(scores[it.passage == p].max())
            keep = select_in_order(it, mmr_order(scores, e, redundancy=self.redundancy, available=mask))
            out.append(UnitSelection(scores, passage_scores, keep))
        return out
