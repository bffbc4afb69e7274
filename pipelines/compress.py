"""Compress retrieved passages for a query under a hard token budget (METHODS.md, Part B).

    >>> from datapruner import compress
    >>> result = compress("Who built the tower?", passages, method="mig", rate=0.25)
    >>> result.text, result.tokens_after <= result.budget

Flow: query + passages -> units (sentences, or code units) -> unit scores (one method) -> budgeted
selection -> rendered text, re-counted so the cap always holds (see :mod:`datapruner.compression.budget`).

Methods
-------
``mig``        B3 marginal information gain with the bundled MiniLM embedder (:mod:`datapruner.scorers.mig`).
``perplexity`` B2 LongLLMLingua / LongCodeZip chunks with the bundled SmolLM2 (:mod:`datapruner.scorers.perplexity_chunks`).
``seqlabel``   B1 sequence-labelling pruner (:mod:`datapruner.scorers.seqlabel`).
``hybrid``     rerank passages with the B1 passage head, keep the best, prune inside them with B1.
``random``, ``lead``  baselines (B4): random units (seeded by `random_state`) or the first units.

Budget: ``target_tokens`` (int >= 1) or ``rate`` (0 < rate <= 1 of the input's tokens) is a hard
cap counted in ``tokenizer``. With neither, ``threshold`` (or the method's default: 0.1 keep
probability for seqlabel/hybrid as in Provence, rate 0.5 for the others as in LLMLingua) decides.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache

import numpy as np

from datapruner.compression.budget import TokenCounter, enforce_cap, knapsack, resolve_budget, select_forced
from datapruner.errors import ConfigError, InputDataError
from datapruner.compression.units import (
    CodeUnit,
    code_units,
    comment_prefix,
    compile_force_keep,
    force_keep_mask,
    split_long_span,
    split_sentences,
)

log = logging.getLogger(__name__)

METHODS = ("mig", "perplexity", "seqlabel", "hybrid", "random", "lead")
PASSAGE_JOIN = "\n\n"
DEFAULT_RATE = 0.5


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
    """What :func:`compress` returns.

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
        out["passage_scores"] = [_finite_or_none(x) for x in self.passage_scores]
        for unit in out["units"]:
            unit["score"] = _finite_or_none(unit["score"])
        return out


