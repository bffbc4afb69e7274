"""Bring your own model: record per-example EL2N / GraNd while you train, then prune with them.

- `example_scores(model, inputs, labels)`: plain PyTorch helper; scores one batch under a model.
- `ExampleScoreCallback`: a `transformers.TrainerCallback` that scores a dataset at chosen epochs
  and writes a Parquet file with columns ``id, epoch, seed, el2n[, grand]``.
- `datapruner.curation.recorded_scores.read_recorded_scores` reads such a file back aligned to a
  dataset's row ids; the `el2n` and `grand` steps use it when given ``scores_file`` (set
  ``input.columns.id`` to the same ids).

EL2N is `datapruner.scorers.el2n.el2n_scores` on the model's softmax; GraNd is
`datapruner.scorers.grand.grand_scores`
(per-sample gradients over all trainable parameters). Recording the same epoch from several
training runs (different `seed`s) gives the S-run average of the paper: rows that share an id and
epoch are averaged when read.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from datapruner.curation.recorded_scores import RECORDED_SCORES, write_recorded_scores
from datapruner.errors import ConfigError, InputDataError
from datapruner.scorers.grand import SCOPES
from datapruner.validation import check_choice, check_positive_int

log = logging.getLogger(__name__)



def _check_scores(scores: Sequence[str]) -> tuple[str, ...]:
    scores = tuple(scores)
    bad = [s for s in scores if s not in RECORDED_SCORES]
    if bad or not scores:
        raise ConfigError("scores", list(scores), f"a non-empty subset of {list(RECORDED_SCORES)}")
    return scores


def example_scores(
    model: Any,
    inputs: Any,
    labels: Any,
    *,
    scores: Sequence[str] = RECORDED_SCORES,
    scope: str = "all",
) -> dict[str, np.ndarray]:
    """Score one batch of examples under `model`.

    Parameters
    ----------
    model : torch.nn.Module returning logits (a tensor, ``.logits``, or a tuple's first item).
    inputs : (n, ...) tensor, or a mapping of name -> (n, ...) tensors passed as keyword arguments.
    labels : (n,) int class indices.
    scores : which of ``"el2n"``, ``"grand"`` to compute.
    scope : GraNd parameter scope, ``"all"`` (default) or ``"last_layer"``.

    Returns
    -------
    {name: (n,) float64}; for both scores higher = harder / more informative.
    """
    import torch

    from datapruner.scorers.el2n import el2n_scores
    from datapruner.scorers.grand import grand_scores, output_logits

    scores = _check_scores(scores)
    out: dict[str, np.ndarray] = {}
    if "el2n" in scores:
        was_training = model.training
        model.eval()
        with torch.no_grad():
            if isinstance(inputs, Mapping):
                logits = output_logits(model(**{k: torch.as_tensor(v) for k, v in inputs.items()}))
            else:
                logits = output_logits(model(torch.as_tensor(inputs)))
        model.train(was_training)
        probs = torch.softmax(logits.double(), dim=-1).numpy()
        out["el2n"] = el2n_scores(np.asarray(torch.as_tensor(labels)), probs)
    if "grand" in scores:
        out["grand"] = grand_scores(model, inputs, np.asarray(torch.as_tensor(labels)), scope=scope)
    return out


def _callback_base():
    try:
        from transformers import TrainerCallback
    except ImportError as exc:  # pragma: no cover - transformers is a core dependency
        raise InputDataError("ExampleScoreCallback needs transformers") from exc
    return TrainerCallback


class ExampleScoreCallback(_callback_base()):
    """Record per-example EL2N / GraNd at chosen epochs of a `transformers.Trainer` run.

    Parameters
    ----------
    dataset : a map-style dataset (e.g. `datasets.Dataset`) of model inputs plus labels and ids.
    path : Parquet file to write (rewritten atomically after every recorded epoch).
    epochs : epochs (1-based, as `state.epoch` after that epoch ends) at which to score.
    scores : subset of ``("el2n", "grand")``.
    id_column : dataset column with each row's id (what `input.columns.id` will name).
    label_column : dataset column with class indices.
    input_columns : model input columns; default every dataset column except ids and labels.
    collate_fn : turns a list of rows into a batch of tensors; default
        `transformers.default_data_collator` (rows must share a length: pad when tokenising, or
        pass `DataCollatorWithPadding(tokenizer)`).
    batch_size : rows per scoring batch. scope : GraNd scope (``"all"`` or ``"last_layer"``).
    """

    def __init__(
        self,
        dataset: Any,
        path: str | Path,
        *,
        epochs: Iterable[int] = (1,),
        scores: Sequence[str] = ("el2n",),
        id_column: str = "id",
        label_column: str = "labels",
        input_columns: Sequence[str] | None = None,
        collate_fn: Callable | None = None,
        batch_size: int = 32,
        scope: str = "all",
    ):
        self.dataset = dataset
        self.path = Path(path)
        self.epochs = sorted({check_positive_int("epochs[]", e) for e in epochs})
        self.scores = _check_scores(scores)
        self.id_column = id_column
        self.label_column = label_column
        self.input_columns = list(input_columns) if input_columns is not None else None
        self.collate_fn = collate_fn
        self.batch_size = check_positive_int("batch_size", batch_size, hint=" (rows per scoring batch)")
        self.scope = check_choice("scope", scope, SCOPES)
        self.rows: dict[str, list] = {"id": [], "epoch": [], "seed": [], **{s: [] for s in self.scores}}
        self.recorded_epochs_: list[int] = []

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        """Record the scores when the epoch that just ended is one of `epochs`."""
        epoch = int(round(state.epoch or 0))
        if epoch in self.epochs and epoch not in self.recorded_epochs_ and model is not None:
            self.record(model, epoch=epoch, seed=int(getattr(args, "seed", 0)))
        return control

    def record(self, model: Any, *, epoch: int, seed: int = 0) -> Path:
        """Score every row of the dataset under `model` and rewrite the Parquet file."""
        from transformers import default_data_collator

        collate = self.collate_fn or default_data_collator
        columns = list(self.dataset.column_names) if hasattr(self.dataset, "column_names") else list(self.dataset[0])
        for need in (self.id_column, self.label_column):
            if need not in columns:
                raise InputDataError(f"the callback's dataset has no {need!r} column (columns: {columns})")
        inputs = self.input_columns or [c for c in columns if c not in (self.id_column, self.label_column)]
        device = next(model.parameters()).device
        for start in range(0, len(self.dataset), self.batch_size):
            rows = [self.dataset[i] for i in range(start, min(start + self.batch_size, len(self.dataset)))]
            batch = collate([{k: r[k] for k in inputs} for r in rows])
            batch = {k: v.to(device) for k, v in batch.items()}
            labels = np.array([int(r[self.label_column]) for r in rows])
            result = example_scores(model, batch, labels, scores=self.scores, scope=self.scope)
            self.rows["id"].extend(str(r[self.id_column]) for r in rows)
            self.rows["epoch"].extend([epoch] * len(rows))
            self.rows["seed"].extend([seed] * len(rows))
            for s in self.scores:
                self.rows[s].extend(result[s].tolist())
        self.recorded_epochs_.append(epoch)
        log.info("recorded %s for %d rows at epoch %d into %s", ",".join(self.scores), len(self.dataset), epoch, self.path)
        return write_recorded_scores(self.path, self.rows)
