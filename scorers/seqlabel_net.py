"""The sequence-labelling pruner's networks: the bundled MiniLM pruner and the three backends.

A backend turns padded id batches into per-token keep-probabilities and per-window rerank
scores. :func:`load_backend` picks one from a model name (``"bundled"``, a train-pruner folder, a
Provence-style remote-code folder, a token-classification checkpoint); inference over passages
(windows, units) is :class:`datapruner.scorers.seqlabel.SequenceLabelPruner`'s.
"""

from __future__ import annotations

import json
from pathlib import Path

from datapruner.errors import ModelLoadError

BUNDLED = "bundled"
WEIGHTS_FILE = "pruner.safetensors"
CONFIG_FILE = "pruner.json"


def bundled_pruner_dir() -> Path:
    """Folder of the shipped pruner weights (``pruner.safetensors``) and their config/metrics JSON."""
    import datapruner

    return Path(datapruner.__file__).resolve().parent / "assets" / "pruner"


# ----------------------------------------------------------------------------------------------
# Bundled pruner network: MiniLM encoder + token head + passage-score head
# ----------------------------------------------------------------------------------------------


_STOPWORDS = (
    "a an and are as at be been but by did do does for from had has have he her his how i if in into is it its "
    "of on or she that the their them then there these they this to was were what when where which who whom "
    "whose why will with you"
).split()


def match_stop_ids(tokenizer) -> list[int]:
    """Token ids that never count as an exact match with the query: stopwords, punctuation, specials."""
    vocab = tokenizer.get_vocab()
    stop = {vocab[w] for w in _STOPWORDS if w in vocab}
    stop |= {i for t, i in vocab.items() if not any(ch.isalnum() for ch in t.removeprefix("##"))}
    stop |= {i for i in (tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id) if i is not None}
    return sorted(stop)


def build_pruner_net(encoder_dir: str, *, dropout: float = 0.1, n_train_layers: int = 2,
                     match_feature: bool = False, dense_feature: bool = False):
    """The bundled pruner's network on top of the encoder in `encoder_dir` (untrained heads).

    `match_feature`: an exact-match-with-query indicator (DrQA's feature) is embedded and added to
    the hidden states entering the first of the top `n_train_layers` (fine-tuned) layers; zero-initialised.
    `dense_feature`: the token head's keep logit gets ``a x cos + b`` added, where cos is the bundled
    bi-encoder's query-unit cosine of the token's unit, and the rank logit gets ``c x m + d``, where m
    is the largest of the window's cosines (0 at least), so the network learns a residual on the
    dense signal (``dense_gate`` = (a, b, c, d), initialised by
    :func:`datapruner.pipelines.train_pruner.train_pruner` from logistic fits on the training data).
    """
    import torch
    from torch import nn
    from transformers import AutoModel, AutoTokenizer

    class PrunerNet(nn.Module):
        """Encoder + token head (2 logits per token: drop, keep) + rank head (1 logit on [CLS])."""

        def __init__(self, encoder):
            super().__init__()
            self.encoder = encoder
            hidden = encoder.config.hidden_size
            self.dropout = nn.Dropout(dropout)
            self.token_head = nn.Linear(hidden, 2)
            self.rank_head = nn.Linear(hidden, 1)
            self.first_trained = self.n_layers - int(n_train_layers)
            self.match_embedding = None
            self.dense_gate = None
            if match_feature:
                self.match_embedding = nn.Embedding(2, hidden)
                nn.init.zeros_(self.match_embedding.weight)
                stop = torch.zeros(encoder.config.vocab_size, dtype=torch.bool)
                stop[match_stop_ids(AutoTokenizer.from_pretrained(encoder_dir))] = True
                self.register_buffer("match_stop", stop, persistent=False)
            if dense_feature:
                self.dense_gate = nn.Parameter(torch.zeros(4))

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

        def exact_match(self, input_ids, token_type_ids):
            """(B, L) long: 1 where a passage token (type 1) equals a non-stopword query token (type 0)."""
            content = ~self.match_stop[input_ids]
            query = (token_type_ids == 0) & content
            same = input_ids[:, :, None] == input_ids[:, None, :]
            hit = (same & query[:, None, :]).any(-1)
            return (hit & (token_type_ids == 1) & content).long()

        def add_match(self, hidden, input_ids, token_type_ids):
            """Hidden states entering the first trained layer, plus the exact-match embedding."""
            if self.match_embedding is None:
                return hidden
            return hidden + self.match_embedding(self.exact_match(input_ids, token_type_ids))

        def heads(self, hidden, dense=None):
            """-> token logits (B, L, 2), rank logit (B,). `dense`: (B, L) query-unit cosine per token."""
            hidden = self.dropout(hidden)
            token_logits = self.token_head(hidden)
            rank_logit = self.rank_head(hidden[:, 0]).squeeze(-1)
            if self.dense_gate is not None:
                if dense is None:
                    raise ModelLoadError("this pruner was trained with the dense feature; pass the query-unit cosines")
                a, b, c, d = self.dense_gate
                shift = a * dense + b
                token_logits = token_logits + torch.stack([torch.zeros_like(shift), shift], dim=-1)
                rank_logit = rank_logit + c * dense.max(dim=1).values + d
            return token_logits, rank_logit

        def forward(self, input_ids, attention_mask, token_type_ids, dense=None):
            hidden = self.embed(input_ids, token_type_ids)
            hidden = self.run_layers(hidden, attention_mask, 0, self.first_trained)
            hidden = self.add_match(hidden, input_ids, token_type_ids)
            hidden = self.run_layers(hidden, attention_mask, self.first_trained, self.n_layers)
            return self.heads(hidden, dense)

    encoder = AutoModel.from_pretrained(encoder_dir, attn_implementation="eager")
    return PrunerNet(encoder)


