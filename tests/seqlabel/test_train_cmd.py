"""`datapruner train-pruner` end to end on a few real examples: small shipped file, reproducible
for a random_state, loadable offline, and trained (weights move away from the base encoder)."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
def test_train_pruner_command_is_reproducible_and_loads(tmp_path, shared_data):
    from safetensors.torch import load_file

    from datapruner.cli import main
    from datapruner.scorers.seqlabel import SequenceLabelPruner

    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        argv = ["train-pruner", "--data", str(shared_data / "qa"), "--out", str(out)]
        argv += ["--per-source", "6", "--max-steps", "2", "--batch-size", "4", "--no-eval", "--random-state", "3"]
        assert main(argv) == 0
        outs.append(out)
    a, b = ((o / "pruner.safetensors").read_bytes() for o in outs)
    assert a == b  # same random_state, same bytes
    assert len(a) < 8_000_000
    record = json.loads((outs[0] / "pruner.json").read_text())
    assert record["command"].startswith("datapruner train-pruner --data")
    assert record["train_config"]["random_state"] == 3 and record["steps"] == 2
    assert record["data"]["by_source"] == {"hotpotqa": 6, "xquad": 6, "nq": 6}

    state = load_file(str(outs[0] / "pruner.safetensors"))
    layers = {k.split(".")[3] for k in state if k.startswith("encoder.encoder.layer.")}
    assert layers == {"4", "5"}  # only the top two layers ship, plus the heads
    assert {"token_head.weight", "rank_head.weight", "match_embedding.weight", "dense_gate"} <= set(state)
    a_start, *_ = record["dense_gate"]["start"]
    assert a_start > 0  # evidence tokens sit in units closer to the query

    import torch
    from transformers import AutoModel

    from datapruner.models.embedder import bundled_embedder_path

    base = AutoModel.from_pretrained(bundled_embedder_path()).state_dict()
    key = "encoder.layer.5.output.dense.weight"
    assert not torch.allclose(base[key], state["encoder." + key].float(), atol=1e-4)  # it trained

    (probs,), scores = SequenceLabelPruner(str(outs[0])).score_units(
        "Who wrote it?", ["It was written by Ann. It rained."], [[(0, 22), (23, 32)]]
    )
    assert probs.shape == (2,) and scores.shape == (1,)


def test_bad_options_fail_with_a_clear_message(tmp_path, shared_data, capsys):
    from datapruner.cli import main

    argv = ["train-pruner", "--data", str(tmp_path), "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    assert "hotpot" in capsys.readouterr().err.lower()
    argv = ["train-pruner", "--data", str(shared_data / "qa"), "--out", str(tmp_path / "o"), "--epochs", "0"]
    assert main(argv) == 2
    assert "--epochs" in capsys.readouterr().err
