"""Held-out evaluation of a B1 pruner against the embedding-similarity baseline.

Two measurements, both on questions the bundled pruner never trained on
(:data:`datapruner.pipelines.train_pruner.HELDOUT`):

- :func:`hotpotqa_evidence_recall`: per question, the sentences of all its paragraphs (2 gold + up
  to 8 retrieved distractors) are ranked by score; evidence recall@k is the fraction of the
  supporting-fact sentences among the top k, with k = the number of gold sentences (``at_gold``) and
  fixed budgets. Pruner score: the sentence's mean keep-probability; ``seqlabel_x_rerank`` also
  multiplies by the sigmoid of the passage's rerank score. Baseline: bundled MiniLM cosine between
  the question and each sentence. ``chance`` is the expected recall of a random ranking (k / N).
- :func:`xquad_answer_sentence`: per question, is the top-scored sentence of its paragraph the one
  holding the answer span; and is the question's paragraph ranked first among its article's
  paragraphs (rerank accuracy@1).

Both take any object with ``score_units_batch`` (a :class:`SequenceLabelPruner`) and an
``Embedder``, so a benchmark can call them on other models.
"""

from __future__ import annotations

import numpy as np

from datapruner.pipelines.train_pruner import answer_sentences, join_sentences


def hotpotqa_candidates(record: dict) -> tuple[list[str], list[list[tuple[int, int]]], list[np.ndarray]]:
    """Passages of one HotpotQA record (para_a, para_b, distractors), their sentence spans, gold masks."""
    passages, spans, gold = [], [], []
    facts = record["supporting_facts"]
    groups = [(record["para_a"], facts[0]), (record["para_b"], facts[1])]
    groups += [(d[1], []) for d in record["distractors"]]
    for sents, idx in groups:
        text, sp = join_sentences(sents)
        mask = np.zeros(len(sp), dtype=bool)
        mask[[i for i in idx if 0 <= i < len(sp)]] = True
        passages.append(text)
        spans.append(sp)
        gold.append(mask)
    return passages, spans, gold


