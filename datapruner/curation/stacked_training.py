"""Train many small classifiers on shared features at once, as stacked (batched) parameters.

The EL2N / confident-learning proxy (`datapruner.curation.proxy`) trains S seeds + (cv_seeds x K folds)
tiny models, and the pruning-curve benchmark trains dozens of probes per keep fraction. Each of
those models alone is a few hundred microseconds of arithmetic per step and far more of Python and
dispatch overhead; `train_stacked` runs one step loop for all of them:

- the M models' layers are stacked into (M, d_in, d_out) weights and (M, 1, d_out) biases, a
  forward pass is `torch.baddbmm` per layer on the (M, B, d) mini-batches gathered by per-model
  index rows (never an (M, N, d) copy of the features);
- the loss is the sum over models of each model's mean cross-entropy over ITS valid rows of the
  batch (rows past the end of a model's epoch are masked), so every model gets exactly its own
  gradient, and one AdamW (elementwise; `StackedAdamW`, torch's fused kernel) updates the stacked
  tensors: the same optimisation as training each model alone. For one-layer (logistic) models, the
  proxy's default, the gradient is written in closed form (`linear_softmax_grads`) instead of going
  through autograd, and steps where every model has a full batch skip the per-row masks;
- each model keeps its own initialisation (the module passed in) and its own data-order generator
  (``torch.Generator().manual_seed(order_seed)``, one ``randperm`` of its rows per epoch, batches
  taken in that order), so the result equals sequential training up to float rounding;
- models with fewer steps (fewer rows, so fewer batches per epoch) stop when their own schedule
  ends (AdamW would still move a model with a zero gradient: momentum, weight decay): their
  parameters after their last step are kept aside, and the stacked tensors and AdamW state are cut
  to the models still training (`StackedAdamW.keep`), so a finished model costs no more compute.
"""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np

from datapruner.errors import InputDataError


PRECISIONS = ("fp32", "bf16")
"""Precisions of the matrix products `train_stacked` accepts (see its docstring)."""


