"""B1 sequence-labelling pruner (Provence 2025; LLMLingua-2 2024): per-unit keep-probabilities and
per-passage rerank scores from a cross-encoder with a token head and a sequence head.

A cross-encoder reads ``[CLS] query [SEP] passage [SEP]``. Its token head gives a keep-probability
for every passage token; a unit (sentence) is scored by the mean keep-probability of its tokens.
Its sequence head gives the passage's rerank score (higher = more relevant).

Three kinds of model load through :class:`SequenceLabelPruner`:

- ``"bundled"`` (default): the project's own pruner, the bundled all-MiniLM-L6-v2 encoder whose top
  layers and two heads were fine-tuned by ``datapruner train-pruner``; the small fine-tuned part
  ships in ``datapruner/assets/pruner/``. A folder written by ``train-pruner --out DIR`` loads the
  same way.
- a local folder of a Provence-style ``trust_remote_code`` model that exposes ``process``
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

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datapruner.errors import InputDataError, ModelLoadError

log = logging.getLogger(__name__)

BUNDLED = "bundled"
CONSERVATIVE_THRESHOLD = 0.1
AGGRESSIVE_THRESHOLD = 0.5
WEIGHTS_FILE = "pruner.safetensors"
CONFIG_FILE = "pruner.json"


def bundled_pruner_dir() -> Path:
    """Folder of the shipped pruner weights (``pruner.safetensors``) and their config/metrics JSON."""
    import datapruner

    return Path(datapruner.__file__).resolve().parent / "assets" / "pruner"


def keep_units_by_threshold(unit_probs: np.ndarray, *, threshold: float = CONSERVATIVE_THRESHOLD) -> np.ndarray:
    """Threshold mode of B1: keep a unit when its mean keep-probability exceeds `threshold`.

    Parameters
    ----------
    unit_probs : (n_units,) float array of mean keep-probabilities in [0, 1] (higher = keep).
    threshold : T in [0, 1); 0.1 is conservative (keeps more), 0.5 aggressive.

    Returns
    -------
    (n_units,) bool array, True where ``unit_probs > threshold``.
    """
    if not 0.0 <= float(threshold) < 1.0:
        raise InputDataError(
            f"threshold must be in [0, 1), got {threshold!r}; use 0.1 (conservative) or 0.5 (aggressive)"
        )
    probs = np.asarray(unit_probs, dtype=np.float64)
    return probs > float(threshold)


def plan_windows(unit_token_ends: list[int], n_tokens: int, capacity: int) -> list[tuple[int, int]]:
    """Split ``n_tokens`` passage tokens into windows of at most `capacity` tokens, cutting at unit ends.

    Parameters
    ----------
    unit_token_ends : token index one past the last token of each unit, ascending.
    n_tokens : number of passage tokens.
    capacity : passage tokens that fit in one encoder window (>= 1).

    Returns
    -------
    Half-open token ranges covering ``[0, n_tokens)`` in order, each at most `capacity` long. A cut
    falls at a unit end whenever one fits; a unit longer than `capacity` is cut at token boundaries.
    """
    if capacity < 1:
        raise InputDataError(f"window capacity must be >= 1 token, got {capacity}")
    cuts = sorted({e for e in unit_token_ends if 0 < e < n_tokens})
    windows: list[tuple[int, int]] = []
    start = 0
    ci = 0
    while start < n_tokens:
        limit = start + capacity
        if limit >= n_tokens:
            windows.append((start, n_tokens))
            break
        best = None
        while ci < len(cuts) and cuts[ci] <= limit:
            if cuts[ci] > start:
                best = cuts[ci]
            ci += 1
        end = best if best is not None else limit
        windows.append((start, end))
        start = end
    if not windows:
        windows.append((0, 0))
    return windows


# ----------------------------------------------------------------------------------------------
# Bundled pruner network: MiniLM encoder + token head + passage-score head
# ----------------------------------------------------------------------------------------------


def build_pruner_net(encoder_dir: str, *, dropout: float = 0.1):
    """The bundled pruner's network on top of the encoder in `encoder_dir` (untrained heads)."""
    import torch
    from torch import nn
    from transformers import AutoModel

    class PrunerNet(nn.Module):
        """Encoder + token head (2 logits per token: drop, keep) + rank head (1 logit on [CLS])."""

        def __init__(self, encoder):
            super().__init__()
            self.encoder = encoder
            hidden = encoder.config.hidden_size
            self.dropout = nn.Dropout(dropout)
            self.token_head = nn.Linear(hidden, 2)
            self.rank_head = nn.Linear(hidden, 1)

        @property
        def n_layers(self) -> int:
            return len(self.encoder.encoder.layer)

        def embed(self, input_ids, token_type_ids):
            return self.encoder.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)

        def run_layers(self, hidden, attention_mask, start: int, stop: int):
            """Run encoder layers [start, stop) with an additive (B, 1, 1, L) mask (eager attention)."""
            mask = (1.0 - attention_mask[:, None, None, :].to(hidden.dtype)) * torch.finfo(hidden.dtype).min
            for layer in self.encoder.encoder.layer[start:stop]:
                out = layer(hidden, mask)
                hidden = out[0] if isinstance(out, tuple) else out
            return hidden

        def heads(self, hidden):
            """-> token logits (B, L, 2), rank logit (B,)."""
            hidden = self.dropout(hidden)
            return self.token_head(hidden), self.rank_head(hidden[:, 0]).squeeze(-1)

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.embed(input_ids, token_type_ids)
            hidden = self.run_layers(hidden, attention_mask, 0, self.n_layers)
            return self.heads(hidden)

    encoder = AutoModel.from_pretrained(encoder_dir, attn_implementation="eager")
    return PrunerNet(encoder)


