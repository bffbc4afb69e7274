"""B2 perplexity chunks as a compression method (LongLLMLingua 2024; LongCodeZip 2025).

The formulas and the batched model adapter are in :mod:`datapruner.scorers.perplexity_chunks`.
One call of :meth:`PerplexityChunks.select` runs two batched passes of the causal LM over all
items of the batch:

1. *chunk pass*: every chunk (a passage for prose; a function, method or block for code), in
   windows of whole units, followed by the question prompt; plus each question alone. Gives
   each chunk's relevance (AMI or the LongLLMLingua score) and each unit's perplexity.
2. *coarse*: chunks ranked by relevance are kept until they hold ``coarse_ratio`` x the budget;
   each kept chunk gets a token allowance from its relevance and is cut into blocks at
   perplexity spikes.
3. *block pass*: every block of the kept chunks with the question alone: its AMI is the block's value
   (only the question is scored: the LM head runs on the block's last position, not on every token).
4. *fine*: a 0/1 knapsack over each chunk's blocks within its allowance (code signatures and
   returns first when they fit), then the tokens left go to the best remaining whole blocks.
   Threshold mode keeps every block whose normalised value reaches the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from datapruner.compression.budget import knapsack, select_forced
from datapruner.compression.item import CompressionItem
from datapruner.compression.method import CompressionMethod, check_model_name
from datapruner.compression.selection import UnitSelection, best_until
from datapruner.models import shared_causal_lm
from datapruner.scorers import perplexity_chunks as pc
from datapruner.validation import check_choice, check_number, check_positive_int


@dataclass
class _ItemWork:
    """What the passes learn about one item (the method's own working state, never the item's)."""

    prompt: list[int]  # question tokens + the LongLLMLingua restriction
    n_question: int  # question tokens at the start of `prompt`
    unit_ids: list[list[int]]  # token ids of each unit after its separator
    unit_ppl: np.ndarray  # perplexity of each unit given the preceding units of its chunk window
    base_nll: np.ndarray = field(default_factory=lambda: np.zeros(0))  # the prompt's NLL with no context
    chunk_rel: dict[int, float] = field(default_factory=dict)  # chunk id -> relevance (higher = keep)
    chunks: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    kept: list[int] = field(default_factory=list)  # positions in `chunks` of the chunks kept by the coarse step
    budgets: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # allowance per kept chunk
    blocks: dict[int, tuple[np.ndarray, list[tuple[int, int]]]] = field(default_factory=dict)  # position -> (units, blocks)


class PerplexityChunks(CompressionMethod):
    """Question-conditioned perplexity: coarse chunk ranking, fine knapsack over spike-delimited blocks."""

    name = "perplexity"
    summary = "B2 LongLLMLingua / LongCodeZip perplexity chunks with the bundled SmolLM2"
    params_doc = {
        "ranking": "chunk relevance: 'ami' (LongCodeZip, default) or 'longllmlingua'",
        "beta": "how strongly relevance shifts a chunk's token allowance, >= 0 (default 0.5)",
        "spike_k": "perplexity spike threshold mean(|d|) + spike_k * std(|d|), >= 0 (default 0.2)",
        "coarse_ratio": "keep chunks holding up to this many times the budget, >= 1 (default 2.0)",
        "max_context": "tokens of context per LM sequence (longer chunks are windowed), >= 64 (default 1024)",
        "batch_tokens": f"padded tokens per LM forward pass (speed and memory only), >= 64 (default {pc.DEFAULT_BATCH_TOKENS})",
        "lm": "causal LM: 'bundled-smollm2' (default), a folder or a cached hub name",
    }
    threshold_doc = "minimum normalised block value, in [0.05, 1]"

    def __init__(self, **params):
        super().__init__(**params)
        self.ranking = self.param("ranking", "ami", check_choice, ("ami", "longllmlingua"))
        self.beta = self.param("beta", 0.5, check_number, low=0.0)
        self.spike_k = self.param("spike_k", 0.2, check_number, low=0.0)
        self.coarse_ratio = self.param("coarse_ratio", 2.0, check_number, low=1.0)
        self.max_context = self.param("max_context", 1024, check_positive_int, minimum=64)
        self.batch_tokens = self.param("batch_tokens", pc.DEFAULT_BATCH_TOKENS, check_positive_int, minimum=64)
        self.lm = self.param("lm", "bundled-smollm2", check_model_name)

    def scorer(self) -> pc.PerplexityScorer:
        """The batched NLL adapter over the (shared) causal LM."""
        return pc.PerplexityScorer(shared_causal_lm(self.lm), max_context=self.max_context, max_tokens_per_batch=self.batch_tokens)

    def select(self, items, *, random_state=0):
        scorer = self.scorer()
        work = self.chunk_pass(items, scorer)
        for it, w in zip(items, work):
            self.plan_chunks(it, w)
        block_ami = self.block_pass(items, work, scorer)
        return [self.fine(it, w, block_ami[k]) for k, (it, w) in enumerate(zip(items, work))]

    # ---------------------------------------------------------------- pass 1: chunks

    def chunk_pass(self, items: list[CompressionItem], scorer: pc.PerplexityScorer) -> list[_ItemWork]:
        """Score every chunk window with the question prompt, and each question alone."""
        tok = scorer.lm.tokenizer
        restrict = list(tok(pc.RESTRICT, add_special_tokens=False)["input_ids"])
        contexts, questions, owners = [], [], []  # owner: (item, chunk id or None, unit indices)
        work = []
        for k, it in enumerate(items):
            q_ids = list(tok(" " + it.query.strip(), add_special_tokens=False)["input_ids"])
            w = _ItemWork(prompt=q_ids + restrict, n_question=len(q_ids),
                          unit_ids=scorer.tokenize_units(it.texts, it.separator), unit_ppl=np.ones(it.n_units))
            work.append(w)
            contexts.append([])
            questions.append(w.prompt)
            owners.append((k, None, None))
            for c in np.unique(it.chunk):
                members = np.flatnonzero(it.chunk == c)
                ids = [self.first_unit_ids(it, i, scorer) if j == 0 else w.unit_ids[i] for j, i in enumerate(members)]
                for a, b in scorer.windows(ids, len(w.prompt)):
                    contexts.append(ids[a:b])
                    questions.append(w.prompt)
                    owners.append((k, int(c), members[a:b]))
        results = scorer.score(contexts, questions)
        for (k, c, _), r in zip(owners, results):
            if c is None:
                work[k].base_nll = r.question_nll
        for (k, c, members), r in zip(owners, results):
            if c is None:
                continue
            w = work[k]
            if self.ranking == "ami":
                rel = float(pc.ami_scores(w.base_nll[: w.n_question], [r.question_nll[: w.n_question]])[0])
            else:
                rel = -float(pc.longllmlingua_scores([r.question_nll])[0])
            w.chunk_rel[c] = max(w.chunk_rel.get(c, -np.inf), rel)
            w.unit_ppl[members] = r.unit_ppl
        return work

    @staticmethod
    def first_unit_ids(it: CompressionItem, unit: int, scorer: pc.PerplexityScorer) -> list[int]:
        """Token ids of a unit that starts a sequence (no separator before it)."""
        return scorer.tokenize_units([it.texts[unit]], it.separator)[0]

    # ---------------------------------------------------------------- coarse

    def relevance(self, w: _ItemWork) -> np.ndarray:
        """Relevance of each chunk of `w.chunks` (higher = more relevant)."""
        return np.array([w.chunk_rel[int(c)] for c in w.chunks]) if len(w.chunks) else np.zeros(0)

    def plan_chunks(self, it: CompressionItem, w: _ItemWork) -> None:
        """Keep the most relevant chunks, give each an allowance, cut each into blocks at spikes."""
        w.chunks = np.unique(it.chunk)
        rel = self.relevance(w)
        ctoks = np.array([int(it.weights[it.chunk == c].sum()) for c in w.chunks], dtype=np.int64)
        if it.cap is None:
            w.kept = list(range(len(w.chunks)))
            w.budgets = np.zeros(len(w.kept), dtype=np.int64)
        else:
            w.kept = best_until(rel, ctoks, self.coarse_ratio * it.cap).tolist()
            forced_tokens = int(it.weights[it.forced].sum())
            w.budgets = (pc.allocate_chunk_budgets(rel[w.kept], ctoks[w.kept], max(0, it.cap - forced_tokens), beta=self.beta)
                         if w.kept else np.zeros(0, dtype=np.int64))
        for j, budget in zip(w.kept, w.budgets):
            members = np.flatnonzero(it.chunk == w.chunks[j])
            ppl = w.unit_ppl[members]
            blocks = pc.blocks_from_boundaries(len(members), pc.spike_boundaries(ppl, k=self.spike_k))
            if it.cap is not None:
                blocks = pc.split_large_blocks(blocks, ppl, it.weights[members], max(1, int(budget) // 2))
            w.blocks[j] = (members, blocks)

    def passage_scores(self, it: CompressionItem, w: _ItemWork) -> np.ndarray:
        """A passage scores as its most relevant chunk (NaN without units)."""
        out = np.full(len(it.passages), np.nan)
        for c, r in zip(w.chunks, self.relevance(w)):
            p = int(it.passage[it.chunk == c][0])
            out[p] = r if np.isnan(out[p]) else max(out[p], r)
        return out

    # ---------------------------------------------------------------- pass 2: blocks

    def block_pass(self, items: list[CompressionItem], work: list[_ItemWork],
                   scorer: pc.PerplexityScorer) -> list[dict[tuple[int, int, int], float]]:
        """AMI of every block of the kept chunks with the question: ``{(chunk position, start, end): AMI}`` per item."""
        contexts, questions, owners = [], [], []
        for k, (it, w) in enumerate(zip(items, work)):
            for j in w.kept:
                members, blocks = w.blocks[j]
                for a, b in blocks:
                    ids = [w.unit_ids[i] for i in members[a:b]]
                    ids[0] = self.first_unit_ids(it, members[a], scorer)
                    contexts.append(ids)
                    questions.append(w.prompt[: w.n_question])  # AMI needs the question tokens only
                    owners.append((k, j, a, b))
        out: list[dict[tuple[int, int, int], float]] = [{} for _ in items]
        for (k, j, a, b), r in zip(owners, scorer.score(contexts, questions, context_nll=False) if contexts else []):
            n_q = work[k].n_question
            out[k][(j, a, b)] = float(pc.ami_scores(work[k].base_nll[:n_q], [r.question_nll[:n_q]])[0])
        return out

    # ---------------------------------------------------------------- fine

    def fine(self, it: CompressionItem, w: _ItemWork, block_ami: dict[tuple[int, int, int], float]) -> UnitSelection:
        """Knapsack over each kept chunk's blocks, then a top-up (or the threshold rule)."""
        scores = np.zeros(it.n_units)
        keep, _ = select_forced(it.weights, scores, it.forced, it.cap)
        all_blocks = []  # (chunk position, unit ids of the chunk, blocks, raw block AMIs)
        for j in w.kept:
            members, blocks = w.blocks[j]
            raw = np.array([block_ami[(j, a, b)] for a, b in blocks])
            for (a, b), r in zip(blocks, raw):
                scores[members[a:b]] = r
            all_blocks.append((j, members, blocks, raw))
        allvals = np.concatenate([x[3] for x in all_blocks]) if all_blocks else np.zeros(0)
        norm_all = pc.normalise_values(allvals) if len(allvals) else allvals
        block_values = []  # (unit ids of the block, normalised value), in chunk order
        pos = 0
        for _, members, blocks, _ in all_blocks:
            block_values += [(members[a:b], v) for (a, b), v in zip(blocks, norm_all[pos : pos + len(blocks)])]
            pos += len(blocks)
        if it.cap is None:
            for idx, v in block_values:
                if v >= it.threshold:
                    keep[idx] = True
            return UnitSelection(scores, self.passage_scores(it, w), keep)
        mandatory = it.forced | it.structural if it.content == "code" else it.forced
        for (_, members, blocks, raw), budget in zip(all_blocks, w.budgets):
            must = mandatory[members] & ~keep[members]
            if it.content == "code" and it.weights[members][must].sum() > budget:
                must = it.forced[members] & ~keep[members]
            sub = pc.select_blocks(blocks, pc.normalise_values(raw), np.where(keep[members], 0, it.weights[members]),
                                   int(budget), mandatory=must)
            keep[members] |= sub
        # top up: leftover tokens go to the best remaining whole blocks of the kept chunks
        spare = it.cap - int(it.weights[keep].sum())
        cand = [(idx, v) for idx, v in block_values if not keep[idx].any()]
        if spare > 0 and cand:
            chosen = knapsack([int(it.weights[idx].sum()) for idx, _ in cand], [v for _, v in cand], spare)
            for (idx, _), c in zip(cand, chosen):
                if c:
                    keep[idx] = True
        return UnitSelection(scores, self.passage_scores(it, w), keep)
