"""B1 sequence-labelling pruner (Provence 2025; LLMLingua-2 2024): per-unit keep-probabilities and
per-passage rerank scores from a cross-encoder with a token head and a sequence head.

A cross-encoder reads ``[CLS] query [SEP] passage [SEP]``. Its token head gives a keep-probability
for every passage token; a unit (sentence) is scored by the mean keep-probability of its tokens.
Its sequence head gives the passage's rerank score (higher = more relevant).

Three kinds of model load through :class:`SequenceLabelPruner` (the networks and backends:
:mod:`datapruner.scorers.seqlabel_net`; windows, unit tokens and the threshold rule:
:mod:`datapruner.scorers.seqlabel_windows`):

- ``"bundled"`` (default): the project's own pruner, the bundled all-MiniLM-L6-v2 encoder whose top
  layers and two heads were fine-tuned by ``datapruner train-pruner``; the small fine-tuned part
  ships in ``datapruner/assets/pruner/``. A folder written by ``train-pruner --out DIR`` loads the
  same way. It also reads an exact-match-with-query feature and the bundled bi-encoder's
  query-unit cosine (:func:`query_unit_cosines`, added to its keep and rank logits), so scoring
  with it embeds the query and the units once per call.
- a local folder of a Provence-style remote-code model that exposes ``process``, loaded only with
  ``trust_remote_code=True``
  (``naver/provence-reranker-debertav3-v1``, ``naver/xprovence-*``, ``hotchpotch/open-provence-*``).
  The model's own forward pass gives the token and ranking outputs; its ``process`` (with its own
  NLTK sentence splitter) is not used, so units are the caller's.
- a local folder of a plain token-classification checkpoint (``*ForTokenClassification``). It has
  no sequence head: its passage score is the mean keep-probability of the passage's tokens.

Passages longer than the encoder window are split into windows at unit ends (a single unit longer
than a window is split at token boundaries); every token is scored, nothing is truncated. A
passage's rerank score is the maximum over its windows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from datapruner.errors import InputDataError, ModelLoadError
from datapruner.scorers.seqlabel_net import BUNDLED, Backend, load_backend
from datapruner.scorers.seqlabel_windows import plan_windows, unit_token_indices

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------------
# The pruner
# ----------------------------------------------------------------------------------------------


@dataclass
class _Window:
    item: int
    passage: int
    ids: list[int]
    n_query: int  # tokens before the passage part: [CLS] + query + [SEP]
    tok_start: int  # first passage token index in this window
    dense: np.ndarray | None = None  # per passage token of the window: query-unit cosine of its unit


def token_dense_feature(n_tokens: int, unit_tokens: list[list[int]], unit_cosines: np.ndarray) -> np.ndarray:
    """(n_tokens,) float32: every token carries the query-unit cosine of its unit (0 outside units)."""
    out = np.zeros(n_tokens, dtype=np.float32)
    for toks, cos in zip(unit_tokens, unit_cosines):
        out[toks] = cos
    return out


def query_unit_cosines(embedder, queries: list[str], unit_texts: list[list[str]]) -> list[np.ndarray]:
    """Bi-encoder cosine of ``queries[i]`` with each of ``unit_texts[i]`` (one embed call for all)."""
    flat = [t for texts in unit_texts for t in texts]
    vecs = embedder.embed(sorted(set(flat)))
    index = {t: k for k, t in enumerate(sorted(set(flat)))}
    q_vecs = embedder.embed(list(queries))
    return [np.array([float(vecs[index[t]] @ q) for t in texts], dtype=np.float32)
            for q, texts in zip(q_vecs, unit_texts)]


class SequenceLabelPruner:
    """Score units (sentences) of passages for a query with a sequence-labelling pruner.

    Parameters
    ----------
    model : ``"bundled"`` (the project's own MiniLM pruner), a folder written by
        ``datapruner train-pruner``, a local folder of a Provence-style remote-code model, or a
        local token-classification checkpoint. A hub name that is not cached fails at once
        (offline) with a message asking for a local folder.
    max_length : encoder window in tokens, special tokens included; longer passages are split into
        windows at unit ends.
    batch_size : windows per forward pass.
    max_query_fraction : largest share of the window the query may take; a longer query keeps its
        first tokens and a warning is logged (passages are never truncated).
    trust_remote_code : let a folder that declares remote code (a Provence-style model) run its
        author's Python; off by default, and such a folder then fails with a message saying so.
        The bundled pruner and token-classification checkpoints need none.
    """

    def __init__(
        self,
        model: str = BUNDLED,
        *,
        max_length: int = 256,
        batch_size: int = 16,
        max_query_fraction: float = 0.5,
        trust_remote_code: bool = False,
    ):
        if max_length < 16:
            raise InputDataError(f"max_length must be >= 16 tokens, got {max_length}")
        if batch_size < 1:
            raise InputDataError(f"batch_size must be >= 1, got {batch_size}")
        if not 0.0 < max_query_fraction < 1.0:
            raise InputDataError(f"max_query_fraction must be in (0, 1), got {max_query_fraction}")
        self.model = model
        self.max_length = int(max_length)
        self.batch_size = int(batch_size)
        self.max_query_fraction = float(max_query_fraction)
        self.trust_remote_code = bool(trust_remote_code)
        self._backend: Backend | None = None

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = load_backend(self.model, trust_remote_code=self.trust_remote_code)
            tok = self._backend.tokenizer
            if tok.cls_token_id is None or tok.sep_token_id is None:
                raise ModelLoadError(f"tokenizer of {self.model!r} has no [CLS]/[SEP] tokens; a cross-encoder needs both")
            limits = [getattr(tok, "model_max_length", None), self._backend.max_positions]
            limits = [int(x) for x in limits if isinstance(x, int) and 16 <= x < self.max_length]
            if limits:
                log.info("max_length %d exceeds what the model accepts; using %d", self.max_length, min(limits))
                self.max_length = min(limits)
        return self._backend

    @property
    def has_rank_head(self) -> bool:
        """False for token-classification checkpoints (passage score = mean token keep-probability)."""
        return self.backend.has_rank_head

    def score_units(
        self, query: str, passages: list[str], spans: list[list[tuple[int, int]]]
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """Mean keep-probability of every unit and a rerank score for every passage.

        Parameters
        ----------
        query : the question, non-empty.
        passages : P passage strings.
        spans : ``spans[p]`` = character spans ``(start, end)`` of the units of passage p, within
            the passage, ascending and non-overlapping.

        Returns
        -------
        unit_probs : list of P float32 arrays, ``unit_probs[p]`` of shape ``(len(spans[p]),)`` with the
            mean keep-probability in [0, 1] of the tokens overlapping each unit (higher = keep; 0.0
            for a unit without tokens, e.g. only whitespace).
        passage_scores : (P,) float32 rerank scores, higher = more relevant (the rank head's logit,
            maximum over windows; for a token-classification checkpoint, the mean keep-probability).
        """
        return self.score_units_batch([(query, passages, spans)])[0]

    def score_units_batch(
        self, items: list[tuple[str, list[str], list[list[tuple[int, int]]]]]
    ) -> list[tuple[list[np.ndarray], np.ndarray]]:
        """:meth:`score_units` for many ``(query, passages, spans)`` items; windows of all items share batches."""
        for i, item in enumerate(items):
            _validate_item(i, item)
        backend = self.backend
        tok = backend.tokenizer
        windows: list[_Window] = []
        passage_tokens: list[list[tuple[np.ndarray, list[list[int]]]]] = []
        cosines = None
        if backend.uses_dense_feature:
            from datapruner.models.shared import shared_embedder

            unit_texts = [[text[s:e] for text, units in zip(passages, spans) for s, e in units]
                          for _, passages, spans in items]
            # the dense gate was fitted on fp32 torch cosines: the same encoder, whatever curation chose
            cosines = query_unit_cosines(shared_embedder(backend="torch"), [q for q, _, _ in items], unit_texts)
        for i, (query, passages, spans) in enumerate(items):
            q_ids = self._query_ids(query)
            capacity = self.max_length - len(q_ids) - 3
            per_item = []
            for p, (text, units) in enumerate(zip(passages, spans)):
                enc = tok(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
                ids = list(enc["input_ids"])
                offsets = np.asarray(enc["offset_mapping"], dtype=np.int64).reshape(-1, 2)
                unit_tokens = unit_token_indices(offsets, units)
                dense = None
                if cosines is not None:
                    first_unit = sum(len(u) for u in spans[:p])
                    dense = token_dense_feature(len(ids), unit_tokens, cosines[i][first_unit : first_unit + len(units)])
                ends = [t[-1] + 1 for t in unit_tokens if t]
                for start, stop in plan_windows(ends, len(ids), capacity):
                    seq = [tok.cls_token_id, *q_ids, tok.sep_token_id, *ids[start:stop], tok.sep_token_id]
                    windows.append(_Window(i, p, seq, len(q_ids) + 2, start,
                                           None if dense is None else dense[start:stop]))
                per_item.append((offsets, unit_tokens))
            passage_tokens.append(per_item)
        probs, ranks = self._run(windows)

        results = []
        for i, (query, passages, spans) in enumerate(items):
            token_probs = [np.zeros(len(passage_tokens[i][p][0]), dtype=np.float32) for p in range(len(passages))]
            rank = np.full(len(passages), -np.inf, dtype=np.float64)
            results.append((token_probs, rank))
        for w, pr, rk in zip(windows, probs, ranks):
            token_probs, rank = results[w.item]
            n = len(w.ids) - w.n_query - 1
            token_probs[w.passage][w.tok_start : w.tok_start + n] = pr[w.n_query : w.n_query + n]
            rank[w.passage] = max(rank[w.passage], rk)

        out = []
        for i, (token_probs, rank) in enumerate(results):
            unit_probs = []
            for p, tp in enumerate(token_probs):
                unit_tokens = passage_tokens[i][p][1]
                unit_probs.append(
                    np.array([float(tp[t].mean()) if t else 0.0 for t in unit_tokens], dtype=np.float32)
                )
                if not backend.has_rank_head:
                    rank[p] = float(tp.mean()) if len(tp) else 0.0
            out.append((unit_probs, rank.astype(np.float32)))
        return out

    def _query_ids(self, query: str) -> list[int]:
        ids = list(self.backend.tokenizer(query, add_special_tokens=False)["input_ids"])
        limit = int(self.max_length * self.max_query_fraction)
        if len(ids) > limit:
            log.warning("query has %d tokens; keeping its first %d (max_query_fraction of the window)", len(ids), limit)
            ids = ids[:limit]
        return ids

    def _run(self, windows: list[_Window]) -> tuple[list[np.ndarray], list[float]]:
        import torch

        from datapruner.progress import progress_bar

        backend = self.backend
        pad = backend.tokenizer.pad_token_id or 0
        order = sorted(range(len(windows)), key=lambda k: -len(windows[k].ids))
        probs: list[np.ndarray] = [np.zeros(0)] * len(windows)
        ranks: list[float] = [0.0] * len(windows)
        with torch.inference_mode(), progress_bar("pruner windows", total=len(windows)) as bar:
            for b in range(0, len(order), self.batch_size):
                idx = order[b : b + self.batch_size]
                width = max(len(windows[k].ids) for k in idx)
                ids = torch.full((len(idx), width), pad, dtype=torch.long)
                mask = torch.zeros((len(idx), width), dtype=torch.long)
                types = torch.zeros((len(idx), width), dtype=torch.long)
                dense = torch.zeros((len(idx), width)) if backend.uses_dense_feature else None
                for r, k in enumerate(idx):
                    w = windows[k]
                    ids[r, : len(w.ids)] = torch.tensor(w.ids)
                    mask[r, : len(w.ids)] = 1
                    if backend.use_token_types:
                        types[r, w.n_query : len(w.ids)] = 1
                    if dense is not None:
                        dense[r, w.n_query : w.n_query + len(w.dense)] = torch.from_numpy(w.dense)
                p, s = backend.predict(ids, mask, types, dense)
                p, s = p.float().numpy(), s.float().numpy()
                for r, k in enumerate(idx):
                    probs[k] = p[r]
                    ranks[k] = float(s[r])
                bar.advance(len(idx))
        return probs, ranks


def _validate_item(i: int, item) -> None:
    try:
        query, passages, spans = item
    except (TypeError, ValueError):
        raise InputDataError(f"item {i} must be a (query, passages, spans) tuple") from None
    if not isinstance(query, str) or not query.strip():
        raise InputDataError(f"item {i}: query must be a non-empty string, got {query!r}")
    if isinstance(passages, str):
        raise InputDataError(f"item {i}: passages must be a list of strings, got a single string")
    if len(spans) != len(passages):
        raise InputDataError(
            f"item {i}: spans has {len(spans)} lists but there are {len(passages)} passages; give one span list per passage"
        )
    for p, (text, units) in enumerate(zip(passages, spans)):
        if not isinstance(text, str):
            raise InputDataError(f"item {i}: passage {p} must be a string, got {type(text).__name__}")
        prev = 0
        for s, e in units:
            if not (0 <= s <= e <= len(text)) or s < prev:
                raise InputDataError(
                    f"item {i}: passage {p} has span ({s}, {e}) outside [0, {len(text)}] or out of order; "
                    "spans must be ascending, non-overlapping character offsets into the passage"
                )
            prev = e