def trainable_state_keys(net, n_train_layers: int) -> list[str]:
    """Parameter names that fine-tuning changes and the shipped file stores: top layers + heads."""
    first = net.n_layers - n_train_layers
    prefixes = tuple(f"encoder.encoder.layer.{i}." for i in range(first, net.n_layers)) + (
        "token_head.",
        "rank_head.",
    )
    return [k for k, _ in net.named_parameters() if k.startswith(prefixes)]


def load_bundled_net(folder: Path):
    """Load the bundled encoder and overlay the fine-tuned top layers and heads from `folder`."""
    from safetensors.torch import load_file

    from datapruner.models.embedder import bundled_embedder_path
    from datapruner.models.loading import ensure_offline_env

    ensure_offline_env()
    cfg_path, weights = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    if not cfg_path.exists() or not weights.exists():
        raise ModelLoadError(
            f"pruner folder {str(folder)!r} lacks {CONFIG_FILE} or {WEIGHTS_FILE}; train one with "
            f"`datapruner train-pruner --data DIR --out {folder}` or pass model='bundled'"
        )
    config = json.loads(cfg_path.read_text())
    net = build_pruner_net(bundled_embedder_path(), dropout=float(config.get("dropout", 0.1)))
    state = {k: v.float() for k, v in load_file(str(weights)).items()}
    expected = set(trainable_state_keys(net, int(config["n_train_layers"])))
    if set(state) != expected:
        missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
        raise ModelLoadError(
            f"{weights} does not match the bundled encoder (missing {missing[:3]}, unexpected {extra[:3]}); "
            "retrain it with `datapruner train-pruner`"
        )
    net.load_state_dict(state, strict=False)
    net.eval()
    return net, config


# ----------------------------------------------------------------------------------------------
# Backends: each turns padded id batches into (keep-probabilities, rerank scores)
# ----------------------------------------------------------------------------------------------


class _Backend:
    tokenizer = None
    use_token_types = False
    has_rank_head = True
    max_positions: int | None = None
    name = ""

    def predict(self, input_ids, attention_mask, token_type_ids):  # pragma: no cover - interface
        """-> keep-probabilities (B, L) float32, rank scores (B,) float32 (NaN without a rank head)."""
        raise NotImplementedError


