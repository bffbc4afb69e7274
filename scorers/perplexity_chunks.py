"""B2. Perplexity chunks (LongLLMLingua 2024; LongCodeZip 2025).

Coarse ranking of chunks (passages, or functions for code) by question-conditioned perplexity,
fine segmentation of kept chunks into blocks at perplexity spikes, per-chunk rates from relevance,
and 0/1 knapsack selection of blocks (METHODS.md, B2).

Quantities (all from the reference causal LM, NLL in nats):

* LongLLMLingua score of chunk c: mean NLL of ``question + " We can get the answer to this
  question in the given documents."`` conditioned on c, averaged over those appended tokens (the
  loss is over the question prompt, never the chunk). **Lower = more relevant.**
* LongCodeZip AMI: ``AMI(c, q) = PPL(q) - PPL(q | c)`` with PPL over the question tokens alone.
  **Higher = more relevant.** (`ranking="ami"`, the default; `ranking="longllmlingua"` ranks by the
  score above.)
* Perplexity spikes: per unit (a sentence for prose, a statement/line unit for code) the PPL of its
  tokens given the preceding units of the chunk. With ``d_j = ppl_j - ppl_{j-1}``, the threshold is
  ``theta = mean(|d|) + k * std(|d|)`` (k = 0.2) computed **on the differences**, not on the raw
  values (the original code compares differences with a threshold of raw values; that bug is not
  copied). A block ends after unit i when ``ppl_i - ppl_{i-1} >= theta`` and
  ``ppl_i - ppl_{i+1} >= theta`` (a rise into i and a fall after it).
* Rates: ``r_i = r * (1 + beta * (2 * minmax(AMI_i) - 1))``, beta = 0.5, rescaled so the kept
  chunks' token allowances sum to the budget.
* Block value: AMI of the block alone with the question, min-max normalised over the chunk's
  blocks into [0.05, 1]; weight: tokens. Knapsack per chunk (exact DP when small, else greedy).

Model passes (see :class:`PerplexityScorer`): every (chunk, question) pair is one *sequence*; the
chunk prefix is encoded once, in segments that carry the KV cache forward, and its cache is then
reused to score the question continuation. One batched pass thus yields the per-unit PPLs and the
question-conditioned NLL; sequences are left-padded and grouped by token count across chunks and
across queries (``compress_batch``). Chunks longer than ``max_context`` tokens are split into
windows of whole units that are scored separately (never truncated); a chunk's conditioned
question PPL is then its best window's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from datapruner.compression.budget import knapsack
from datapruner.models.batching import token_budget_groups
from datapruner.models.lm_scoring import forward_with_cache

log = logging.getLogger(__name__)

RESTRICT = " We can get the answer to this question in the given documents."

#: Padded tokens per forward pass of `PerplexityScorer` (the method's ``batch_tokens``), chosen by
#: ``benchmarks/perplexity_batching.py``.
DEFAULT_BATCH_TOKENS = 512


# ------------------------------------------------------------------ pure functions


def longllmlingua_scores(conditioned_nll: list[np.ndarray]) -> np.ndarray:
    """Mean NLL of the question prompt given each chunk: (n_chunks,), lower = more relevant."""
    return np.array([float(x.mean()) if x.size else np.nan for x in conditioned_nll])


def ami_scores(question_nll: np.ndarray, conditioned_question_nll: list[np.ndarray]) -> np.ndarray:
    """``PPL(q) - PPL(q | c)`` per chunk: (n_chunks,), higher = more relevant.

    Parameters
    ----------
    question_nll : (T_q,) NLL of the question tokens with no context (a start token only).
    conditioned_question_nll : per chunk, (T_q,) NLL of the same tokens after the chunk.
    """
    base = float(np.exp(question_nll.mean())) if question_nll.size else np.nan
    return np.array([base - float(np.exp(x.mean())) if x.size else np.nan for x in conditioned_question_nll])


def spike_boundaries(unit_ppl: np.ndarray, *, k: float = 0.2) -> np.ndarray:
    """Indices i after which a block ends (perplexity spikes), excluding the last unit.

    Parameters
    ----------
    unit_ppl : (n,) perplexity of each unit given the preceding ones.
    k : the threshold is ``mean(|d|) + k * std(|d|)`` of the consecutive differences ``d``.

    Returns
    -------
    sorted int array of unit indices i (0 < i < n-1) such that a block ends after unit i.
    """
    p = np.asarray(unit_ppl, dtype=np.float64)
    if len(p) < 3:
        return np.zeros(0, dtype=np.int64)
    d = np.diff(p)  # d[j-1] = p[j] - p[j-1]
    mag = np.abs(d)
    theta = mag.mean() + k * mag.std()
    rise = d[:-1]  # p[i] - p[i-1] for i = 1..n-2
    fall = -d[1:]  # p[i] - p[i+1]
    return (np.flatnonzero((rise >= theta) & (fall >= theta)) + 1).astype(np.int64)


def blocks_from_boundaries(n_units: int, boundaries: np.ndarray) -> list[tuple[int, int]]:
    """Turn end-after indices into [start, end) unit ranges covering 0..n_units."""
    blocks, start = [], 0
    for b in boundaries:
        blocks.append((start, int(b) + 1))
        start = int(b) + 1
    if start < n_units:
        blocks.append((start, n_units))
    return blocks


def split_large_blocks(blocks: list[tuple[int, int]], unit_ppl: np.ndarray, weights: np.ndarray, max_tokens: int) -> list[tuple[int, int]]:
    """Split blocks heavier than `max_tokens` at their strongest perplexity rise, recursively.

    A documented addition to LongCodeZip: spike segmentation can leave a whole chunk as one block,
    which a knapsack with a smaller allowance can never take. A block of more than one unit and
    more than `max_tokens` tokens is cut before the unit ``j`` with the largest ``ppl_j - ppl_{j-1}``
    inside it, until every block fits or is a single unit.
    """
    p = np.asarray(unit_ppl, dtype=np.float64)
    w = np.asarray(weights, dtype=np.int64)
    out: list[tuple[int, int]] = []
    stack = list(reversed(blocks))
    while stack:
        a, b = stack.pop()
        if b - a <= 1 or w[a:b].sum() <= max_tokens:
            out.append((a, b))
            continue
        rises = p[a + 1 : b] - p[a : b - 1]
        cut = a + 1 + int(np.argmax(rises))
        stack.append((cut, b))
        stack.append((a, cut))
    return out


def chunk_rates(relevance: np.ndarray, rate: float, *, beta: float = 0.5) -> np.ndarray:
    """``r_i = rate * (1 + beta * (2 * minmax(relevance_i) - 1))`` (equal rates when all tie)."""
    rel = np.asarray(relevance, dtype=np.float64)
    span = rel.max() - rel.min() if len(rel) else 0.0
    norm = (rel - rel.min()) / span if span > 0 else np.full(len(rel), 0.5)
    return rate * (1 + beta * (2 * norm - 1))


def allocate_chunk_budgets(relevance: np.ndarray, chunk_tokens: np.ndarray, budget: int, *, beta: float = 0.5) -> np.ndarray:
    """Integer token allowances per chunk from the rate formula, rescaled to sum to `budget`.

    Allowances never exceed a chunk's size; what a full chunk cannot take is passed on to the
    others in proportion to their allowance. Returns (n_chunks,) int64.
    """
    tokens = np.asarray(chunk_tokens, dtype=np.float64)
    if len(tokens) == 0 or tokens.sum() == 0:
        return np.zeros(len(tokens), dtype=np.int64)
    total = min(float(budget), tokens.sum())
    want = chunk_rates(relevance, total / tokens.sum(), beta=beta) * tokens
    alloc = np.zeros(len(tokens))
    free = np.ones(len(tokens), dtype=bool)
    left = total
    for _ in range(len(tokens) + 1):
        if left <= 1e-9 or not free.any():
            break
        idx = np.flatnonzero(free)
        weights = want[idx] if want[idx].sum() > 0 else tokens[idx]
        share = left * weights / weights.sum()
        room = tokens[idx] - alloc[idx]
        over = share >= room
        if not over.any():
            alloc[idx] += share
            break
        alloc[idx[over]] = tokens[idx[over]]
        left -= room[over].sum()
        free[idx[over]] = False
    return np.floor(alloc + 1e-9).astype(np.int64)


def normalise_values(values: np.ndarray, *, floor: float = 0.05) -> np.ndarray:
    """Min-max into [floor, 1] (all ties -> 1) so every block has a positive knapsack value."""
    v = np.asarray(values, dtype=np.float64)
    v = np.where(np.isfinite(v), v, np.nanmin(v[np.isfinite(v)]) if np.isfinite(v).any() else 0.0)
    span = v.max() - v.min() if len(v) else 0.0
    if span <= 0:
        return np.ones(len(v))
    return floor + (1 - floor) * (v - v.min()) / span


# ------------------------------------------------------------------ model adapter


@dataclass
class SequenceNLL:
    """NLLs of one (context, question) sequence.

    unit_nll : per context unit, (tokens,) NLL given the preceding units (and the start token).
    question_nll : (T,) NLL of the continuation tokens given the whole context.
    """

    unit_nll: list[np.ndarray]
    question_nll: np.ndarray

    @property
    def unit_ppl(self) -> np.ndarray:
        return np.array([float(np.exp(x.mean())) if x.size else 1.0 for x in self.unit_nll])


class PerplexityScorer:
    """Batched, cache-reusing NLL passes for (context units, question) pairs under a causal LM.

    Parameters
    ----------
    lm : a :class:`datapruner.models.CausalLM` (its tokenizer and model are used directly).
    max_context : tokens of context per sequence (longer contexts are split into windows of whole
        units by the caller, see :meth:`windows`).
    segment_tokens : context columns per forward call; later segments reuse the KV cache of
        earlier ones, which bounds the (batch x segment x vocab) logits.
    max_tokens_per_batch : padded tokens per batch. Small batches are faster on a CPU: a batch's
        (rows x segment x vocabulary) logits and its padding grow with it, and the matrix products
        are already large enough at a few rows (``benchmarks/perplexity_batching.py``).
    """

    def __init__(self, lm, *, max_context: int = 1024, segment_tokens: int = 256,
                 max_tokens_per_batch: int = DEFAULT_BATCH_TOKENS):
        self.lm = lm
        self.max_context = max_context
        self.segment_tokens = segment_tokens
        self.max_tokens_per_batch = max_tokens_per_batch

    def tokenize_units(self, units: list[str], separator: str) -> list[list[int]]:
        """Token ids of each unit as it appears after `separator` (the first unit without it)."""
        tok = self.lm.tokenizer
        texts = [(separator if i else "") + u for i, u in enumerate(units)]
        if not texts:
            return []
        return [list(x) for x in tok(texts, add_special_tokens=False)["input_ids"]]

    def windows(self, unit_ids: list[list[int]], question_len: int) -> list[tuple[int, int]]:
        """Split a chunk's units into [start, end) windows that fit ``max_context`` with the question.

        A unit longer than the room is a window of its own and its tokens are scored in segments
        of the room size (the caller splits over-long units before this, so this is a safeguard).
        """
        room = max(16, self.max_context - question_len - 1)
        out, start, size = [], 0, 0
        for i, ids in enumerate(unit_ids):
            if i > start and size + len(ids) > room:
                out.append((start, i))
                start, size = i, 0
            size += len(ids)
        out.append((start, len(unit_ids)))
        return out

    def score(self, contexts: list[list[list[int]]], questions: list[list[int]], *,
              context_nll: bool = True) -> list[SequenceNLL]:
        """NLL of every context unit and of the question continuation, for many sequences.

        Parameters
        ----------
        contexts : per sequence, the token ids of each context unit (may be empty: the question is
            then scored after the start token only).
        questions : per sequence, the continuation token ids (>= 1 token).
        context_nll : score the context tokens too; False computes the LM head on the last context
            position only (the question's NLL is the same) and leaves the unit NLLs at 0.

        Returns
        -------
        one :class:`SequenceNLL` per sequence, in input order.
        """
        import torch

        model = self.lm.model
        tok = self.lm.tokenizer
        start = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        pad = tok.pad_token_id if tok.pad_token_id is not None else start
        ctx_ids = [[start] + [t for u in units for t in u] for units in contexts]
        lengths = np.array([len(c) + len(q) for c, q in zip(ctx_ids, questions)])
        order = np.argsort(-lengths, kind="stable")
        results: list[SequenceNLL | None] = [None] * len(contexts)
        with torch.inference_mode():
            for group in token_budget_groups(lengths[order], self.max_tokens_per_batch):
                idx = order[group]
                batch_ctx = [ctx_ids[i] for i in idx]
                batch_q = [questions[i] for i in idx]
                width = max(len(c) for c in batch_ctx)
                qwidth = max(len(q) for q in batch_q)
                ids = torch.full((len(idx), width), pad, dtype=torch.long)
                mask = torch.zeros((len(idx), width), dtype=torch.long)
                for row, c in enumerate(batch_ctx):  # left padding: real tokens end at the last column
                    ids[row, width - len(c):] = torch.tensor(c)
                    mask[row, width - len(c):] = 1
                pos = (mask.cumsum(-1) - 1).clamp(min=0)
                ctx_nll = torch.zeros((len(idx), width))
                cache, last_logits = None, None
                for s in range(0, width, self.segment_tokens):
                    e = min(width, s + self.segment_tokens)
                    logits, cache = forward_with_cache(model, cache=cache, last_logits_only=not context_nll,
                                                       input_ids=ids[:, s:e], attention_mask=mask[:, :e],
                                                       position_ids=pos[:, s:e])
                    logits = logits.float()
                    if context_nll:
                        if last_logits is not None:  # predicts this segment's first token
                            ctx_nll[:, s] = _nll(last_logits.unsqueeze(1), ids[:, s : s + 1])[:, 0]
                        if e - s > 1:
                            ctx_nll[:, s + 1 : e] = _nll(logits[:, :-1], ids[:, s + 1 : e])
                    last_logits = logits[:, -1]
                    del logits
                qids = torch.full((len(idx), qwidth), pad, dtype=torch.long)
                qmask = torch.zeros((len(idx), qwidth), dtype=torch.long)
                for row, q in enumerate(batch_q):
                    qids[row, : len(q)] = torch.tensor(q)
                    qmask[row, : len(q)] = 1
                qpos = pos[:, -1:] + 1 + torch.arange(qwidth).unsqueeze(0)
                out_logits, _ = forward_with_cache(model, cache=cache, input_ids=qids,
                                                   attention_mask=torch.cat([mask, qmask], dim=1), position_ids=qpos)
                qlogits = torch.cat([last_logits.unsqueeze(1), out_logits.float()[:, :-1]], dim=1)
                q_nll = _nll(qlogits, qids)
                del out_logits, cache
                for row, i in enumerate(idx):
                    c_len = len(ctx_ids[i])
                    row_nll = ctx_nll[row, width - c_len:].numpy()
                    unit_nll, p = [], 1  # position 0 is the start token
                    for u in contexts[i]:
                        unit_nll.append(row_nll[p : p + len(u)].astype(np.float32))
                        p += len(u)
                    results[i] = SequenceNLL(unit_nll, q_nll[row, : len(questions[i])].numpy().astype(np.float32))
        return results  # type: ignore[return-value]


def _nll(logits, targets):
    """Token NLL from (B, T, V) logits and (B, T) targets without materialising log-softmax."""
    import torch

    return torch.logsumexp(logits, dim=-1) - logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)


# ------------------------------------------------------------------ selection


def select_blocks(
    blocks: list[tuple[int, int]],
    block_values: np.ndarray,
    weights: np.ndarray,
    capacity: int,
    *,
    mandatory: np.ndarray | None = None,
) -> np.ndarray:
    """0/1 knapsack over one chunk's blocks.

    Parameters
    ----------
    blocks : [start, end) unit ranges of the chunk.
    block_values : (n_blocks,) positive values (higher = keep).
    weights : (n_units,) tokens of each unit of the chunk.
    capacity : tokens allowed for this chunk.
    mandatory : (n_units,) bool units that are kept first (code signatures and returns); they are
        removed from their blocks' weights.

    Returns
    -------
    (n_units,) bool mask of kept units.
    """
    w = np.asarray(weights, dtype=np.int64)
    keep = np.zeros(len(w), dtype=bool)
    if mandatory is not None:
        must = np.asarray(mandatory, dtype=bool)
        if w[must].sum() > capacity:
            return keep
        keep |= must
        capacity -= int(w[must].sum())
    else:
        must = np.zeros(len(w), dtype=bool)
    block_w = [int(w[a:b][~must[a:b]].sum()) for a, b in blocks]
    chosen = knapsack(block_w, block_values, capacity)
    for (a, b), c in zip(blocks, chosen):
        if c:
            keep[a:b] = True
    return keep
