"""Noise detection on real data: 20% seeded label flips in the SST-2 and Banking77 samples.

Precision@k (k = number of flipped rows) of a scorer that ignores the labels is the flip rate, 0.2.
Measured with the default proxy (logistic layer on MiniLM embeddings, S=5, E=10, 5 folds):
SST-2 about 0.59 for EL2N and confident learning (the proxy itself is only ~75% accurate on this
800-row sample), Banking77 about 0.90. The asserted floors leave room for run-to-run variation
while a broken scorer (random, inverted, or ignoring the given label) fails them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from datapruner.scorers.confident_learning import label_quality
from datapruner.scorers.el2n import el2n_scores
from datapruner.scorers.eu_quadrants import error_uncertainty
from datapruner.selection.quadrants import Quadrants

FLOORS = {"sst2": 0.45, "banking77": 0.75}  # measured ~0.59 / ~0.90; flip rate 0.2


@pytest.mark.parametrize("name", ["sst2", "banking77"])
def test_el2n_ranks_flipped_rows_first(name, noisy_samples, fitted_proxies, precision_at):
    s, proxy = noisy_samples[name], fitted_proxies[name]
    scores = el2n_scores(s.noisy, proxy.seed_pred_probs_)
    p = precision_at(scores, s.flipped)
    print(f"{name}: EL2N precision@k = {p:.3f} (flip rate {s.flipped.mean():.2f})")
    assert p >= FLOORS[name]
    # the same probabilities scored against the clean labels no longer single out the flipped rows
    assert precision_at(el2n_scores(s.clean, proxy.seed_pred_probs_), s.flipped) < p - 0.15


@pytest.mark.parametrize("name", ["sst2", "banking77"])
def test_confident_learning_ranks_and_flags_flipped_rows(name, noisy_samples, fitted_proxies, precision_at):
    s, proxy = noisy_samples[name], fitted_proxies[name]
    result = label_quality(s.noisy, proxy.pred_probs_)
    p = precision_at(-result.label_quality, s.flipped)
    flagged = result.is_label_issue
    flag_precision = float(s.flipped[flagged].mean())
    flag_recall = float(flagged[s.flipped].mean())
    print(f"{name}: CL precision@k = {p:.3f}; flagged {flagged.sum()} rows, precision {flag_precision:.3f}, recall {flag_recall:.3f}")
    assert p >= FLOORS[name]
    assert flag_precision >= 2 * s.flipped.mean() and flag_recall >= 0.5
    # suggested labels recover the true class of most flipped rows the proxy flags
    recovered = float((result.suggested_label[flagged & s.flipped] == s.clean[flagged & s.flipped]).mean())
    assert recovered >= 0.7


def test_quadrant_policy_drops_more_flipped_than_clean_rows(noisy_samples, fitted_proxies):
    """Banking77 (77 classes): flipped rows land mostly in Q1 (high error, high uncertainty)."""
    s, proxy = noisy_samples["banking77"], fitted_proxies["banking77"]
    error, uncertainty = error_uncertainty(s.noisy, proxy.seed_pred_probs_)
    policy = Quadrants(keep=0.5)
    kept = policy.select({"eu_error": error, "eu_uncertainty": uncertainty}, np.ones(len(error), dtype=bool))
    dropped = ~kept
    share_flipped, share_clean = dropped[s.flipped].mean(), dropped[~s.flipped].mean()
    print(f"banking77: quadrants(keep=0.5) drops {share_flipped:.3f} of flipped rows, {share_clean:.3f} of clean rows")
    assert share_flipped > share_clean + 0.05
    quadrant = policy.audit_columns()["quadrant"]
    assert (quadrant[s.flipped] == "Q1").mean() > (quadrant[~s.flipped] == "Q1").mean()
    assert kept.sum() == 600


def test_quadrants_on_binary_labels_keep_confidently_wrong_rows(noisy_samples, fitted_proxies):
    """SST-2 (2 classes): the entropy is a function of p[y], so 'high error, low uncertainty' (Q2,
    kept by the method as a misconception) is exactly 'confidently wrong' — where flipped labels
    sit. Documented limitation: on binary data use confident learning to drop label noise first."""
    s, proxy = noisy_samples["sst2"], fitted_proxies["sst2"]
    error, uncertainty = error_uncertainty(s.noisy, proxy.seed_pred_probs_)
    policy = Quadrants(keep=0.5)
    policy.select({"eu_error": error, "eu_uncertainty": uncertainty}, np.ones(len(error), dtype=bool))
    quadrant = policy.audit_columns()["quadrant"]
    print(f"sst2: Q2 share of flipped {np.mean(quadrant[s.flipped] == 'Q2'):.3f}, of clean {np.mean(quadrant[~s.flipped] == 'Q2'):.3f}")
    assert np.mean(quadrant[s.flipped] == "Q2") > 2 * np.mean(quadrant[~s.flipped] == "Q2")


@pytest.mark.parametrize("name", ["sst2", "banking77"])
def test_grand_near_initialisation_ranks_flipped_rows_first(name, noisy_samples, precision_at):
    """GraNd after E=10 proxy epochs (`grand` step with `epochs: 10`) finds flipped labels; at
    initialisation (the paper's default, `epochs: 0`) it measures something else and sits near chance."""
    from datapruner.curation.proxy import make_proxy_model, seed_for, train_proxy_model
    from datapruner.scorers.grand import grand_scores

    s = noisy_samples[name]
    result = {}
    for epochs in (0, 10):
        models = []
        for seed in range(5):
            model = make_proxy_model(s.embeddings.shape[1], s.n_classes, random_state=seed_for(0, seed, 10))
            train_proxy_model(model, s.embeddings, s.noisy, epochs=epochs, lr=1e-2, weight_decay=1e-4, batch_size=64, random_state=seed_for(0, seed, 11))
            models.append(model)
        result[epochs] = precision_at(grand_scores(models, s.embeddings, s.noisy), s.flipped)
    print(f"{name}: GraNd precision@k = {result[0]:.3f} at init, {result[10]:.3f} after 10 epochs")
    assert result[10] >= FLOORS[name]
    assert result[0] < 0.3


# ---- the issue-11 detector: a count cleanlab estimates, and a second pass without the flagged rows ----
def test_issue_count_mean_flags_the_lowest_ranked_rows_at_the_mean_of_cleanlabs_two_estimates(noisy_samples, fitted_proxies):
    from cleanlab.count import num_label_issues
    from cleanlab.rank import get_label_quality_scores

    s, proxy = noisy_samples["banking77"], fitted_proxies["banking77"]
    counts = [num_label_issues(s.noisy, proxy.pred_probs_, estimation_method=m) for m in ("off_diagonal", "off_diagonal_calibrated")]
    assert counts[0] != counts[1]  # otherwise the test cannot tell the estimators apart
    result = label_quality(s.noisy, proxy.pred_probs_, filter_by="low_self_confidence", issue_count="mean")
    assert result.is_label_issue.sum() == sum(counts) // 2
    confidence = get_label_quality_scores(s.noisy, proxy.pred_probs_, method="self_confidence")
    assert confidence[result.is_label_issue].max() <= confidence[~result.is_label_issue].min()
    default = label_quality(s.noisy, proxy.pred_probs_, filter_by="low_self_confidence")
    assert default.is_label_issue.sum() == counts[0]


def test_issue_count_needs_a_filter_that_flags_a_count():
    from datapruner.errors import ConfigError

    with pytest.raises(ConfigError, match=r"issue_count.*low_self_confidence"):
        label_quality([0, 1, 0, 1], np.full((4, 2), 0.5), issue_count="mean")


def test_train_mask_trains_only_on_its_rows_and_scores_every_row(noisy_samples):
    """In-sample runs with a mask equal runs on the masked subset alone; fold models never see masked-out rows."""
    from datapruner.curation.proxy import ProxyClassifier, predict_proxy_model

    s = noisy_samples["sst2"]
    mask = ~s.flipped
    masked = ProxyClassifier(n_seeds=2, random_state=0).fit(s.embeddings, s.noisy, n_classes=2, train_mask=mask)
    subset = ProxyClassifier(n_seeds=2, n_folds=0, random_state=0).fit(s.embeddings[mask], s.noisy[mask], n_classes=2)
    np.testing.assert_allclose(masked.seed_pred_probs_, np.stack([predict_proxy_model(m, s.embeddings) for m in subset.models_]), atol=1e-5)
    full = ProxyClassifier(n_seeds=2, random_state=0).fit(s.embeddings, s.noisy, n_classes=2)
    np.testing.assert_array_equal(masked.folds_, full.folds_)
    # trained without the flipped rows, the out-of-sample probabilities of their given labels drop
    given = np.arange(len(s.noisy)), s.noisy
    assert masked.pred_probs_[given][s.flipped].mean() < full.pred_probs_[given][s.flipped].mean() - 0.02


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sst2", "banking77"])
def test_refit_clean_detector_beats_plain_cleanlab_on_the_samples(name, tmp_path, noisy_samples):
    """The issue-11 detector (the shipped configs/curate-label-noise.yaml) through the pipeline, against plain
    cleanlab (`find_label_issues` defaults on one 5-fold logistic model) on the same 20 %-flipped sample;
    neither is told the noise rate."""
    import cleanlab.filter
    import pyarrow as pa
    import pyarrow.parquet as pq
    import yaml

    from datapruner.curation.proxy import ProxyClassifier
    from datapruner.pipelines.curate import score

    s = noisy_samples[name]
    path = tmp_path / "noisy.parquet"
    pq.write_table(pa.table({"text": s.texts, "label": [str(s.label_names[i]) for i in s.noisy]}), path)
    config = yaml.safe_load((Path(__file__).parents[2] / "configs" / "curate-label-noise.yaml").read_text())
    config["input"] = {"path": str(path), "columns": {"text": "text", "label": "label"}}
    config["output"]["dir"] = str(tmp_path / "o")
    out = score(config)
    flags = np.array(pq.read_table(out, columns=["is_label_issue"]).column(0).to_pylist(), dtype=bool)
    anchor = ProxyClassifier(n_seeds=1, random_state=0).fit(s.embeddings, s.noisy, n_classes=s.n_classes).pred_probs_
    plain = np.asarray(cleanlab.filter.find_label_issues(s.noisy, anchor))

    def f1(f):
        tp = (f & s.flipped).sum()
        return 2 * tp / (f.sum() + s.flipped.sum())

    print(f"{name}: refit_clean detector F1 {f1(flags):.3f} ({flags.sum()} flagged), plain cleanlab {f1(plain):.3f} ({plain.sum()})")
    assert f1(flags) > f1(plain)  # measured: SST-2 0.618 vs 0.567, Banking77 0.795 vs 0.782 (the full sets: README)


@pytest.mark.parametrize("params, match", [
    ({"refit_clean": "yes"}, r"params\.refit_clean.*'yes'.*true or false"),
    ({"issue_count": "mean"}, r"params\.issue_count.*set filter_by to one of"),
    ({"filter_by": "low_self_confidence", "issue_count": "median"}, r"params\.issue_count.*'median'"),
    ({"refit_clean": True, "probs_column": "p"}, r"params\.refit_clean.*false when logits_column / probs_column"),
])
def test_detector_params_fail_when_the_config_loads(params, match):
    from datapruner.registry import get_scorer
    from datapruner.errors import ConfigError

    with pytest.raises(ConfigError, match=match):
        get_scorer("confident_learning")(**params)