class _BundledBackend(_Backend):
    def __init__(self, folder: Path):
        from transformers import AutoTokenizer

        from datapruner.models.embedder import bundled_embedder_path

        self.net, self.config = load_bundled_net(folder)
        self.tokenizer = AutoTokenizer.from_pretrained(bundled_embedder_path())
        self.use_token_types = True
        self.max_positions = int(self.net.encoder.config.max_position_embeddings)
        self.name = f"bundled:{folder}"

    def predict(self, input_ids, attention_mask, token_type_ids):
        import torch

        token_logits, rank = self.net(input_ids, attention_mask, token_type_ids)
        return torch.softmax(token_logits, dim=-1)[..., 1], rank


class _ProvenceBackend(_Backend):
    """A Provence-style remote-code model: reads its token (compression) and ranking outputs."""

    _TOKEN_FIELDS = ("compression_logits", "pruning_logits", "token_logits")
    _RANK_FIELDS = ("ranking_scores", "ranking_logits", "rerank_scores", "logits")

    def __init__(self, folder: str):
        from transformers import AutoModel, AutoTokenizer

        self.model = AutoModel.from_pretrained(folder, trust_remote_code=True)
        if not callable(getattr(self.model, "process", None)):
            raise ModelLoadError(
                f"model folder {folder!r} declares remote code but its model has no `process` method, "
                "so it is not a Provence-style pruner; pass a Provence folder or a token-classification checkpoint"
            )
        self.model.eval()
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.use_token_types = False
        self.max_positions = _max_positions(self.model.config)
        self.name = f"provence:{folder}"

    def predict(self, input_ids, attention_mask, token_type_ids):
        import torch

        out = self.model(input_ids=input_ids, attention_mask=attention_mask)
        token = next((getattr(out, f, None) for f in self._TOKEN_FIELDS if getattr(out, f, None) is not None), None)
        rank = next((getattr(out, f, None) for f in self._RANK_FIELDS if getattr(out, f, None) is not None), None)
        if token is None:
            raise ModelLoadError(
                f"{self.name}: forward output has none of {self._TOKEN_FIELDS}; this Provence variant is not supported"
            )
        probs = _logits_to_keep_prob(token, keep_index=1)
        if rank is None:
            rank = torch.full((input_ids.shape[0],), float("nan"))
        return probs, rank.reshape(input_ids.shape[0], -1)[:, 0]


class _TokenClassificationBackend(_Backend):
    def __init__(self, folder: str, config):
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        self.model = AutoModelForTokenClassification.from_pretrained(folder)
        self.model.eval()
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.use_token_types = int(getattr(config, "type_vocab_size", 0) or 0) >= 2
        self.has_rank_head = False
        self.keep_index = _keep_label_index(config)
        self.max_positions = _max_positions(config)
        self.name = f"token-classification:{folder}"

    def predict(self, input_ids, attention_mask, token_type_ids):
        import torch

        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if self.use_token_types:
            kwargs["token_type_ids"] = token_type_ids
        logits = self.model(**kwargs).logits
        return _logits_to_keep_prob(logits, keep_index=self.keep_index), torch.full(
            (input_ids.shape[0],), float("nan")
        )


def _max_positions(config) -> int | None:
    value = getattr(config, "max_position_embeddings", None)
    return int(value) if isinstance(value, int) and value > 0 else None


def _logits_to_keep_prob(logits, *, keep_index: int):
    import torch

    if logits.dim() == 3 and logits.shape[-1] == 1:
        logits = logits[..., 0]
    if logits.dim() == 2:
        return torch.sigmoid(logits)
    if logits.shape[-1] != 2:
        raise ModelLoadError(
            f"token head has {logits.shape[-1]} labels; a pruner needs 1 (keep logit) or 2 (drop, keep)"
        )
    return torch.softmax(logits, dim=-1)[..., keep_index]


