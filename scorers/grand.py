"""A2. GraNd (Paul et al. 2021, "Deep Learning on a Data Diet").

``grand_i = || grad_theta loss(f(x_i), y_i) ||_2`` over ALL trainable parameters, per example,
computed with per-sample gradients (`torch.func.vmap(grad(...))`) and averaged over S
initialisations. The paper scores GraNd at (or near) initialisation: the `grand` step's default is
S = 5 freshly initialised proxies (`epochs=0`) on the frozen embeddings.

A last-layer approximation exists only as the explicitly named option ``scope="last_layer"``
(gradient with respect to the parameters of the model's last parameterised module); the default
``scope="all"`` is the method.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Mapping

import numpy as np

from datapruner.curation.dataset import Batch
from datapruner.curation.prediction_checks import check_labels
from datapruner.curation.recorded_scores import recorded_params_doc, recorded_scores_for_step
from datapruner.curation.step_predictions import PROXY_PARAMS_DOC, fit_proxy_on_view, proxy_from_params
from datapruner.curation.steps import ScoreStep
from datapruner.errors import InputDataError
from datapruner.validation import check_choice

log = logging.getLogger(__name__)

SCOPES = ("all", "last_layer")


def output_logits(output):
    """The logits of a model's output: a tensor, a `ModelOutput` with `.logits`, or a tuple's first item."""
    if hasattr(output, "logits"):
        return output.logits
    if isinstance(output, (tuple, list)):
        return output[0]
    return output


def _cross_entropy(logits, labels):
    import torch.nn.functional as F

    return F.cross_entropy(logits, labels)


def _scoped_params(model, scope: str) -> dict[str, Any]:
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise InputDataError("the model has no trainable parameters (requires_grad=True); GraNd needs at least one")
    if scope == "all":
        return {n: p.detach() for n, p in named}
    last = None
    for mod_name, module in model.named_modules():
        own = [n for n, p in module.named_parameters(recurse=False) if p.requires_grad]
        if own:
            last = (mod_name, own)
    prefix = f"{last[0]}." if last[0] else ""
    keep = {prefix + n for n in last[1]}
    return {n: p.detach() for n, p in named if n in keep}


def grand_scores(
    model: Any,
    inputs: Any,
    labels: Any,
    *,
    scope: str = "all",
    loss_fn: Callable | None = None,
    batch_size: int = 256,
) -> np.ndarray:
    """GraNd score of every example: the L2 norm of its own loss gradient.

    Parameters
    ----------
    model : torch.nn.Module, or a sequence of modules (S initialisations; norms are averaged)
        Called as ``model(x)`` on a tensor batch or ``model(**x)`` on a mapping of tensors; the
        output is logits (a tensor, an object with ``.logits``, or a tuple whose first item is logits).
    inputs : (N, ...) tensor / array, or a mapping of name -> (N, ...) tensors (e.g. input_ids,
        attention_mask).
    labels : (N,) int class indices.
    scope : ``"all"`` (default: every trainable parameter, the method) or ``"last_layer"``
        (only the last parameterised module: a cheaper, documented approximation).
    loss_fn : ``loss_fn(logits (1, K), labels (1,)) -> scalar``; default cross-entropy.
    batch_size : examples per vmap call (bounds memory: one gradient copy per example).

    Returns
    -------
    (N,) float64; higher = the example pulls the parameters harder (harder / more informative).
    """
    import torch
    from torch.func import functional_call, grad, vmap

    check_choice("scope", scope, SCOPES)
    models = [model] if isinstance(model, torch.nn.Module) else list(model)
    if not models or not all(isinstance(m, torch.nn.Module) for m in models):
        raise InputDataError("model must be a torch.nn.Module or a non-empty sequence of them")
    y = torch.as_tensor(check_labels(labels), dtype=torch.long)
    is_mapping = isinstance(inputs, Mapping)
    x = {k: torch.as_tensor(v) for k, v in inputs.items()} if is_mapping else torch.as_tensor(inputs)
    if not is_mapping and x.is_floating_point():
        x = x.float()
    n = len(next(iter(x.values()))) if is_mapping else len(x)
    if n != len(y):
        raise InputDataError(f"inputs have {n} rows but labels has {len(y)}; pass one label per input row")
    loss_fn = loss_fn or _cross_entropy
    total = np.zeros(n, dtype=np.float64)
    for m in models:
        was_training = m.training
        m.eval()
        params = _scoped_params(m, scope)
        frozen = {k: v.detach() for k, v in m.named_parameters() if k not in params}
        buffers = dict(m.named_buffers())

        def loss_one(p, xi, yi, _m=m, _frozen=frozen, _buffers=buffers):
            state = {**_frozen, **p, **_buffers}
            if is_mapping:
                out = functional_call(_m, state, args=(), kwargs={k: v.unsqueeze(0) for k, v in xi.items()})
            else:
                out = functional_call(_m, state, (xi.unsqueeze(0),))
            return loss_fn(output_logits(out), yi.unsqueeze(0))

        per_example = vmap(grad(loss_one), in_dims=(None, 0, 0))
        for start in range(0, n, batch_size):
            sl = slice(start, start + batch_size)
            xb = {k: v[sl] for k, v in x.items()} if is_mapping else x[sl]
            try:
                grads = per_example(params, xb, y[sl])
            except RuntimeError as exc:
                if "vmap" not in str(exc):
                    raise
                # Models with data-dependent control flow (e.g. transformers' attention-mask
                # shortcuts) cannot be vmapped: same gradients, one example at a time.
                log.info("model is not vmap-compatible (%s); computing per-example gradients in a loop", str(exc)[:80])
                grads = _looped(grad(loss_one), params, xb, y[sl], is_mapping)
            sq = sum(g.reshape(g.shape[0], -1).double().pow(2).sum(1) for g in grads.values())
            total[sl] += sq.sqrt().numpy()
        m.train(was_training)
    return total / len(models)


def _looped(grad_fn, params, xb, yb, is_mapping: bool) -> dict[str, Any]:
    """Per-example gradients without vmap, stacked like vmap's output."""
    import torch

    n = len(yb)
    parts = [grad_fn(params, {k: v[i] for k, v in xb.items()} if is_mapping else xb[i], yb[i]) for i in range(n)]
    return {k: torch.stack([p[k] for p in parts]) for k in params}


