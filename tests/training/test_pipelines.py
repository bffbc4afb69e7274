"""Both shipped configs end to end (Python API and CLI), the one-line CLI, label-noise runs through
the pipeline, and bring-your-own logits / probabilities columns."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datapruner.cli import main
from datapruner.config import load_config
from datapruner.errors import InputDataError
from datapruner.pipelines.curate import curate
from datapruner.curation.prediction_checks import softmax
from datapruner.scorers.el2n import el2n_scores

CONFIGS = Path(__file__).parents[2] / "configs"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _table(result) -> dict:
    return pq.read_table(result.scores_path).to_pydict()


# ---- configs/curate-classification.yaml -------------------------------------------------------
@pytest.fixture(scope="module")
def classification_run(tmp_path_factory):
    return curate(CONFIGS / "curate-classification.yaml", out=str(tmp_path_factory.mktemp("cls") / "out"))


def test_classification_config_drops_label_issues_then_keeps_hardest_half(classification_run):
    r = classification_run
    t = _table(r)
    keep, reason = np.array(t["keep"]), np.array(t["reason"], dtype=object)
    issue = np.array([bool(v) for v in t["is_label_issue"]])
    el2n = np.array(t["el2n"])
    assert r.n_rows == 1200
    assert issue.sum() > 0 and np.all(reason[issue] == "drop_label_issues()")
    survivors = ~issue
    assert keep.sum() == round(0.5 * survivors.sum())
    assert el2n[keep].min() >= el2n[survivors & ~keep].max()
    assert set(reason[survivors & ~keep]) == {"top_fraction(direction=high,keep=0.5,offset=0.0,score=el2n)"}
    assert np.all(np.isfinite(t["grand"])) and np.all(np.array(t["grand"]) > 0)
    assert {"hist_el2n.png", "hist_grand.png", "hist_label_quality.png"} <= {p.name for p in (r.out_dir / "report").iterdir()}
    manifest = json.loads(r.manifest_path.read_text())
    assert manifest["report"]["confident_learning"]["label_issues"] == int(issue.sum())
    # suggested labels are in the input's label space (Banking77 category names)
    assert all(isinstance(v, str) for v in t["suggested_label"])


def test_classification_config_via_cli_is_byte_identical(classification_run, tmp_path):
    code = main(["run", str(CONFIGS / "curate-classification.yaml"), "--out", str(tmp_path / "cli")])
    assert code == 0
    assert _digest(tmp_path / "cli" / "scores.parquet") == _digest(classification_run.scores_path)


def test_one_line_prune_with_el2n_and_offset(tmp_path, test_data):
    code = main([
        "prune", "--input", str(test_data / "classification" / "sst2_train.csv"), "--text-column", "sentence",
        "--label-column", "label", "--scorer", "el2n", "--param", "el2n.n_seeds=2", "--keep", "0.5", "--offset", "0.05",
        "--out", str(tmp_path / "o"),
    ])
    assert code == 0
    t = pq.read_table(tmp_path / "o" / "scores.parquet").to_pydict()
    el2n, keep = np.array(t["el2n"]), np.array(t["keep"])
    order = np.argsort(-el2n, kind="stable")
    assert keep.sum() == 400 and not keep[order[:40]].any() and keep[order[40:440]].all()


# ---- label noise through the pipeline ---------------------------------------------------------
def test_noisy_banking77_through_the_pipeline(tmp_path, noisy_samples):
    s = noisy_samples["banking77"]
    path = tmp_path / "noisy.parquet"
    pq.write_table(pa.table({"text": s.texts, "category": [s.label_names[i] for i in s.noisy]}), path)
    cfg = {
        "input": {"path": str(path), "columns": {"text": "text", "label": "category"}},
        "output": {"dir": str(tmp_path / "out")},
        "scorers": ["confident_learning", "el2n", "eu_quadrants"],
        "selection": [{"policy": "quadrants", "keep": 0.5}],
    }
    r = curate(cfg)
    t = _table(r)
    issue = np.array(t["is_label_issue"], dtype=bool)
    assert s.flipped[issue].mean() > 0.6 and issue[s.flipped].mean() > 0.8
    keep = np.array(t["keep"])
    assert (~keep)[s.flipped].mean() > (~keep)[~s.flipped].mean() + 0.05
    assert set(t["quadrant"]) <= {"Q1", "Q2", "Q3", "Q4", "unassigned"}
    assert (r.out_dir / "report" / "eu_plane.png").stat().st_size > 10_000
    # one proxy fit is shared by the three scorers of the run (same parameters), so this equals el2n_scores
    from datapruner.curation.proxy import ProxyClassifier

    proxy = ProxyClassifier(random_state=0).fit(s.embeddings, s.noisy, n_classes=s.n_classes)
    np.testing.assert_allclose(t["el2n"], el2n_scores(s.noisy, proxy.seed_pred_probs_), rtol=1e-6)


# ---- bring your own logits / probabilities ----------------------------------------------------
def _byo(tmp_path, logits: np.ndarray, **extra) -> Path:
    n = len(logits)
    rows = {"sentence": [f"example sentence number {i}" for i in range(n)], "label": [i % 3 for i in range(n)],
            "logits": [list(map(float, row)) for row in logits], **extra}
    path = tmp_path / "byo.parquet"
    pq.write_table(pa.table(rows), path)
    return path


def _byo_cfg(path: Path, out: Path, scorer: str, params: dict) -> dict:
    return {
        "input": {"path": str(path), "columns": {"text": "sentence", "label": "label"}},
        "output": {"dir": str(out), "plots": False},
        "scorers": [{"name": scorer, "params": params}],
    }


def test_logits_and_probability_columns_replace_the_proxy(tmp_path):
    logits = np.random.default_rng(0).normal(size=(30, 3)) * 3
    probs = softmax(logits)
    path = _byo(tmp_path, logits, probs=[list(map(float, p)) for p in probs])
    labels = np.arange(30) % 3
    r = curate(_byo_cfg(path, tmp_path / "a", "el2n", {"logits_column": "logits"}))
    np.testing.assert_allclose(r.scores["el2n"], el2n_scores(labels, probs), rtol=1e-9)
    r = curate(_byo_cfg(path, tmp_path / "b", "confident_learning", {"probs_column": "probs"}))
    np.testing.assert_array_equal(r.scores["suggested_label"].astype(int), probs.argmax(1))
    r = curate(_byo_cfg(path, tmp_path / "c", "eu_quadrants", {"task": "classification", "probs_column": "probs"}))
    np.testing.assert_allclose(r.scores["eu_error"], -np.log(probs[np.arange(30), labels]), rtol=1e-9)


def test_bad_user_columns_fail_with_clear_errors(tmp_path):
    logits = np.random.default_rng(1).normal(size=(10, 3))
    logits[4, 1] = np.nan
    path = _byo(tmp_path, logits, probs=[[0.5, 0.2, 0.2]] * 10)
    with pytest.raises(InputDataError, match=r"column 'logits'.* non-finite value .* index \[4, 1\]"):
        curate(_byo_cfg(path, tmp_path / "a", "el2n", {"logits_column": "logits"}))
    with pytest.raises(InputDataError, match=r"rows of column 'probs' must sum to 1; row \[0\] sums to 0.9"):
        curate(_byo_cfg(path, tmp_path / "b", "confident_learning", {"probs_column": "probs"}))
    with pytest.raises(InputDataError, match="input has no column 'scores'"):
        curate(_byo_cfg(path, tmp_path / "c", "el2n", {"probs_column": "scores"}))


def test_single_class_and_too_few_rows_fail_in_the_pipeline(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("sentence,label\n" + "".join(f"sentence {i},1\n" for i in range(8)))
    cfg = {"input": {"path": str(path), "columns": {"text": "sentence", "label": "label"}},
           "output": {"dir": str(tmp_path / "o"), "plots": False}, "scorers": ["confident_learning"]}
    with pytest.raises(InputDataError, match="single class"):
        curate(cfg)
    path.write_text("sentence,label\na good film,1\na bad film,0\nfine,1\n")
    with pytest.raises(InputDataError, match="fewer than n_folds=5"):
        curate({**cfg, "output": {"dir": str(tmp_path / "p"), "plots": False}})


# ---- configs/curate-sft-quadrants.yaml (reference LM: slow) ------------------------------------
@pytest.fixture(scope="module")
def sft_run(tmp_path_factory):
    return curate(CONFIGS / "curate-sft-quadrants.yaml", out=str(tmp_path_factory.mktemp("sft") / "out"))


@pytest.mark.slow
def test_sft_config_keeps_q2_q4_and_prunes_q2_tokens(sft_run):
    r = sft_run
    t = _table(r)
    assert r.n_rows == 80 and r.n_kept == 40
    quadrant = np.array(t["quadrant"], dtype=object)
    keep = np.array(t["keep"])
    assert set(quadrant) <= {"Q1", "Q2", "Q3", "Q4", "unassigned"}
    assert keep[np.isin(quadrant, ["Q2", "Q4"])].all()
    assert np.all(np.array(t["eu_error"]) > 1) and np.all(np.array(t["eu_uncertainty"]) > 0)
    q2 = np.flatnonzero(keep & (quadrant == "Q2"))
    assert len(q2) > 0
    for i in q2:
        mask = t["eu_token_mask"][i]
        assert len(mask) == t["eu_tokens"][i] and sum(mask) == max(1, int(np.floor(0.7 * len(mask) + 0.5)))
        assert t["q2_pruned_response"][i] == t["eu_pruned_response"][i]
        assert len(t["q2_pruned_response"][i]) < len(pq.read_table(r.pruned_dir).to_pydict()["response"][list(np.flatnonzero(keep)).index(i)])
    assert all(t["q2_pruned_response"][i] is None for i in np.flatnonzero(quadrant != "Q2"))
    assert {"eu_plane.png", "hist_eu_error.png"} <= {p.name for p in (r.out_dir / "report").iterdir()}


@pytest.mark.slow
def test_sft_config_via_cli_is_byte_identical(sft_run, tmp_path):
    assert main(["run", str(CONFIGS / "curate-sft-quadrants.yaml"), "--out", str(tmp_path / "cli")]) == 0
    assert _digest(tmp_path / "cli" / "scores.parquet") == _digest(sft_run.scores_path)


@pytest.mark.slow
def test_sft_quadrants_drop_mismatched_responses_more_often(tmp_path, test_data):
    """20% of responses swapped to another question's answer: high perplexity, high entropy (Q1)."""
    rows = [json.loads(line) for line in (test_data / "sft" / "xquad_qa_sft.jsonl").read_text().splitlines()]
    rng = np.random.default_rng(0)
    swapped = rng.choice(len(rows), len(rows) // 5, replace=False)
    responses = [r["response"] for r in rows]
    for a, b in zip(swapped, np.roll(swapped, 1)):
        rows[a] = {**rows[a], "response": responses[b]}
    path = tmp_path / "noisy.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = load_config(CONFIGS / "curate-sft-quadrants.yaml", out=str(tmp_path / "out"))
    cfg.input.path = str(path)
    r = curate(cfg)
    noisy = np.zeros(len(rows), dtype=bool)
    noisy[swapped] = True
    dropped = ~r.keep
    assert dropped[noisy].mean() > dropped[~noisy].mean() + 0.15


def test_invalid_text_and_missing_labels_get_null_scores(tmp_path, classification_sample):
    texts, labels = classification_sample("sst2")
    rows = [{"sentence": t, "label": int(y)} for t, y in zip(texts[:150], labels[:150])]
    rows[3]["sentence"] = ""
    rows[7]["label"] = None
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = {
        "input": {"path": str(path), "columns": {"text": "sentence", "label": "label"}},
        "output": {"dir": str(tmp_path / "o"), "plots": False},
        "scorers": ["confident_learning", "el2n", {"name": "grand", "params": {"n_seeds": 2}}, "eu_quadrants"],
        "selection": [{"policy": "drop_label_issues"}, {"policy": "quadrants", "keep": 0.5}],
    }
    r = curate(cfg)
    t = _table(r)
    for i in (3, 7):
        assert np.isnan(t["el2n"][i]) and np.isnan(t["grand"][i]) and np.isnan(t["eu_error"][i]) and np.isnan(t["label_quality"][i])
        assert t["is_label_issue"][i] is None and t["suggested_label"][i] is None and t["quadrant"][i] is None
    assert t["reason"][3] == "invalid:empty_text" and t["reason"][7] == "quadrants(keep=0.5)[missing eu_error]"
    others = np.setdiff1d(np.arange(150), [3, 7])
    assert np.all(np.isfinite(np.array(t["el2n"])[others]))