def _keep_label_index(config) -> int:
    num = int(getattr(config, "num_labels", 2))
    if num == 1:
        return 0
    if num != 2:
        raise ModelLoadError(
            f"token-classification checkpoint has num_labels={num}; a pruner needs 1 or 2 labels (drop, keep)"
        )
    names = {int(i): str(n).lower() for i, n in (getattr(config, "id2label", None) or {}).items()}
    for idx, name in names.items():
        if name in {"keep", "relevant", "evidence", "1", "pos", "positive"}:
            return idx
    return 1


def _load_backend(model: str) -> _Backend:
    from datapruner.models.loading import ensure_offline_env, resolve_hf_model

    ensure_offline_env()
    if model == BUNDLED:
        return _BundledBackend(bundled_pruner_dir())
    folder = resolve_hf_model(model, kind="sequence-labelling pruner", flag="--model")
    path = Path(folder)
    if (path / CONFIG_FILE).exists() or (path / WEIGHTS_FILE).exists():
        return _BundledBackend(path)
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(folder, trust_remote_code=True)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"model {model!r} has no usable config.json ({exc}); pass a Provence or token-classification "
            "checkpoint folder, a train-pruner output folder, or 'bundled'"
        ) from exc
    archs = list(getattr(config, "architectures", None) or [])
    if getattr(config, "auto_map", None):
        return _ProvenceBackend(folder)
    if any(a.endswith("ForTokenClassification") for a in archs):
        return _TokenClassificationBackend(folder, config)
    raise ModelLoadError(
        f"model {model!r} (architectures {archs}) is neither a Provence-style remote-code model nor a "
        "*ForTokenClassification checkpoint nor a train-pruner folder; pass one of those, or 'bundled'"
    )


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
    """

    def __init__(
        self,
        model: str = BUNDLED,
        *,
        max_length: int = 256,
        batch_size: int = 16,
        max_query_fraction: float = 0.5,
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
        self._backend: _Backend | None = None

    @property
    def backend(self) -> _Backend:
        if self._backend is None:
            self._backend = _load_backend(self.model)
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
        for i, (query, passages, spans) in enumerate(items):
            q_ids = self._query_ids(query)
            capacity = self.max_length - len(q_ids) - 3
            per_item = []
            for p, (text, units) in enumerate(zip(passages, spans)):
                enc = tok(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
                ids = list(enc["input_ids"])
                offsets = np.asarray(enc["offset_mapping"], dtype=np.int64).reshape(-1, 2)
                unit_tokens = unit_token_indices(offsets, units)
                ends = [t[-1] + 1 for t in unit_tokens if t]
                for start, stop in plan_windows(ends, len(ids), capacity):
                    seq = [tok.cls_token_id, *q_ids, tok.sep_token_id, *ids[start:stop], tok.sep_token_id]
                    windows.append(_Window(i, p, seq, len(q_ids) + 2, start))
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
                for r, k in enumerate(idx):
                    w = windows[k]
                    ids[r, : len(w.ids)] = torch.tensor(w.ids)
                    mask[r, : len(w.ids)] = 1
                    if backend.use_token_types:
                        types[r, w.n_query : len(w.ids)] = 1
                p, s = backend.predict(ids, mask, types)
                p, s = p.float().numpy(), s.float().numpy()
                for r, k in enumerate(idx):
                    probs[k] = p[r]
                    ranks[k] = float(s[r])
                bar.advance(len(idx))
        return probs, ranks


def unit_token_indices(offsets: np.ndarray, units: list[tuple[int, int]]) -> list[list[int]]:
    """Token indices overlapping each unit's character span (tokens with empty offsets are skipped)."""
    if len(offsets) == 0:
        return [[] for _ in units]
    starts, ends = offsets[:, 0], offsets[:, 1]
    real = ends > starts
    out = []
    for s, e in units:
        hit = np.nonzero(real & (starts < e) & (ends > s))[0]
        out.append(hit.tolist())
    return out


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