def recall_at_k(scores: np.ndarray, gold: np.ndarray, k: int) -> float:
    """Fraction of gold items among the `k` highest scores (ties: earlier item first)."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[:k]
    return float(gold[order].sum() / max(1, gold.sum()))


def paired_counts(ours: list[float], baseline: list[float]) -> dict:
    """Per-question comparison: on how many questions `ours` is higher, lower, equal."""
    d = np.asarray(ours, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    return {"better": int((d > 1e-12).sum()), "worse": int((d < -1e-12).sum()), "tied": int((np.abs(d) <= 1e-12).sum())}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def hotpotqa_evidence_recall(records: list[dict], *, pruner, embedder, budgets: tuple[int, ...] = (5,)) -> dict:
    """Sentence-level evidence recall of `pruner` vs embedding similarity on HotpotQA `records`.

    Returns
    -------
    dict with ``n_questions``, ``mean_sentences``, ``mean_gold`` and, for each method
    (``seqlabel``, ``seqlabel_x_rerank``, ``embedding``, ``chance``), ``{"at_gold": r, "at_5": r, ...}``;
    recall in [0, 1], higher is better; ``seqlabel_vs_embedding_at_gold``: :func:`paired_counts`.
    """
    cands = [hotpotqa_candidates(r) for r in records]
    results = pruner.score_units_batch([(r["question"], c[0], c[1]) for r, c in zip(records, cands)])
    sentences = [
        [p[s:e] for p, sp in zip(c[0], c[1]) for s, e in sp] for c in cands
    ]
    flat = [s for sents in sentences for s in sents]
    sent_vecs = embedder.embed(flat)
    query_vecs = embedder.embed([r["question"] for r in records])
    methods = ("seqlabel", "seqlabel_x_rerank", "embedding", "chance")
    keys = ("at_gold", *(f"at_{b}" for b in budgets))
    acc = {m: {k: [] for k in keys} for m in methods}
    pos = 0
    n_sent, n_gold = [], []
    for qi, ((_passages, _spans, gold), (unit_probs, rerank)) in enumerate(zip(cands, results)):
        gold_all = np.concatenate(gold)
        n = len(gold_all)
        probs = np.concatenate(unit_probs).astype(np.float64)
        weight = np.concatenate([np.full(len(u), _sigmoid(rerank[p])) for p, u in enumerate(unit_probs)])
        cos = sent_vecs[pos : pos + n] @ query_vecs[qi]
        pos += n
        scores = {"seqlabel": probs, "seqlabel_x_rerank": probs * weight, "embedding": cos}
        g = int(gold_all.sum())
        n_sent.append(n)
        n_gold.append(g)
        for key, k in zip(keys, (g, *budgets)):
            for m, s in scores.items():
                acc[m][key].append(recall_at_k(s, gold_all, k))
            acc["chance"][key].append(min(1.0, k / n))
    out = {
        "n_questions": len(records),
        "mean_sentences": float(np.mean(n_sent)),
        "mean_gold": float(np.mean(n_gold)),
    }
    for m in methods:
        out[m] = {k: round(float(np.mean(v)), 4) for k, v in acc[m].items()}
    out["seqlabel_vs_embedding_at_gold"] = paired_counts(acc["seqlabel"]["at_gold"], acc["embedding"]["at_gold"])
    return out


def xquad_answer_sentence(articles: list[dict], *, pruner, embedder, limit: int | None = None) -> dict:
    """Answer-sentence accuracy@1 and paragraph rerank accuracy@1 on XQuAD `articles`.

    Returns
    -------
    dict: ``n_questions`` and, for ``seqlabel`` and ``embedding``, ``answer_sentence_at_1`` (top unit
    of the gold paragraph holds the answer) and ``paragraph_at_1`` (gold paragraph ranked first
    among the article's paragraphs); higher is better; ``seqlabel_vs_embedding_answer_sentence``:
    :func:`paired_counts`.
    """
    from datapruner.compression.units import split_sentences

    items, golds = [], []
    for art in articles:
        contexts = [p["context"] for p in art["paragraphs"]]
        spans = [split_sentences(c) for c in contexts]
        for pi, para in enumerate(art["paragraphs"]):
            for qa in para["qas"]:
                ans = qa["answers"][0]
                start = int(ans["answer_start"])
                hit = set(answer_sentences(spans[pi], start, start + len(ans["text"])))
                items.append((qa["question"], contexts, spans))
                golds.append((pi, np.array([sp in hit for sp in spans[pi]], dtype=bool)))
    if limit is not None:
        items, golds = items[:limit], golds[:limit]
    results = pruner.score_units_batch(items)
    uniq = sorted({c for _, ctxs, _ in items for c in ctxs})
    para_vec = dict(zip(uniq, embedder.embed(uniq)))
    q_vecs = embedder.embed([q for q, _, _ in items])
    sent_cache: dict[str, np.ndarray] = {}
    hits = {m: {"answer_sentence_at_1": [], "paragraph_at_1": []} for m in ("seqlabel", "embedding")}
    for (q, ctxs, spans), (pi, gold), (unit_probs, rerank), qv in zip(items, golds, results, q_vecs):
        ctx = ctxs[pi]
        if ctx not in sent_cache:
            sent_cache[ctx] = embedder.embed([ctx[s:e] for s, e in spans[pi]])
        cos_sent = sent_cache[ctx] @ qv
        cos_para = np.array([para_vec[c] @ qv for c in ctxs])
        for m, sent_scores, para_scores in (
            ("seqlabel", unit_probs[pi], rerank),
            ("embedding", cos_sent, cos_para),
        ):
            top = int(np.argmax(sent_scores)) if len(sent_scores) else -1
            hits[m]["answer_sentence_at_1"].append(bool(top >= 0 and gold[top]))
            hits[m]["paragraph_at_1"].append(int(np.argmax(para_scores)) == pi)
    out = {"n_questions": len(items)}
    for m, v in hits.items():
        out[m] = {k: round(float(np.mean(x)), 4) for k, x in v.items()}
    out["seqlabel_vs_embedding_answer_sentence"] = paired_counts(
        hits["seqlabel"]["answer_sentence_at_1"], hits["embedding"]["answer_sentence_at_1"])
    return out


def heldout_metrics(data_dir, *, pruner, embedder, xquad_limit: int | None = 120) -> dict:
    """Both measurements on the held-out split of the QA data under `data_dir`."""
    from datapruner.pipelines import train_pruner as tr

    hot = tr.hotpotqa_split(tr.load_hotpotqa(tr.find_data_file(data_dir, tr.HOTPOT_FILE)), "heldout")
    xq = tr.xquad_split(tr.load_xquad_articles(tr.find_data_file(data_dir, tr.XQUAD_FILE)), "heldout")
    return {
        "hotpotqa_evidence_recall": hotpotqa_evidence_recall(hot, pruner=pruner, embedder=embedder),
        "xquad": xquad_answer_sentence(xq, pruner=pruner, embedder=embedder, limit=xquad_limit),
    }


def evaluate_pruner_folder(data_dir, model: str, *, max_length: int = 256, xquad_limit: int | None = 120) -> dict:
    """:func:`heldout_metrics` of the pruner `model` (``"bundled"`` or a folder, e.g. one written by
    ``train-pruner --out``) against the bundled MiniLM embedding baseline.

    Parameters
    ----------
    data_dir : the QA data folder (HotpotQA / XQuAD files).
    model : the pruner to evaluate.
    max_length : the pruner's encoder window in tokens.
    xquad_limit : XQuAD questions to evaluate (None: all held-out ones).
    """
    from datapruner.models import Embedder
    from datapruner.scorers.seqlabel import SequenceLabelPruner

    return heldout_metrics(data_dir, pruner=SequenceLabelPruner(model, max_length=max_length), embedder=Embedder(),
                           xquad_limit=xquad_limit)