@functools.cache
def native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 matrices natively (the ``avx512_bf16`` or ``amx_bf16``
    flag of Linux's /proc/cpuinfo); False where that cannot be read."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def stacked_layers(model) -> list:
    """The `torch.nn.Linear` layers of a proxy-shaped network (Linear, optionally ReLU then Linear), in order.

    Raises
    ------
    InputDataError
        When `model` is not a `torch.nn.Sequential` of Linear layers separated by ReLU.
    """
    from torch import nn

    mods = list(model) if isinstance(model, nn.Sequential) else []
    linears = mods[0::2]
    ok = bool(mods) and len(mods) % 2 == 1 and all(isinstance(m, nn.Linear) and m.bias is not None for m in linears) \
        and all(isinstance(m, nn.ReLU) for m in mods[1::2])
    if not ok:
        raise InputDataError(f"stacked training takes nn.Sequential(Linear[, ReLU, Linear]...) with biases; given {model!r}")
    return linears


def epochs_for(n_rows: int, *, epochs: int, batch_size: int, min_steps: int = 0) -> int:
    """Epochs a model of `n_rows` rows trains: `epochs`, raised so that it takes at least `min_steps` steps."""
    steps = -(-n_rows // batch_size)
    if epochs <= 0 or steps == 0:
        return max(epochs, 0)
    return max(epochs, -(-min_steps // steps))


class StackedAdamW:
    """AdamW (torch's fused kernel, `torch.optim.adamw.adamw`) over stacked parameters, its state held
    here as tensors of the same stacked shape, so that model slots can be cut (`keep`).

    AdamW is elementwise, so a slot's moments and the step count are all it needs: after `keep` the
    kept models go on exactly as before. Defaults as `torch.optim.AdamW` (betas 0.9, 0.999; eps 1e-8).
    """

    def __init__(self, params: list, *, lr: float, weight_decay: float):
        import torch

        self.params = params
        self.lr, self.weight_decay = lr, weight_decay
        self.exp_avgs = [torch.zeros_like(p) for p in params]
        self.exp_avg_sqs = [torch.zeros_like(p) for p in params]
        self.steps = [torch.zeros(()) for _ in params]

    def step(self, grads: list) -> None:
        """One AdamW update of every parameter with `grads` (one per parameter, same shapes)."""
        import torch
        from torch.optim.adamw import adamw

        with torch.no_grad():
            adamw(self.params, grads, self.exp_avgs, self.exp_avg_sqs, [], self.steps, fused=True, amsgrad=False,
                  beta1=0.9, beta2=0.999, lr=self.lr, weight_decay=self.weight_decay, eps=1e-8, maximize=False)

    def keep(self, slots: np.ndarray) -> None:
        """Cut the parameters and their state to the model slots `slots` (in place of the lists)."""
        import torch

        sel = torch.as_tensor(slots)
        for tensors in (self.params, self.exp_avgs, self.exp_avg_sqs):
            tensors[:] = [t.detach()[sel].clone().requires_grad_(t.requires_grad) for t in tensors]


def linear_softmax_grads(params: list, xb, y, row_weight, half: bool) -> list:
    """Gradients of stacked linear-softmax parameters [W (M, d, K), b (M, 1, K)] for the loss
    sum over rows of ``row_weight * cross_entropy``: the closed form (softmax - onehot) * weight,
    without autograd's graph (the proxy's default model is this one layer)."""
    import torch

    w, b = params
    with torch.no_grad():
        if half:  # bf16 product, bias added in float32
            g = torch.bmm(xb, w.to(torch.bfloat16)).float().add_(b)
        else:
            g = torch.baddbmm(b, xb, w)
        g = torch.softmax(g, dim=-1)
        g.view(-1, g.shape[-1]).scatter_(1, y[:, None], -1.0, reduce="add")
        g *= row_weight[:, :, None]
        gw = torch.bmm(xb.transpose(1, 2), g.to(xb.dtype))
        return [gw.float() if half else gw, g.sum(1, keepdim=True)]


def train_stacked(
    models: Sequence,
    X,
    y,
    rows: Sequence[np.ndarray],
    order_seeds: Sequence[int],
    *,
    epochs: int,
    lr: float,
    weight_decay: float,
    batch_size: int,
    min_steps: int = 0,
    precision: str = "fp32",
):
    """Train every model in `models` in place on its own rows, all in one stacked step loop; returns `models`.

    Each model m trains as if alone: AdamW(lr, weight_decay) over its parameters, cross-entropy
    (mean over the batch), `epochs_for(len(rows[m]), ...)` epochs; every epoch draws
    ``torch.randperm(len(rows[m]), generator=g_m)`` with ``g_m = torch.Generator().manual_seed(order_seeds[m])``
    and takes batches of `batch_size` rows ``rows[m][perm]`` in that order (the last one smaller).

    Parameters
    ----------
    models : M initialised networks of one shape, ``nn.Sequential(Linear[, ReLU, Linear])`` (as
        `datapruner.curation.proxy.make_proxy_model` builds). Their parameters are overwritten with
        the trained ones; they are left in eval mode.
    X : (N, d) features shared by all models. y : (N,) int class indices.
    rows : per model, the indices into X of its training rows (any order; may differ in length).
    order_seeds : per model, the seed of its data-order generator.
    epochs : passes over each model's rows (0: the models stay at their initialisation).
    lr, weight_decay : AdamW settings. batch_size : mini-batch size of every model.
    min_steps : each model trains at least this many steps (more epochs for small row sets).
    precision : ``"fp32"`` (default) or ``"bf16"``: the forward and backward matrix products in
        bfloat16 with float32 accumulation (features rounded once, weights per step), while the
        weights, the loss and AdamW stay float32 (mixed precision). Faster on CPUs with native
        bfloat16 (AVX512-BF16, AMX; `native_bf16`); elsewhere the products are emulated and can be
        slower than fp32.
    """
    import torch
    import torch.nn.functional as F

    models = list(models)
    if len(rows) != len(models) or len(order_seeds) != len(models):
        raise InputDataError(f"train_stacked needs one row set and one order seed per model; given {len(models)} models, "
                             f"{len(rows)} row sets, {len(order_seeds)} seeds")
    if not models:
        return models
    layers = [stacked_layers(m) for m in models]
    shapes = {tuple(tuple(layer.weight.shape) for layer in ls) for ls in layers}
    if len(shapes) != 1:
        raise InputDataError(f"stacked models must share one shape; given layer shapes {sorted(shapes)}")
    if precision not in PRECISIONS:
        raise InputDataError(f"precision must be one of {PRECISIONS}; given {precision!r}")
    half = precision == "bf16"
    X = torch.as_tensor(X, dtype=torch.float32)
    if half:
        X = X.to(torch.bfloat16)
    Y = torch.as_tensor(y, dtype=torch.long)
    row_sets = [torch.as_tensor(np.asarray(r, dtype=np.int64)) for r in rows]
    n_rows = np.array([len(r) for r in row_sets])
    steps_per_epoch = -(-n_rows // batch_size)
    ragged = n_rows % batch_size != 0  # models whose last batch of an epoch is smaller
    total_steps = steps_per_epoch * np.array([epochs_for(int(n), epochs=epochs, batch_size=batch_size, min_steps=min_steps) for n in n_rows])
    if total_steps.max(initial=0) == 0:
        for m in models:
            m.eval()
        return models

    n_layers = len(layers[0])
    # the stacked parameters: every layer's (M, d_in, d_out) weights, then every layer's (M, 1, d_out) biases
    params = [torch.stack([ls[i].weight.detach().T for ls in layers]).contiguous().requires_grad_() for i in range(n_layers)]
    params += [torch.stack([ls[i].bias.detach()[None] for ls in layers]).contiguous().requires_grad_() for i in range(n_layers)]
    opt = StackedAdamW(params, lr=lr, weight_decay=weight_decay)
    n_classes, n_features = params[n_layers - 1].shape[-1], X.shape[1]
    gens = [torch.Generator().manual_seed(int(s)) for s in order_seeds]
    steps_max = int(steps_per_epoch.max())
    active = np.arange(len(models))  # the model of each stacked slot; a model leaves when its schedule ends
    # each slot's current epoch order, -1 past its end; order.view(-1, batch_size) row slot * steps_max + k is its k-th batch
    order = torch.full((len(active), steps_max * batch_size), -1, dtype=torch.long)
    # model -> its parameters after its last step (models with no step keep their initialisation)
    finished: dict[int, list] = {}

    def forward(xb):
        h = xb
        for i in range(n_layers):
            w, b = params[i], params[n_layers + i]
            h = torch.baddbmm(b.to(torch.bfloat16), h, w.to(torch.bfloat16)) if half else torch.baddbmm(b, h, w)
            if i < n_layers - 1:
                h = torch.relu(h)
        return h.float()

    def slot_schedule():
        """Per slot of the active models: steps per epoch, whether its last batch is smaller, the
        row of its first batch in order.view(-1, batch_size); and the row weights of a full batch."""
        return (np.maximum(steps_per_epoch[active], 1), ragged[active], np.arange(len(active)) * steps_max,
                torch.full((len(active), 1), 1.0 / batch_size))

    spe, ragged_slots, first_batch, full_weight = slot_schedule()
    next_end = total_steps.min()
    for t in range(int(total_steps.max())):
        if t >= next_end:  # finished models stop costing compute: keep only the others' slots (and AdamW state)
            ended = total_steps[active] <= t
            for slot in np.flatnonzero(ended):
                finished[int(active[slot])] = [p[slot].detach().clone() for p in params]
            keep = np.flatnonzero(~ended)
            opt.keep(keep)
            active, order = active[keep], order[torch.as_tensor(keep)]
            spe, ragged_slots, first_batch, full_weight = slot_schedule()
            next_end = total_steps[active].min()
        step_in_epoch = t % spe
        if not step_in_epoch.all():  # some models start an epoch: draw their new order
            for slot in np.flatnonzero(step_in_epoch == 0):
                m = int(active[slot])
                order[slot, : n_rows[m]] = row_sets[m][torch.randperm(int(n_rows[m]), generator=gens[m])]
        idx = order.view(-1, batch_size).index_select(0, torch.from_numpy(first_batch + step_in_epoch))
        if ragged_slots[step_in_epoch == spe - 1].any():  # some model's last, smaller batch of its epoch
            valid = idx >= 0
            counts = valid.sum(1)
            used = int(counts.max())  # batch width this step: trailing columns no model needs are cut
            idx, valid = idx[:, :used].clamp(min=0), valid[:, :used]
            # 1/count by division, as a mean's backward computes it: each model's gradient is that of its own mean loss
            row_weight = valid / counts.clamp(min=1)[:, None]
        else:
            used, row_weight = batch_size, full_weight
        flat = idx.reshape(-1)  # index_select gathers rows several times faster than X[idx]
        xb = X.index_select(0, flat).view(len(active), used, n_features)
        if n_layers == 1:
            grads = linear_softmax_grads(params, xb, Y.index_select(0, flat), row_weight, half)
        else:
            per_row = F.cross_entropy(forward(xb).reshape(-1, n_classes), Y.index_select(0, flat), reduction="none").view(len(active), used)
            grads = torch.autograd.grad((per_row * row_weight).sum(), params)
        opt.step(grads)
    for slot, m in enumerate(active):
        finished[int(m)] = [p[slot].detach() for p in params]

    with torch.no_grad():
        for m, ls in enumerate(layers):
            final = finished[m]
            for i, layer in enumerate(ls):
                layer.weight.copy_(final[i].T)
                layer.bias.copy_(final[len(ls) + i][0])
    for m in models:
        m.eval()
    return models
