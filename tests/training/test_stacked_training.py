"""Stacked training (`datapruner.curation.stacked_training`) against a plain per-model loop, and the proxy built on it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from datapruner.curation.proxy import ProxyClassifier, make_proxy_model
from datapruner.curation.stacked_training import native_bf16, train_stacked
from datapruner.errors import ConfigError, InputDataError

D, K = 16, 3
SETTINGS = dict(epochs=3, lr=1e-2, weight_decay=1e-4, batch_size=32)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, D)).astype(np.float32)
    y = (X @ rng.normal(size=(D, K)) + rng.normal(scale=0.5, size=(300, K))).argmax(1)
    # different sizes, so different steps per epoch (10, 8, 7, 4 and 1 batches of 32), shuffled row order
    subsets = [np.arange(300), rng.permutation(300)[:250], np.sort(rng.choice(300, 203, replace=False)), rng.permutation(300)[:97],
               np.arange(5, 25)]
    return X, y, subsets


def reference_train(X, y, rows, *, hidden, init_seed, order_seed, epochs, lr, weight_decay, batch_size, min_steps=0):
    """One model trained alone: torch.nn.Linear layers, AdamW, shuffled mini-batches of its rows."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        layers = [torch.nn.Linear(D, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, K)] if hidden else [torch.nn.Linear(D, K)]
        model = torch.nn.Sequential(*layers)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    Xr, yr = torch.from_numpy(X[rows]), torch.from_numpy(y[rows]).long()
    gen = torch.Generator().manual_seed(order_seed)
    n_steps = -(-len(rows) // batch_size)
    for _ in range(max(epochs, -(-min_steps // n_steps))):
        perm = torch.randperm(len(rows), generator=gen)
        for start in range(0, len(rows), batch_size):
            batch = perm[start : start + batch_size]
            opt.zero_grad()
            F.cross_entropy(model(Xr[batch]), yr[batch]).backward()
            opt.step()
    return model


def flat(model) -> np.ndarray:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).numpy()


@pytest.mark.parametrize("hidden", [0, 8])
@pytest.mark.parametrize("min_steps", [0, 40])
def test_stacked_models_equal_models_trained_alone(data, hidden, min_steps):
    X, y, subsets = data
    init_seeds, order_seeds = [11, 12, 13, 14, 15], [21, 22, 23, 24, 25]
    models = [make_proxy_model(D, K, hidden=hidden, random_state=s) for s in init_seeds]
    start = [flat(m) for m in models]
    train_stacked(models, X, y, subsets, order_seeds, min_steps=min_steps, **SETTINGS)
    for m, rows in enumerate(subsets):
        ref = reference_train(X, y, rows, hidden=hidden, init_seed=init_seeds[m], order_seed=order_seeds[m], min_steps=min_steps, **SETTINGS)
        assert np.abs(flat(models[m]) - start[m]).max() > 1e-3  # it trained
        np.testing.assert_allclose(flat(models[m]), flat(ref), atol=2e-5, err_msg=f"model {m} ({len(rows)} rows)")


def test_stacked_zero_epochs_keeps_the_initialisation(data):
    X, y, subsets = data
    models = [make_proxy_model(D, K, hidden=4, random_state=s) for s in (1, 2)]
    start = [flat(m) for m in models]
    train_stacked(models, X, y, subsets[:2], [1, 2], **{**SETTINGS, "epochs": 0})
    for m in range(2):
        np.testing.assert_array_equal(flat(models[m]), start[m])


def test_stacked_model_with_no_rows_keeps_its_initialisation(data):
    X, y, subsets = data
    models = [make_proxy_model(D, K, random_state=s) for s in (1, 2)]
    start = flat(models[1])
    train_stacked(models, X, y, [subsets[0], np.array([], dtype=np.int64)], [1, 2], **SETTINGS)
    np.testing.assert_array_equal(flat(models[1]), start)
    ref = reference_train(X, y, subsets[0], hidden=0, init_seed=1, order_seed=1, **SETTINGS)
    np.testing.assert_allclose(flat(models[0]), flat(ref), atol=2e-5)


def test_stacked_rejects_mismatched_inputs(data):
    X, y, subsets = data
    with pytest.raises(InputDataError, match="one row set and one order seed per model"):
        train_stacked([make_proxy_model(D, K)], X, y, subsets[:2], [1], **SETTINGS)
    with pytest.raises(InputDataError, match="share one shape"):
        train_stacked([make_proxy_model(D, K), make_proxy_model(D, K, hidden=4)], X, y, subsets[:2], [1, 2], **SETTINGS)
    with pytest.raises(InputDataError, match="nn.Sequential"):
        train_stacked([torch.nn.Sequential(torch.nn.Linear(D, K), torch.nn.Tanh(), torch.nn.Linear(K, K))], X, y, subsets[:1], [1], **SETTINGS)


@pytest.mark.parametrize("hidden,cv_seeds", [(0, 1), (8, 1), (0, 3)])
def test_proxy_fold_and_seed_models_equal_models_trained_alone(data, hidden, cv_seeds):
    """Each of the proxy's S + cv_seeds x n_folds runs, trained together, equals the same run trained
    alone, and the out-of-fold probabilities average the cv_seeds sets of fold models."""
    from datapruner.curation.proxy import seed_for

    X, y, _ = data
    proxy = ProxyClassifier(hidden=hidden, n_seeds=2, epochs=3, n_folds=3, cv_seeds=cv_seeds, batch_size=32, random_state=5,
                            precision="fp32").fit(X, y)
    for s in range(2):
        ref = reference_train(X, y, np.arange(len(y)), hidden=hidden, init_seed=seed_for(5, s, 0), order_seed=seed_for(5, s, 1), **SETTINGS)
        np.testing.assert_allclose(flat(proxy.models_[s]), flat(ref), atol=2e-5)
    oof = np.zeros((len(y), K))
    for s in range(cv_seeds):
        for f in range(3):
            test = proxy.folds_ == f
            ref = reference_train(X, y, np.flatnonzero(~test), hidden=hidden, init_seed=seed_for(5, s, 2, f), order_seed=seed_for(5, s, 3, f), **SETTINGS)
            with torch.no_grad():
                oof[test] += torch.softmax(ref(torch.from_numpy(X[test])), -1).double().numpy()
    np.testing.assert_allclose(proxy.pred_probs_, oof / cv_seeds, atol=1e-5)


def test_proxy_is_deterministic_and_depends_on_random_state(data):
    X, y, _ = data
    fit = lambda rs: ProxyClassifier(hidden=8, n_seeds=2, epochs=2, n_folds=3, random_state=rs).fit(X, y)  # noqa: E731
    a, b, c = fit(3), fit(3), fit(4)
    np.testing.assert_array_equal(a.seed_pred_probs_, b.seed_pred_probs_)
    np.testing.assert_array_equal(a.pred_probs_, b.pred_probs_)
    assert np.abs(a.seed_pred_probs_ - c.seed_pred_probs_).max() > 1e-3
    assert np.abs(a.pred_probs_ - c.pred_probs_).max() > 1e-3


@pytest.mark.parametrize("hidden", [0, 8])
def test_bf16_products_train_close_to_fp32(data, hidden):
    """Mixed precision moves the weights (it is not fp32 under another name) but only by rounding."""
    X, y, subsets = data
    trained = {}
    for precision in ("fp32", "bf16"):
        models = [make_proxy_model(D, K, hidden=hidden, random_state=s) for s in (1, 2)]
        train_stacked(models, X, y, subsets[:2], [1, 2], precision=precision, **SETTINGS)
        trained[precision] = [flat(m) for m in models]
    for a, b in zip(trained["fp32"], trained["bf16"]):
        assert 0 < np.abs(a - b).max() < 0.05


def test_proxy_precision_auto_bf16_and_bad_value(data):
    X, y, _ = data
    fit = lambda precision: ProxyClassifier(n_seeds=2, epochs=3, n_folds=3, precision=precision).fit(X, y)  # noqa: E731
    fp32, bf16, auto = fit("fp32"), fit("bf16"), fit("auto")
    assert ProxyClassifier().resolved_precision() == ("bf16" if native_bf16() else "fp32")
    np.testing.assert_array_equal(auto.pred_probs_, (bf16 if native_bf16() else fp32).pred_probs_)
    gap = np.abs(fp32.pred_probs_ - bf16.pred_probs_).max()
    assert 0 < gap < 0.02
    with pytest.raises(ConfigError, match="proxy.precision"):
        ProxyClassifier(precision="fp16").fit(X, y)
    with pytest.raises(InputDataError, match="precision"):
        train_stacked([make_proxy_model(D, K)], X, y, [np.arange(10)], [1], precision="fp16", **SETTINGS)