def trainable_state_keys(net, n_train_layers: int) -> list[str]:
    """Parameter names that fine-tuning changes and the shipped file stores: top layers + heads."""
    first = net.n_layers - n_train_layers
    prefixes = tuple(f"encoder.encoder.layer.{i}." for i in range(first, net.n_layers)) + (
        "token_head.",
        "rank_head.",
        "match_embedding.",
        "dense_gate",
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
    net = build_pruner_net(
        bundled_embedder_path(),
        dropout=float(config.get("dropout", 0.1)),
        n_train_layers=int(config["n_train_layers"]),
        match_feature=bool(config.get("match_feature", False)),
        dense_feature=bool(config.get("dense_feature", False)),
    )
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


class Backend:
    """What every backend offers: its tokenizer, whether it uses token types and has a rank head,
    its position limit, a name, whether it reads the query-unit cosine per token
    (``uses_dense_feature``), and :meth:`predict`."""

    tokenizer = None
    use_token_types = False
    uses_dense_feature = False
    has_rank_head = True
    max_positions: int | None = None
    name = ""

    def predict(self, input_ids, attention_mask, token_type_ids, dense=None):  # pragma: no cover - interface
        """-> keep-probabilities (B, L) float32, rank scores (B,) float32 (NaN without a rank head).

        `dense`: (B, L) float32 bi-encoder cosine of the query and each token's unit (0 outside the
        passage), given when ``uses_dense_feature`` is true."""
        raise NotImplementedError


class _BundledBackend(Backend):
    def __init__(self, folder: Path):
        from transformers import AutoTokenizer

        from datapruner.models.embedder import bundled_embedder_path

        self.net, self.config = load_bundled_net(folder)
        self.tokenizer = AutoTokenizer.from_pretrained(bundled_embedder_path())
        self.use_token_types = True
        self.uses_dense_feature = self.net.dense_gate is not None
        self.max_positions = int(self.net.encoder.config.max_position_embeddings)
        self.name = f"bundled:{folder}"

    def predict(self, input_ids, attention_mask, token_type_ids, dense=None):
        import torch

        token_logits, rank = self.net(input_ids, attention_mask, token_type_ids, dense)
        return torch.softmax(token_logits, dim=-1)[..., 1], rank


class _ProvenceBackend(Backend):
    """A Provence-style remote-code model: reads its token (compression) and ranking outputs."""

    _TOKEN_FIELDS = ("compression_logits", "pruning_logits", "token_logits")
    _RANK_FIELDS = ("ranking_scores", "ranking_logits", "rerank_scores", "logits")

    def __init__(self, folder: str):
        from transformers import AutoModel, AutoTokenizer

        self.model = AutoModel.from_pretrained(folder, trust_remote_code=True)  # the caller opted in
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

    def predict(self, input_ids, attention_mask, token_type_ids, dense=None):
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


class _TokenClassificationBackend(Backend):
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

    def predict(self, input_ids, attention_mask, token_type_ids, dense=None):
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


def load_backend(model: str, *, trust_remote_code: bool = False) -> Backend:
    """The backend for a model name: ``"bundled"``, a train-pruner folder, a Provence-style folder or a
    token-classification checkpoint (a hub name must be cached; offline it fails at once).

    `trust_remote_code`: a folder whose ``config.json`` declares remote code (``auto_map``, as
    Provence does) runs its author's Python only when this is True; otherwise it fails before
    anything of it is imported. The bundled pruner and token-classification checkpoints need none.
    """
    from datapruner.models.loading import ensure_offline_env, resolve_hf_model

    ensure_offline_env()
    if model == BUNDLED:
        return _BundledBackend(bundled_pruner_dir())
    folder = resolve_hf_model(model, kind="sequence-labelling pruner", flag="--model")
    path = Path(folder)
    if (path / CONFIG_FILE).exists() or (path / WEIGHTS_FILE).exists():
        return _BundledBackend(path)
    declares_remote_code = _declares_remote_code(path / "config.json")
    if declares_remote_code and not trust_remote_code:
        raise ModelLoadError(
            f"model {model!r} declares remote code (auto_map in config.json): loading it runs that folder's "
            "Python. Only if you trust its author, pass trust_remote_code=True (SequenceLabelPruner) or "
            "--param trust_remote_code=true (compress)"
        )
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(folder, trust_remote_code=declares_remote_code)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"model {model!r} has no usable config.json ({exc}); pass a Provence or token-classification "
            "checkpoint folder, a train-pruner output folder, or 'bundled'"
        ) from exc
    archs = list(getattr(config, "architectures", None) or [])
    if declares_remote_code:
        return _ProvenceBackend(folder)
    if any(a.endswith("ForTokenClassification") for a in archs):
        return _TokenClassificationBackend(folder, config)
    raise ModelLoadError(
        f"model {model!r} (architectures {archs}) is neither a Provence-style remote-code model nor a "
        "*ForTokenClassification checkpoint nor a train-pruner folder; pass one of those, or 'bundled'"
    )


def _declares_remote_code(config_json: Path) -> bool:
    try:
        return bool(json.loads(config_json.read_text()).get("auto_map"))
    except (OSError, ValueError, AttributeError):
        return False  # AutoConfig below reports a missing or broken config.json
