"""Fit the learned fusion of the ``fused`` method (METHODS.md B5) on the TRAINING split of the QA data.

Requests are built like the benchmark's, from training questions only (the split of
:mod:`datapruner.pipelines.train_pruner`: the first 70 HotpotQA questions, the first 38 XQuAD
articles, NQ-open rows before 2000), so the benchmark's held-out questions never reach the fit:

- HotpotQA: the two gold paragraphs among the record's distractors; positives = units holding a
  supporting-fact sentence.
- XQuAD: the question's paragraph among the other paragraphs of its article; positives = units
  overlapping the answer span.
- NQ-open: the gold passage among the 9 BM25-nearest other training gold passages without an
  answer; positives = units of the gold passage containing an answer string.

Each request's units get the ``fused`` method's four features (bundled MiniLM, the same code
path), z-normalised per request; a logistic regression (scikit-learn, L2, C = 1,
``random_state``) is fitted on all units and written as a small JSON
(:class:`datapruner.scorers.fusion.LearnedFusion`). ``datapruner fit-fusion`` runs it.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import numpy as np

from datapruner.compression.budget import TokenCounter
from datapruner.compression.item import build_item
from datapruner.pipelines import train_pruner as tp
from datapruner.registry import make_compression_method
from datapruner.scorers.bm25 import BM25Index
from datapruner.scorers.fusion import FEATURES, LearnedFusion, znormalise


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def training_requests(data_dir: Path, *, per_dataset: int, random_state: int) -> list[tuple[str, list[str], object]]:
    """(query, passages, is_positive(unit_text, passage_index) -> bool) for training questions only."""
    rng = random.Random(random_state)
    out = []
    hot = tp.hotpotqa_split(tp.load_hotpotqa(tp.find_data_file(data_dir, tp.HOTPOT_FILE)), "train")
    for rec in rng.sample(hot, min(per_dataset, len(hot))):
        facts = rec["supporting_facts"]
        groups = [(rec["para_a"], facts[0]), (rec["para_b"], facts[1])] + [(d[1], []) for d in rec["distractors"]]
        rng.shuffle(groups)
        passages, evidence = [], []
        for sents, idx in groups:
            text, spans = tp.join_sentences(sents)
            passages.append(text)
            evidence += [_norm(text[s:e]) for k, (s, e) in enumerate(spans) if k in idx and e > s]
        out.append((rec["question"], passages, lambda t, p, ev=tuple(evidence): any(x and x in _norm(t) or _norm(t) in x for x in ev)))
    arts = tp.xquad_split(tp.load_xquad_articles(tp.find_data_file(data_dir, tp.XQUAD_FILE)), "train")
    xq = [(art, para, qa) for art in arts for para in art["paragraphs"] for qa in para["qas"]]
    for art, para, qa in rng.sample(xq, min(per_dataset, len(xq))):
        passages = [p["context"] for p in art["paragraphs"]]
        gold = passages.index(para["context"])
        answers = [_norm(a["text"]) for a in qa["answers"]]
        out.append((qa["question"], passages, lambda t, p, g=gold, a=tuple(answers): p == g and any(x in _norm(t) for x in a)))
    rows = [r for r in tp.nq_split(tp.load_nq(tp.find_data_file(data_dir, tp.NQ_FILE)), "train") if tp.gold_passage(r)]
    pool = list(dict.fromkeys(tp.gold_passage(r) for r in rows))
    index = BM25Index(pool)
    for row in rng.sample(rows, min(per_dataset, len(rows))):
        gold = tp.gold_passage(row)
        answers = [a.lower() for a in row["answers"] if a.strip()]
        distractors = []
        for j in np.argsort(-index.scores(row["question"], distinct_terms=True), kind="stable"):
            if pool[j] != gold and not any(a in pool[j].lower() for a in answers):
                distractors.append(pool[j])
            if len(distractors) == 9:
                break
        passages = distractors + [gold]
        rng.shuffle(passages)
        g = passages.index(gold)
        out.append((row["question"], passages, lambda t, p, g=g, a=tuple(answers): p == g and any(x in t.lower() for x in a)))
    return out


def fit_fusion(data_dir: str | Path, out: str | Path, *, per_dataset: int = 70, random_state: int = 0,
               threads: int = 1, command: str = "") -> dict:
    """Fit the logistic fusion and write its weights to `out` (JSON). Returns the written dict.

    Parameters
    ----------
    data_dir : the folder holding the QA files (``../shared/data/qa``).
    out : the weights file to write.
    per_dataset : training questions drawn per dataset (seeded by `random_state`).
    random_state : seed of the question draw, the passage order and the solver.
    threads : torch threads of the encoder.
    """
    from sklearn.linear_model import LogisticRegression

    from datapruner.models import set_threads

    set_threads(threads)
    data_dir = Path(data_dir)
    requests = training_requests(data_dir, per_dataset=per_dataset, random_state=random_state)
    counter = TokenCounter()
    items = [build_item(q, p, counter=counter, rate=1.0) for q, p, _ in requests]
    method = make_compression_method("fused", {})
    xs, ys = [], []
    for (q, p, positive), it, (feats, _, _) in zip(requests, items, method.features(items)):
        labels = np.array([positive(t, int(pi)) for t, pi in zip(it.texts, it.passage)], dtype=int)
        if it.n_units < 2 or labels.sum() == 0:
            continue
        xs.append(znormalise(feats))
        ys.append(labels)
    x, y = np.vstack(xs), np.concatenate(ys)
    model = LogisticRegression(C=1.0, random_state=random_state, max_iter=1000).fit(x, y)
    fusion = LearnedFusion(FEATURES, model.coef_[0], model.intercept_[0], {
        "fitted_on": "training split of the shared QA data (HotpotQA first 70 questions, XQuAD first 38 articles, "
                     "NQ-open rows < 2000); benchmark questions are never used",
        "requests": len(xs), "units": int(len(y)), "positives": int(y.sum()), "per_dataset": per_dataset,
        "random_state": random_state, "command": command,
        "train_accuracy": round(float(model.score(x, y)), 4),
    })
    fusion.save(out)
    return fusion.to_dict()