class GraNdStep(ScoreStep):
    """Adds `grand`: per-example gradient norm over all proxy parameters, averaged over S initialisations."""

    name = "grand"
    needs = frozenset({"text", "labels", "embeddings"})
    columns = {"grand": "||grad of the example's loss||_2 over all trainable proxy parameters, mean over S inits; higher = harder"}
    params_doc = {
        **{k: v for k, v in PROXY_PARAMS_DOC.items() if k not in ("n_folds", "cv_seeds")},
        "epochs": "proxy training epochs before scoring (default 0 = at initialisation, as the paper)",
        "hidden": "proxy MLP hidden width; 0 = logistic layer (default 0)",
        "scope": "'all' trainable parameters (default, the method) or 'last_layer' (named approximation)",
        **recorded_params_doc("grand"),
    }

    #: GraNd scores at initialisation (the paper) and needs no out-of-sample probabilities
    PROXY_DEFAULTS = {"epochs": 0, "n_folds": 0}

    def __init__(self, **params: Any):
        super().__init__(**params)
        self.scope = check_choice(f"scorers[{self.name}].params.scope", params.get("scope", "all"), SCOPES)
        if params.get("scores_file"):
            self.needs = frozenset({"text"})
        else:
            self.proxy_for(0)  # checks the proxy settings now, before any data is read

    def fit(self, view) -> None:
        """Compute every row's GraNd once: recorded scores, or the S proxies of `proxy_for`."""
        recorded = recorded_scores_for_step(self, view, "grand")
        if recorded is not None:
            self.values = recorded
            return
        if view.labels is None:
            raise InputDataError("grand needs labels; map input.columns.label (--label-column)")
        self.values = np.full(view.n_rows, np.nan)
        proxy, rows = fit_proxy_on_view(view, self.proxy_for(view.random_state))
        if rows.size == 0:
            return
        X = np.asarray(view.embeddings()[rows], dtype=np.float32)
        self.values[rows] = grand_scores(proxy.models_, X, view.labels[rows], scope=self.scope)

    def proxy_for(self, random_state: int):
        """The S proxies GraNd scores: `n_seeds` initialisations trained `epochs` epochs (default 0), no folds."""
        return proxy_from_params(self.params, random_state, where=f"scorers[{self.name}].params", **self.PROXY_DEFAULTS)

    def score_batch(self, batch: Batch) -> dict[str, np.ndarray]:
        """The batch's slice of the fitted `grand` column."""
        return {"grand": self.values[batch.start : batch.start + len(batch)].copy()}

