"""Closed forms, brute-force equivalence, determinism and bad input for the pure scorer functions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from datapruner.errors import ConfigError, InputDataError, NotFittedError
from datapruner.curation.prediction_checks import check_pred_probs, softmax
from datapruner.curation.proxy import ProxyClassifier
from datapruner.scorers.confident_learning import label_quality
from datapruner.scorers.el2n import el2n_scores
from datapruner.scorers.eu_quadrants import error_uncertainty, prune_tokens
from datapruner.scorers.grand import grand_scores

HANDMADE = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.25, 0.5, 0.25]])
HANDMADE_LABELS = np.array([0, 2, 0])


# ---- EL2N -----------------------------------------------------------------------------------
def test_el2n_matches_closed_form():
    expected = np.sqrt([0.3**2 + 0.2**2 + 0.1**2, 0.1**2 + 0.1**2 + 0.2**2, 0.75**2 + 0.5**2 + 0.25**2])
    np.testing.assert_allclose(el2n_scores(HANDMADE_LABELS, HANDMADE), expected, rtol=1e-12)
    # perfect and maximally wrong one-hot predictions: 0 and sqrt(2)
    np.testing.assert_allclose(el2n_scores([0, 1, 2], np.eye(3)), 0.0, atol=1e-12)
    np.testing.assert_allclose(el2n_scores([1, 2, 0], np.eye(3)), np.sqrt(2.0))


def test_el2n_averages_norms_over_runs_not_probabilities():
    runs = np.array([[[0.8, 0.2, 0.0]], [[0.2, 0.0, 0.8]]])  # S=2 runs, one example of class 0
    per_run = [np.sqrt(0.2**2 + 0.2**2), np.sqrt(0.8**2 + 0.8**2)]
    np.testing.assert_allclose(el2n_scores([0], runs), [np.mean(per_run)])
    # the norm of the mean prediction, sqrt(0.42), is a different quantity
    np.testing.assert_allclose(el2n_scores([0], runs.mean(0)), [np.sqrt(0.42)])


# ---- classification error / uncertainty (A8) --------------------------------------------------
def test_error_uncertainty_closed_form():
    error, uncertainty = error_uncertainty(HANDMADE_LABELS, HANDMADE)
    np.testing.assert_allclose(error, -np.log([0.7, 0.8, 0.25]))
    np.testing.assert_allclose(uncertainty, -(HANDMADE * np.log(HANDMADE)).sum(1))


# ---- bad input, the same message family for every function ------------------------------------
@pytest.mark.parametrize("fn", [el2n_scores, label_quality, error_uncertainty])
def test_rows_not_summing_to_one_are_rejected(fn):
    bad = HANDMADE.copy()
    bad[1] = [0.1, 0.1, 0.1]
    with pytest.raises(InputDataError, match=r"must sum to 1; row \[1\] sums to 0.3"):
        fn(HANDMADE_LABELS, bad)


@pytest.mark.parametrize("fn", [el2n_scores, label_quality, error_uncertainty])
def test_class_index_out_of_range_is_rejected(fn):
    with pytest.raises(InputDataError, match=r"labels\[2\] = 3 is out of range; expected class indices in 0..2"):
        fn([0, 2, 3], HANDMADE)


def test_nan_logits_and_nan_probabilities_are_rejected():
    logits = np.array([[1.0, 2.0], [np.nan, 0.0]])
    with pytest.raises(InputDataError, match=r"non-finite value .* at index \[1, 0\]"):
        softmax(logits)
    with pytest.raises(InputDataError, match="non-finite"):
        el2n_scores([0, 1], np.array([[0.5, 0.5], [np.nan, 0.5]]))


def test_logits_passed_as_probabilities_get_a_hint():
    with pytest.raises(InputDataError, match="If these are logits, convert them with softmax"):
        check_pred_probs([[2.0, -1.0], [0.5, 0.5]])


def test_single_class_is_rejected():
    p = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]])
    with pytest.raises(InputDataError, match="single class"):
        label_quality([0, 0, 0], p)
    with pytest.raises(InputDataError, match="single class"):
        ProxyClassifier(n_seeds=1, epochs=1, n_folds=2).fit(np.eye(3), [1, 1, 1])


def test_a_class_with_one_row_is_named_in_our_log_not_in_a_cleanlab_warning(caplog, recwarn):
    y = np.array([0, 0, 0, 1, 1, 1, 2])  # class 2 has one labelled row: cleanlab cannot flag it
    p = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.7, 0.1], [0.8, 0.1, 0.1], [0.3, 0.3, 0.4]])
    with caplog.at_level("WARNING", logger="datapruner.scorers.confident_learning"):
        quality = label_quality(y, p)
    assert "classes [2] have a single labelled row" in caplog.text
    assert not [w for w in recwarn if "label issues" in str(w.message)]
    assert not quality.is_label_issue[6] and quality.is_label_issue[[1, 5]].all()


def test_fewer_rows_than_folds_is_rejected():
    X = np.random.default_rng(0).normal(size=(4, 8))
    with pytest.raises(InputDataError, match="4 labelled rows is fewer than n_folds=5; lower n_folds"):
        ProxyClassifier(n_seeds=1, epochs=1, n_folds=5).fit(X, [0, 1, 0, 1])


def test_proxy_parameters_and_fitting_state_are_checked():
    with pytest.raises(ConfigError, match="proxy.n_folds"):
        ProxyClassifier(n_folds=1).fit(np.eye(4), [0, 1, 0, 1])
    with pytest.raises(ConfigError, match="proxy.cv_seeds"):
        ProxyClassifier(cv_seeds=0).fit(np.eye(4), [0, 1, 0, 1])
    with pytest.raises(NotFittedError, match="call fit"):
        ProxyClassifier().predict_proba(np.eye(2))


# ---- the proxy --------------------------------------------------------------------------------
def test_proxy_is_deterministic_for_a_random_state(noisy_samples):
    s = noisy_samples["sst2"]
    X, y = s.embeddings[:300], s.noisy[:300]
    a = ProxyClassifier(n_seeds=2, epochs=3, random_state=7).fit(X, y)
    b = ProxyClassifier(n_seeds=2, epochs=3, random_state=7).fit(X, y)
    c = ProxyClassifier(n_seeds=2, epochs=3, random_state=8).fit(X, y)
    np.testing.assert_array_equal(a.seed_pred_probs_, b.seed_pred_probs_)
    np.testing.assert_array_equal(a.pred_probs_, b.pred_probs_)
    np.testing.assert_array_equal(a.folds_, b.folds_)
    assert not np.allclose(a.pred_probs_, c.pred_probs_)
    # the seeds are independent initialisations, and the torch global RNG is left untouched
    assert not np.allclose(a.seed_pred_probs_[0], a.seed_pred_probs_[1])
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    ProxyClassifier(n_seeds=1, epochs=1, n_folds=0).fit(X, y)
    assert torch.rand(1) == before


def test_proxy_cross_val_probabilities_are_out_of_sample(noisy_samples):
    """A row's out-of-fold probability never comes from a model trained on it: a proxy that
    memorises in-sample (wide MLP, many epochs) is far more confident in-sample than out-of-fold."""
    s = noisy_samples["banking77"]
    X, y = s.embeddings[:400], s.noisy[:400]
    proxy = ProxyClassifier(hidden=64, n_seeds=1, epochs=60, n_folds=4, random_state=0).fit(X, y, n_classes=s.n_classes)
    rows = np.arange(len(y))
    in_sample = proxy.seed_pred_probs_[0][rows, y].mean()
    out_of_fold = proxy.pred_probs_[rows, y].mean()
    assert in_sample > 0.9 and out_of_fold < in_sample - 0.3
    assert np.bincount(proxy.folds_).min() >= len(y) // 4 - 77


# ---- GraNd ------------------------------------------------------------------------------------
def _tiny_model(seed: int):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))


def _brute_force(model, X, y, params=None):
    params = list(model.parameters()) if params is None else params
    norms = []
    for i in range(len(y)):
        model.zero_grad()
        torch.nn.functional.cross_entropy(model(X[i : i + 1]), y[i : i + 1]).backward()
        norms.append(torch.sqrt(sum((p.grad.double() ** 2).sum() for p in params)).item())
    return np.array(norms)


def test_grand_equals_per_example_backward_over_all_parameters():
    X = torch.randn(17, 6, generator=torch.Generator().manual_seed(1))
    y = torch.randint(0, 3, (17,), generator=torch.Generator().manual_seed(2))
    model = _tiny_model(0)
    np.testing.assert_allclose(grand_scores(model, X, y, batch_size=5), _brute_force(model, X, y), rtol=1e-5, atol=1e-7)


def test_grand_last_layer_is_a_named_option_and_differs_from_all():
    X = torch.randn(9, 6, generator=torch.Generator().manual_seed(3))
    y = torch.randint(0, 3, (9,), generator=torch.Generator().manual_seed(4))
    model = _tiny_model(1)
    last = grand_scores(model, X, y, scope="last_layer")
    np.testing.assert_allclose(last, _brute_force(model, X, y, params=list(model[2].parameters())), rtol=1e-5, atol=1e-7)
    assert np.all(grand_scores(model, X, y) > last)
    with pytest.raises(ConfigError, match="scope"):
        grand_scores(model, X, y, scope="penultimate")


def test_grand_averages_over_initialisations():
    X = torch.randn(8, 6, generator=torch.Generator().manual_seed(5))
    y = torch.randint(0, 3, (8,), generator=torch.Generator().manual_seed(6))
    models = [_tiny_model(s) for s in range(3)]
    expected = np.mean([_brute_force(m, X, y) for m in models], axis=0)
    np.testing.assert_allclose(grand_scores(models, X, y), expected, rtol=1e-5, atol=1e-7)


# ---- Q2 token pruning -------------------------------------------------------------------------
def test_token_pruning_scores_tokens_with_their_neighbours():
    nll = np.log([2.0, 10.0, 3.0, 1.0, 50.0, 1.5])  # PPL_t = exp(nll_t)
    ppl = np.exp(nll)
    prev = np.r_[ppl[0], ppl[:-1]]
    nxt = np.r_[ppl[1:], ppl[-1]]
    s = 0.5 * ppl + 0.5 * (prev + nxt)
    mask = prune_tokens(nll, lam=0.5, r_token=0.7)
    assert mask.sum() == 4  # round(0.7 * 6) = 4
    np.testing.assert_array_equal(mask, np.isin(np.arange(6), np.argsort(s, kind="stable")[:4]))
    # lam = 0 keeps the individually most predictable tokens
    np.testing.assert_array_equal(prune_tokens(nll, lam=0.0, r_token=0.5), [True, False, False, True, False, True])
    assert prune_tokens(nll[:1], r_token=0.1).tolist() == [True]
    with pytest.raises(ConfigError, match="r_token"):
        prune_tokens(nll, r_token=0.0)