def _finite_or_none(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


@dataclass(frozen=True)
class CompressOptions:
    """Every option of :func:`compress`, validated. See :func:`compress` for meanings."""

    method: str = "mig"
    target_tokens: int | None = None
    rate: float | None = None
    threshold: float | None = None
    tokenizer: str = "bundled-smollm2"
    reorder: str | None = None
    force_keep: tuple = ()
    content: str = "text"
    language: str = "python"
    max_unit_tokens: int = 128
    embedder: str = "bundled-minilm"
    lm: str = "bundled-smollm2"
    seqlabel_model: str = "bundled"
    mig_alpha: float = 1.0
    mig_beta: float = 1.0
    mig_temperature: float = 0.1
    mig_group_size: int = 8
    ppl_ranking: str = "ami"
    ppl_beta: float = 0.5
    ppl_spike_k: float = 0.2
    ppl_coarse_ratio: float = 2.0
    ppl_max_context: int = 1024
    hybrid_passage_ratio: float = 2.0
    random_state: int = 0

    def __post_init__(self):
        if self.method not in METHODS:
            raise ConfigError("method", self.method, f"one of {', '.join(METHODS)}")
        if self.reorder not in (None, "relevance"):
            raise ConfigError("reorder", self.reorder, "None (original order) or 'relevance'")
        if self.content not in ("text", "code"):
            raise ConfigError("content", self.content, "'text' (sentences) or 'code' (functions, then statements)")
        if self.ppl_ranking not in ("ami", "longllmlingua"):
            raise ConfigError("ppl_ranking", self.ppl_ranking, "'ami' (LongCodeZip) or 'longllmlingua'")
        if self.threshold is not None and (isinstance(self.threshold, bool) or not isinstance(self.threshold, (int, float)) or not math.isfinite(self.threshold)):
            raise ConfigError("threshold", self.threshold, "a finite number (the method's keep threshold)")
        if not isinstance(self.max_unit_tokens, int) or self.max_unit_tokens < 4:
            raise ConfigError("max_unit_tokens", self.max_unit_tokens, "an integer >= 4")
        if not isinstance(self.tokenizer, str) or not self.tokenizer:
            raise ConfigError("tokenizer", self.tokenizer, "a tokenizer name or folder, e.g. 'bundled-smollm2'")
        # validate ranges early (with a dummy size) so errors come before any model loads
        resolve_budget(1, target_tokens=self.target_tokens, rate=self.rate)
        compile_force_keep(list(self.force_keep))

    @classmethod
    def from_kwargs(cls, **kwargs) -> "CompressOptions":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise ConfigError(unknown[0], kwargs[unknown[0]], f"a known option ({', '.join(sorted(known))})")
        fk = kwargs.get("force_keep")
        if fk is not None:
            kwargs["force_keep"] = (fk,) if isinstance(fk, str) else tuple(fk)
        else:
            kwargs.pop("force_keep", None)
        return cls(**kwargs)


# ------------------------------------------------------------------ preparation


@dataclass
class _Item:
    """One (query, passages) pair cut into units, with weights and the cap."""

    query: str
    passages: list[str]
    passage: np.ndarray  # (n,) passage index of each unit
    spans: list[tuple[int, int]]
    texts: list[str]
    weights: np.ndarray  # (n,) tokens of each unit as joined
    chunk: np.ndarray  # (n,) chunk id (the passage for prose; function/method/block for code)
    structural: np.ndarray  # (n,) bool
    parent: np.ndarray  # (n,) chunk that must be kept with this unit's chunk, or -1
    indents: list[str]
    forced: np.ndarray  # (n,) bool
    tokens_before: int
    cap: int | None
    scores: np.ndarray = field(default=None)  # type: ignore[assignment]
    passage_scores: np.ndarray = field(default=None)  # type: ignore[assignment]
    keep: np.ndarray = field(default=None)  # type: ignore[assignment]


def _validate_inputs(query, passages) -> list[str]:
    if not isinstance(query, str):
        raise InputDataError(f"query must be a string, got {type(query).__name__}")
    if not query.strip():
        raise InputDataError("query is empty; pass the question or instruction the context should answer")
    if isinstance(passages, str):
        raise InputDataError("passages must be a list of strings, got one string; wrap it: [passage]")
    if passages is None:
        raise InputDataError("passages is None; pass a non-empty list of strings")
    passages = list(passages)
    if not passages:
        raise InputDataError("passages is empty; pass at least one passage to compress")
    for i, p in enumerate(passages):
        if not isinstance(p, str):
            raise InputDataError(f"passages[{i}] must be a string, got {type(p).__name__}")
    return passages


def _prose_units(text: str, counter: TokenCounter, max_tokens: int) -> list[tuple[int, int]]:
    spans = []
    for span in split_sentences(text):
        piece = text[span[0] : span[1]]
        if len(piece) > max_tokens:  # a token covers at least one character: short spans cannot be too long
            offsets = counter.offsets(piece)
            if len(offsets) > max_tokens:
                spans.extend(split_long_span(text, span, offsets, max_tokens))
                continue
        spans.append(span)
    return spans


def _prepare(query, passages, opts: CompressOptions, counter: TokenCounter, patterns) -> _Item:
    passages = _validate_inputs(query, passages)
    pidx, spans, chunk, structural, parent, indents = [], [], [], [], [], []
    chunk_base = 0
    for p, text in enumerate(passages):
        if opts.content == "code":
            cunits: list[CodeUnit] = code_units(text, language=opts.language)
            for u in cunits:
                pidx.append(p)
                spans.append(u.span)
                chunk.append(chunk_base + u.chunk)
                structural.append(u.structural)
                parent.append(chunk_base + u.parent if u.parent >= 0 else -1)
                indents.append(u.indent)
            chunk_base += (max(u.chunk for u in cunits) + 1) if cunits else 0
        else:
            for s in _prose_units(text, counter, opts.max_unit_tokens):
                pidx.append(p)
                spans.append(s)
                chunk.append(p)
                structural.append(False)
                parent.append(-1)
                indents.append("")
    texts = [passages[p][s:e] for p, (s, e) in zip(pidx, spans)]
    sep = "\n" if opts.content == "code" else " "
    weights = np.array(counter.count_many([sep + t for t in texts]), dtype=np.int64)
    tokens_before = counter.count(PASSAGE_JOIN.join(passages))
    cap = resolve_budget(tokens_before, target_tokens=opts.target_tokens, rate=opts.rate)
    if cap is None and opts.threshold is None and opts.method not in ("seqlabel", "hybrid"):
        cap = resolve_budget(tokens_before, rate=DEFAULT_RATE)
    return _Item(
        query=query, passages=passages, passage=np.array(pidx, dtype=np.int64), spans=spans, texts=texts,
        weights=weights, chunk=np.array(chunk, dtype=np.int64), structural=np.array(structural, dtype=bool),
        parent=np.array(parent, dtype=np.int64), indents=indents,
        forced=np.array(force_keep_mask(texts, patterns), dtype=bool), tokens_before=tokens_before, cap=cap,
    )


# ------------------------------------------------------------------ models (loaded once per process)


@lru_cache(maxsize=2)
def _embedder(name: str):
    from datapruner.models import Embedder

    return Embedder(name)


@lru_cache(maxsize=2)
def _lm(name: str):
    from datapruner.models import CausalLM

    return CausalLM(name)


@lru_cache(maxsize=2)
def _seqlabel(name: str):
    from datapruner.scorers.seqlabel import SequenceLabelPruner

    return SequenceLabelPruner(name)


def embed_full(embedder, texts: list[str]) -> np.ndarray:
    """Embed texts without truncation: a text longer than the embedder window is split into windows
    of whole tokens whose embeddings are averaged (then re-normalised). Returns (n, d) float32."""
    if not texts:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    out = embedder.embed(texts)
    window = embedder.max_length
    lengths = embedder.token_lengths(texts)
    long = np.flatnonzero(lengths >= window)
    if len(long):
        tok = embedder.model.tokenizer
        for i in long:
            offsets = tok(texts[i], add_special_tokens=False, return_offsets_mapping=True, verbose=False)["offset_mapping"]
            if len(offsets) <= window - 2:
                continue
            step = window - 2
            pieces = [texts[i][offsets[a][0] : offsets[min(a + step, len(offsets)) - 1][1]] for a in range(0, len(offsets), step)]
            vec = embedder.embed(pieces).mean(axis=0)
            out[i] = vec / max(np.linalg.norm(vec), 1e-12)
    return out


# ------------------------------------------------------------------ methods (score + select, batched over items)


def _groups_for_mig(item: _Item, group_size: int) -> np.ndarray:
    if len(set(item.passage.tolist())) > 1:
        return np.unique(item.passage, return_inverse=True)[1]
    return np.arange(len(item.texts)) // max(1, group_size)


def _run_mig(items: list[_Item], opts: CompressOptions) -> None:
    from datapruner.scorers.mig import mig_scores, select_mig

    embedder = _embedder(opts.embedder)
    all_texts = [t for it in items for t in it.texts] + [it.query for it in items]
    # a passage retrieved for several queries of a batch is embedded once
    unique, inverse = np.unique(np.array(all_texts, dtype=object), return_inverse=True)
    emb = embed_full(embedder, [str(t) for t in unique])[inverse.reshape(-1)]
    q_emb = emb[len(all_texts) - len(items):]
    offset = 0
    for k, it in enumerate(items):
        e = emb[offset : offset + len(it.texts)]
        offset += len(it.texts)
        it.scores = mig_scores(e, q_emb[k], alpha=opts.mig_alpha, beta=opts.mig_beta)
        it.passage_scores = np.array([
            float(_normed(e[it.passage == p].mean(axis=0)) @ q_emb[k]) if (it.passage == p).any() else float("nan")
            for p in range(len(it.passages))
        ])
        pre, left = select_forced(it.weights, it.scores, it.forced, it.cap)
        it.keep = select_mig(e, q_emb[k], it.weights, _groups_for_mig(it, opts.mig_group_size), capacity=left,
                             threshold=opts.threshold, preselected=pre, alpha=opts.mig_alpha, beta=opts.mig_beta,
                             temperature=opts.mig_temperature)


def _normed(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v)
    return v / n if n > 0 else v


def _run_perplexity(items: list[_Item], opts: CompressOptions) -> None:
    from datapruner.scorers import perplexity_chunks as pc

    lm = _lm(opts.lm)
    scorer = pc.PerplexityScorer(lm, max_context=opts.ppl_max_context)
    sep = "\n" if opts.content == "code" else " "
    tok = lm.tokenizer
    # ---- pass 1: every chunk window with its question prompt, plus each question alone
    seqs_ctx, seqs_q, owners = [], [], []  # owner: (item, chunk id, window unit indices) or (item, None, None)
    q_info = []
    for k, it in enumerate(items):
        q_ids = tok(" " + it.query.strip(), add_special_tokens=False)["input_ids"]
        r_ids = tok(pc.RESTRICT, add_special_tokens=False)["input_ids"]
        prompt = list(q_ids) + list(r_ids)
        q_info.append((prompt, len(q_ids)))
        seqs_ctx.append([])
        seqs_q.append(prompt)
        owners.append((k, None, None))
        it._unit_ids = scorer.tokenize_units(it.texts, sep)  # type: ignore[attr-defined]
        for c in np.unique(it.chunk):
            members = np.flatnonzero(it.chunk == c)
            ids = [it._unit_ids[i] if j else scorer.tokenize_units([it.texts[i]], sep)[0] for j, i in enumerate(members)]  # type: ignore[attr-defined]
            for a, b in scorer.windows(ids, len(prompt)):
                seqs_ctx.append(ids[a:b])
                seqs_q.append(prompt)
                owners.append((k, int(c), members[a:b]))
    res = scorer.score(seqs_ctx, seqs_q)
    base_nll = {}
    chunk_rel: dict[tuple[int, int], float] = {}
    for it in items:
        it.scores = np.zeros(len(it.texts))
        it._unit_ppl = np.ones(len(it.texts))  # type: ignore[attr-defined]
    for (k, c, members), r in zip(owners, res):
        if c is None:
            base_nll[k] = r.question_nll
    for (k, c, members), r in zip(owners, res):
        if c is None:
            continue
        n_q = q_info[k][1]
        if opts.ppl_ranking == "ami":
            rel = float(pc.ami_scores(base_nll[k][:n_q], [r.question_nll[:n_q]])[0])
        else:
            rel = -float(pc.longllmlingua_scores([r.question_nll])[0])
        chunk_rel[(k, c)] = max(chunk_rel.get((k, c), -np.inf), rel)
        items[k]._unit_ppl[members] = r.unit_ppl  # type: ignore[attr-defined]
    # ---- coarse: rank chunks, keep the best until coarse_ratio x budget
    fine_ctx, fine_q, fine_owner = [], [], []
    plans = []
    for k, it in enumerate(items):
        chunks = np.unique(it.chunk)
        rel = np.array([chunk_rel[(k, int(c))] for c in chunks]) if len(chunks) else np.zeros(0)
        ctoks = np.array([int(it.weights[it.chunk == c].sum()) for c in chunks], dtype=np.int64)
        it.passage_scores = np.full(len(it.passages), np.nan)
        for c, r in zip(chunks, rel):
            p = int(it.passage[it.chunk == c][0])
            it.passage_scores[p] = r if np.isnan(it.passage_scores[p]) else max(it.passage_scores[p], r)
        if it.cap is not None:
            order = np.lexsort((chunks, -rel))
            kept, total = [], 0
            for j in order:
                if total >= opts.ppl_coarse_ratio * it.cap and kept:
                    break
                kept.append(j)
                total += ctoks[j]
            kept = sorted(kept)
        else:
            kept = list(range(len(chunks)))
        forced_tokens = int(it.weights[it.forced].sum()) if it.cap is not None else 0
        budgets = (pc.allocate_chunk_budgets(rel[kept], ctoks[kept], max(0, it.cap - forced_tokens), beta=opts.ppl_beta)
                   if it.cap is not None and kept else np.zeros(len(kept), dtype=np.int64))
        blocks_of = {}
        for j, budget in zip(kept, budgets):
            members = np.flatnonzero(it.chunk == chunks[j])
            ppl = it._unit_ppl[members]  # type: ignore[attr-defined]
            blocks = pc.blocks_from_boundaries(len(members), pc.spike_boundaries(ppl, k=opts.ppl_spike_k))
            if it.cap is not None:
                blocks = pc.split_large_blocks(blocks, ppl, it.weights[members], max(1, int(budget) // 2))
            blocks_of[j] = (members, blocks)
            for a, b in blocks:
                ids = [it._unit_ids[i] for i in members[a:b]]  # type: ignore[attr-defined]
                ids[0] = scorer.tokenize_units([it.texts[members[a]]], sep)[0]
                fine_ctx.append(ids)
                fine_q.append(q_info[k][0][: q_info[k][1]])  # AMI needs the question tokens only
                fine_owner.append((k, j, a, b))
        plans.append((chunks, rel, ctoks, kept, blocks_of, budgets))
    # ---- pass 2: AMI of every block of the kept chunks
    block_ami: dict[tuple[int, int, int, int], float] = {}
    for (k, j, a, b), r in zip(fine_owner, scorer.score(fine_ctx, fine_q) if fine_ctx else []):
        n_q = q_info[k][1]
        block_ami[(k, j, a, b)] = float(pc.ami_scores(base_nll[k][:n_q], [r.question_nll[:n_q]])[0])
    # ---- fine: allocate per-chunk budgets, knapsack inside each chunk, top up with what is left
    for k, (it, (chunks, rel, ctoks, kept, blocks_of, budgets)) in enumerate(zip(items, plans)):
        mandatory = it.forced.copy()
        if opts.content == "code":
            mandatory |= it.structural
        keep, left = select_forced(it.weights, it.scores, it.forced, it.cap)
        all_blocks = []  # (chunk position, unit ids of the chunk, blocks, raw block AMIs)
        for j in kept:
            members, blocks = blocks_of[j]
            raw = np.array([block_ami[(k, j, a, b)] for a, b in blocks])
            for (a, b), r in zip(blocks, raw):
                it.scores[members[a:b]] = r
            all_blocks.append((j, members, blocks, raw))
        allvals = np.concatenate([x[3] for x in all_blocks]) if all_blocks else np.zeros(0)
        norm_all = pc.normalise_values(allvals) if len(allvals) else allvals
        if it.cap is None:
            thr = opts.threshold if opts.threshold is not None else 0.5
            pos = 0
            for j, members, blocks, raw in all_blocks:
                for (a, b), v in zip(blocks, norm_all[pos : pos + len(blocks)]):
                    if v >= thr:
                        keep[members[a:b]] = True
                pos += len(blocks)
            it.keep = keep
            continue
        for (j, members, blocks, raw), budget in zip(all_blocks, budgets):
            must = mandatory[members] & ~keep[members]
            if opts.content == "code" and it.weights[members][must].sum() > budget:
                must = it.forced[members] & ~keep[members]
            sub = pc.select_blocks(blocks, pc.normalise_values(raw), np.where(keep[members], 0, it.weights[members]), int(budget), mandatory=must)
            keep[members] |= sub
        # top up: leftover tokens go to the best remaining blocks of the kept chunks
        spare = it.cap - int(it.weights[keep].sum())
        cand, vals, wts = [], [], []
        pos = 0
        for j, members, blocks, raw in all_blocks:
            for (a, b), v in zip(blocks, norm_all[pos : pos + len(blocks)]):
                idx = members[a:b][~keep[members[a:b]]]
                if len(idx) == len(members[a:b]):
                    cand.append(idx)
                    vals.append(v)
                    wts.append(int(it.weights[idx].sum()))
            pos += len(blocks)
        if spare > 0 and cand:
            for idx, c in zip(cand, knapsack(wts, vals, spare)):
                if c:
                    keep[idx] = True
        it.keep = keep


def _run_seqlabel(items: list[_Item], opts: CompressOptions, *, hybrid: bool) -> None:
    pruner = _seqlabel(opts.seqlabel_model)
    batch = []
    for it in items:
        per_passage = [[it.spans[i] for i in np.flatnonzero(it.passage == p)] for p in range(len(it.passages))]
        batch.append((it.query, it.passages, per_passage))
    outputs = pruner.score_units_batch(batch)
    for it, (unit_probs, passage_scores) in zip(items, outputs):
        it.scores = np.zeros(len(it.texts))
        for p, probs in enumerate(unit_probs):
            it.scores[it.passage == p] = np.asarray(probs, dtype=np.float64)
        it.passage_scores = np.asarray(passage_scores, dtype=np.float64)
        allowed = np.ones(len(it.texts), dtype=bool)
        if hybrid and len(it.passages) > 1:
            ptoks = np.bincount(it.passage, weights=it.weights, minlength=len(it.passages))
            order = np.lexsort((np.arange(len(it.passages)), -it.passage_scores))
            kept_p, total = [], 0.0
            limit = opts.hybrid_passage_ratio * it.cap if it.cap is not None else None
            for p in order:
                if limit is not None and total >= limit and kept_p:
                    break
                if limit is None and len(kept_p) >= max(1, math.ceil(len(order) / 2)):
                    break
                kept_p.append(p)
                total += ptoks[p]
            allowed = np.isin(it.passage, kept_p)
        keep, left = select_forced(it.weights, it.scores, it.forced & allowed, it.cap)
        if left is None:
            from datapruner.scorers.seqlabel import CONSERVATIVE_THRESHOLD, keep_units_by_threshold

            thr = opts.threshold if opts.threshold is not None else CONSERVATIVE_THRESHOLD
            keep |= allowed & keep_units_by_threshold(it.scores, threshold=thr)
        else:
            # Provence under a budget: keep units by mean keep-probability until the budget is full
            for i in np.lexsort((np.arange(len(it.scores)), -it.scores)):
                if allowed[i] and not keep[i] and it.weights[i] <= left:
                    keep[i] = True
                    left -= int(it.weights[i])
        it.keep = keep


def _run_baseline(items: list[_Item], opts: CompressOptions) -> None:
    rng = np.random.default_rng(opts.random_state)
    for it in items:
        n = len(it.texts)
        it.scores = rng.random(n) if opts.method == "random" else 1.0 - np.arange(n) / max(n, 1)
        it.passage_scores = np.array([float(it.scores[it.passage == p].max()) if (it.passage == p).any() else float("nan")
                                      for p in range(len(it.passages))])
        keep, left = select_forced(it.weights, it.scores, it.forced, it.cap)
        for i in np.lexsort((np.arange(n), -it.scores)):
            if left is None or (not keep[i] and it.weights[i] <= left):
                keep[i] = True
                left = None if left is None else left - int(it.weights[i])
        it.keep = keep


# ------------------------------------------------------------------ rendering


def _drop_values(it: _Item) -> np.ndarray:
    """Priority for :func:`enforce_cap` (the lowest is dropped first): code structure, then forced
    units, then the method's score rank."""
    n = len(it.texts)
    ranks = np.zeros(n)
    if n:
        s = np.nan_to_num(np.asarray(it.scores, dtype=np.float64), nan=-np.inf)
        ranks[np.argsort(s, kind="stable")] = np.arange(n) / max(n, 1)
    values = ranks + it.forced * 1.0 + it.structural * 2.0
    headers = np.isin(it.chunk, it.parent[it.parent >= 0]) & it.structural
    return values + headers * 1.0


def _close_code(it: _Item) -> None:
    """Code: a kept unit brings its chunk's signature/returns and its class header."""
    if not it.keep.any():
        return
    chunks = set(it.chunk[it.keep].tolist())
    while True:
        parents = {int(p) for p in it.parent[np.isin(it.chunk, list(chunks))] if p >= 0}
        if parents <= chunks:
            break
        chunks |= parents
    it.keep |= np.isin(it.chunk, list(chunks)) & it.structural


def _code_dependents(it: _Item, unit: int) -> set[int]:
    """Dropping a chunk's header (its first, structural unit) drops the chunk and its child chunks."""
    chunk = int(it.chunk[unit])
    first = int(np.flatnonzero(it.chunk == chunk)[0])
    if unit != first or not it.structural[unit]:
        return set()
    chunks, frontier = {chunk}, {chunk}
    while frontier:
        frontier = {int(c) for c in np.unique(it.chunk[np.isin(it.parent, list(frontier))])} - chunks
        chunks |= frontier
    return set(np.flatnonzero(np.isin(it.chunk, list(chunks))).tolist())


def _render(it: _Item, kept: list[int], opts: CompressOptions, passage_order: list[int]) -> str:
    kept_set = set(kept)
    parts = []
    if opts.content != "code":
        for p in passage_order:
            texts = [it.texts[i] for i in kept if it.passage[i] == p]
            if texts:
                parts.append(" ".join(texts))
        return PASSAGE_JOIN.join(parts)
    prefix = comment_prefix(opts.language)
    python = opts.language.lower() == "python"
    for p in passage_order:
        members = np.flatnonzero(it.passage == p)
        if not any(i in kept_set for i in members):
            continue
        lines, gap = [], []
        prev = None

        def flush(next_unit):
            if not gap:
                return
            first = gap[0]
            n_lines = sum(it.texts[i].count("\n") + 1 for i in gap)
            indent = it.indents[first]
            opens = prev is not None and len(it.indents[prev]) < len(indent)
            closes = next_unit is None or len(it.indents[next_unit]) < len(indent)
            if python and opens and closes:
                lines.append(f"{indent}...  {prefix} {n_lines} lines elided")
            else:
                lines.append(f"{indent}{prefix} ... {n_lines} lines elided")
            gap.clear()

        for i in members:
            if i in kept_set:
                flush(i)
                lines.append(it.texts[i])
                prev = i
            else:
                gap.append(i)
        flush(None)
        parts.append("\n".join(lines))
    return PASSAGE_JOIN.join(parts)


def _finish(it: _Item, opts: CompressOptions, counter: TokenCounter) -> CompressionResult:
    if opts.content == "code":
        _close_code(it)
    passage_scores = np.nan_to_num(np.asarray(it.passage_scores, dtype=np.float64), nan=-np.inf)
    if opts.reorder == "relevance":
        passage_order = [int(p) for p in np.lexsort((np.arange(len(it.passages)), -passage_scores))]
    else:
        passage_order = list(range(len(it.passages)))
    rank = {p: r for r, p in enumerate(passage_order)}
    kept = sorted(np.flatnonzero(it.keep).tolist(), key=lambda i: (rank[int(it.passage[i])], i))
    kept, text, tokens = enforce_cap(kept, _drop_values(it), lambda ids: _render(it, ids, opts, passage_order),
                                     counter.count, it.cap,
                                     dependents=(lambda i: _code_dependents(it, i)) if opts.content == "code" else None)
    units = [KeptUnit(int(it.passage[i]), int(it.spans[i][0]), int(it.spans[i][1]), float(it.scores[i]), it.texts[i])
             for i in kept]
    return CompressionResult(text=text, units=units, passage_scores=[float(x) for x in it.passage_scores],
                             tokens_before=it.tokens_before, tokens_after=tokens, method=opts.method, budget=it.cap)


def _run(items: list[_Item], opts: CompressOptions) -> None:
    if opts.method == "mig":
        _run_mig(items, opts)
    elif opts.method == "perplexity":
        _run_perplexity(items, opts)
    elif opts.method in ("seqlabel", "hybrid"):
        _run_seqlabel(items, opts, hybrid=opts.method == "hybrid")
    else:
        _run_baseline(items, opts)


def compress_batch(pairs, **options) -> list[CompressionResult]:
    """Compress many (query, passages) pairs, batching model calls across them.

    Parameters
    ----------
    pairs : iterable of ``(query, passages)``.
    **options : the keyword options of :func:`compress` (or ``options=`` a :class:`CompressOptions`).

    Returns
    -------
    one :class:`CompressionResult` per pair, in order. A bad pair raises (naming its index).
    """
    opts = options.pop("options", None)
    if opts is None:
        opts = CompressOptions.from_kwargs(**options)
    elif options:
        raise ConfigError("options", sorted(options), "either a CompressOptions in options= or keyword options, not both")
    counter = TokenCounter(opts.tokenizer)
    patterns = compile_force_keep(list(opts.force_keep))
    items = []
    for k, pair in enumerate(pairs):
        try:
            query, passages = pair
        except (TypeError, ValueError):
            raise InputDataError(f"pair {k} must be (query, passages), got {type(pair).__name__}") from None
        try:
            items.append(_prepare(query, passages, opts, counter, patterns))
        except InputDataError as exc:
            raise InputDataError(f"pair {k}: {exc}") from None
    if not items:
        return []
    _run(items, opts)
    return [_finish(it, opts, counter) for it in items]


def compress(
    query: str,
    passages: list[str],
    *,
    method: str = "mig",
    target_tokens: int | None = None,
    rate: float | None = None,
    threshold: float | None = None,
    tokenizer: str = "bundled-smollm2",
    reorder: str | None = None,
    force_keep=None,
    **options,
) -> CompressionResult:
    """Keep what answers `query` from `passages` under a hard token budget.

    Parameters
    ----------
    query : the question or instruction (non-empty).
    passages : list of passage strings (empty strings are allowed and contribute nothing).
    method : ``"mig"`` | ``"perplexity"`` | ``"seqlabel"`` | ``"hybrid"`` (or the baselines
        ``"random"``, ``"lead"``).
    target_tokens : hard cap in tokens (int >= 1).
    rate : hard cap as a fraction of the input tokens, in (0, 1]; 0.25 is a 4x reduction.
    threshold : with no budget, the method's keep threshold (seqlabel/hybrid: mean keep
        probability, default 0.1; mig: minimum MMR score; perplexity: minimum normalised block value).
    tokenizer : the tokenizer that counts the budget: ``"bundled-smollm2"`` (default), a folder, or
        a cached hub name (an uncached hub name fails at once offline).
    reorder : None keeps the original order; ``"relevance"`` orders passages by passage score.
    force_keep : ``"numbers"``, ``"entities"`` or regexes; matching units are kept first (as long
        as they fit: the cap always wins).
    **options : further :class:`CompressOptions` fields: ``content="code"`` with ``language=``,
        ``max_unit_tokens``, model names (``embedder``, ``lm``, ``seqlabel_model``), method
        parameters (``mig_*``, ``ppl_*``, ``hybrid_passage_ratio``) and ``random_state``.

    Returns
    -------
    CompressionResult

    Raises
    ------
    InputDataError : empty query, no passages, a passage that is not a string.
    ConfigError : unknown method, budget <= 0, rate outside (0, 1], both budgets, a bad option.
    ModelLoadError : the tokenizer or a model cannot be loaded offline.
    """
    opts = CompressOptions.from_kwargs(method=method, target_tokens=target_tokens, rate=rate, threshold=threshold,
                                       tokenizer=tokenizer, reorder=reorder, force_keep=force_keep, **options)
    _validate_inputs(query, passages)
    return compress_batch([(query, passages)], options=opts)[0]
