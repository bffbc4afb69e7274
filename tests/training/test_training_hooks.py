"""Bring your own model: the plain helper, a real tiny `transformers.Trainer` run with the callback,
and the recorded Parquet file read back by the pipeline as the el2n / grand score source."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from datapruner.errors import ConfigError, InputDataError
from datapruner.pipelines.curate import curate
from datapruner.scorers.el2n import el2n_scores
from datapruner.scorers.grand import grand_scores
from datapruner.curation.recorded_scores import read_recorded_scores
from datapruner.pipelines.training_hooks import ExampleScoreCallback, example_scores


def test_plain_helper_matches_the_pure_functions():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    X = torch.randn(12, 4, generator=torch.Generator().manual_seed(1))
    y = torch.randint(0, 3, (12,), generator=torch.Generator().manual_seed(2))
    model.train()
    out = example_scores(model, X, y)
    assert model.training  # the helper restores the training mode
    with torch.no_grad():
        probs = torch.softmax(model(X), -1).double().numpy()
    np.testing.assert_allclose(out["el2n"], el2n_scores(y.numpy(), probs), rtol=1e-6)
    np.testing.assert_allclose(out["grand"], grand_scores(model, X, y), rtol=1e-6)
    with pytest.raises(ConfigError, match="subset of"):
        example_scores(model, X, y, scores=("forgetting",))


@pytest.fixture(scope="module")
def trainer_run(tmp_path_factory, classification_sample):
    """A real 2-epoch Trainer run of a tiny randomly initialised BERT on 48 SST-2 rows (CPU)."""
    import datasets
    from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

    from datapruner.models import load_tokenizer

    tmp = tmp_path_factory.mktemp("trainer")
    texts, raw = classification_sample("sst2")
    texts, labels = texts[:48], [int(v) for v in raw[:48]]
    tok = load_tokenizer()
    enc = tok(texts, padding="max_length", truncation=True, max_length=24)
    ids = [f"row{i}" for i in range(len(texts))]
    ds = datasets.Dataset.from_dict({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels, "id": ids})
    config = BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32, num_labels=2)
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    path = tmp / "scores.parquet"
    callback = ExampleScoreCallback(ds, path, epochs=(1, 2), scores=("el2n", "grand"), batch_size=16)
    args = TrainingArguments(output_dir=str(tmp / "run"), num_train_epochs=2, per_device_train_batch_size=16, learning_rate=5e-3,
                             report_to=[], save_strategy="no", logging_strategy="no", use_cpu=True, seed=0, disable_tqdm=True)
    Trainer(model=model, args=args, train_dataset=ds.remove_columns(["id"]), callbacks=[callback]).train()
    return {"path": path, "model": model, "ds": ds, "texts": texts, "labels": labels, "ids": ids, "callback": callback, "tmp": tmp}


def test_trainer_callback_records_scores_at_chosen_epochs(trainer_run):
    table = pq.read_table(trainer_run["path"])
    assert table.column_names == ["id", "epoch", "seed", "el2n", "grand"]
    assert table.num_rows == 2 * 48 and sorted(set(table.column("epoch").to_pylist())) == [1, 2]
    assert trainer_run["callback"].recorded_epochs_ == [1, 2]
    rec = table.to_pandas()
    assert rec["el2n"].between(0, np.sqrt(2)).all() and (rec["grand"] > 0).all()
    # epoch 2 rows are the final model's scores: recompute them independently
    final = rec[rec.epoch == 2]
    batch = {k: torch.tensor(trainer_run["ds"][k]) for k in ("input_ids", "attention_mask")}
    again = example_scores(trainer_run["model"], batch, np.array(trainer_run["labels"]))
    np.testing.assert_allclose(final["el2n"].to_numpy(), again["el2n"], rtol=1e-5)
    np.testing.assert_allclose(final["grand"].to_numpy(), again["grand"], rtol=1e-4)
    # training moved the model: the two recorded epochs differ
    assert not np.allclose(rec[rec.epoch == 1]["el2n"].to_numpy(), final["el2n"].to_numpy())


def test_pipeline_reads_recorded_scores_as_a_column_source(trainer_run):
    tmp = trainer_run["tmp"]
    data = tmp / "data.parquet"
    # the dataset order differs from the recording order: rows are joined by id
    order = np.random.default_rng(0).permutation(48)
    pq.write_table(pa.table({"uid": [trainer_run["ids"][i] for i in order], "sentence": [trainer_run["texts"][i] for i in order]}), data)
    cfg = {
        "input": {"path": str(data), "columns": {"text": "sentence", "id": "uid"}},
        "output": {"dir": str(tmp / "out"), "plots": False},
        "scorers": [{"name": "el2n", "params": {"scores_file": str(trainer_run["path"]), "epoch": 1}},
                    {"name": "grand", "params": {"scores_file": str(trainer_run["path"])}}],
        "selection": [{"policy": "top_fraction", "score": "el2n", "keep": 0.25}],
    }
    result = curate(cfg)
    assert result.n_kept == 12
    rec = pq.read_table(trainer_run["path"]).to_pandas()
    by_id_1 = rec[rec.epoch == 1].set_index("id")
    by_id_2 = rec[rec.epoch == 2].set_index("id")
    ids = [trainer_run["ids"][i] for i in order]
    np.testing.assert_allclose(result.scores["el2n"], by_id_1.loc[ids, "el2n"].to_numpy())
    np.testing.assert_allclose(result.scores["grand"], by_id_2.loc[ids, "grand"].to_numpy())  # latest epoch by default
    with pytest.raises(ConfigError, match=r"one of the recorded epochs \[1, 2\]"):
        read_recorded_scores(trainer_run["path"], "el2n", ids, epoch=3)
    with pytest.raises(InputDataError, match="set input.columns.id"):
        read_recorded_scores(trainer_run["path"], "el2n", ["data.parquet:0"])
