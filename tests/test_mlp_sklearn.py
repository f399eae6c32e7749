"""scikit-learn MLPClassifier / MLPRegressor → MLPModel, against sklearn's predict_proba,
predict and forward pass, with hypothesis-generated weights."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier, MLPRegressor

import forgeline as fl
from forgeline.models import import_model, model_from_parts
from forgeline.models.mlp import MLPModel


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


def _data(seed=0, n=200, p=6):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    y = np.tanh(X @ rng.normal(size=p)) + 0.1 * rng.normal(size=n)
    return X, y


def _check(ours, ref, scale, rtol):
    np.testing.assert_allclose(ours, ref, rtol=rtol, atol=rtol * np.max(scale))


X0, Y0 = _data()


@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", "identity"])
@pytest.mark.parametrize("target", ["binary", "multiclass", "strings"])
@pytest.mark.parametrize("in_dtype", [np.float64, np.float32])
def test_classifier_matches_sklearn(activation, target, in_dtype):
    y = {"binary": (Y0 > 0).astype(int), "multiclass": np.digitize(Y0, [-0.5, 0.5]),
         "strings": np.array(["a", "b", "c"])[np.digitize(Y0, [-0.5, 0.5])]}[target]
    est = _fit(MLPClassifier((12, 7), activation=activation, max_iter=60, random_state=0), X0, y)
    model = import_model(est)
    assert isinstance(model, MLPModel)
    Xt = _data(1)[0].astype(in_dtype)
    scale = model.error_scale(Xt)
    _check(model.predict_proba(Xt, n_threads=2), est.predict_proba(Xt), 2 * scale, 1e-12)
    np.testing.assert_array_equal(model.predict(Xt), est.predict(Xt))
    np.testing.assert_array_equal(model.predict(Xt[4:5]), est.predict(Xt[4:5]))


@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
@pytest.mark.parametrize("n_targets", [1, 2])
def test_regressor_matches_sklearn(loss, n_targets):
    y = np.exp(Y0) if loss == "poisson" else Y0
    y = y if n_targets == 1 else np.c_[y, 2 * y]
    est = _fit(MLPRegressor(hidden_layer_sizes=(9,), loss=loss, max_iter=80, random_state=0), X0, y)
    model = import_model(est)
    ref = est.predict(X0)
    ours = model.predict(X0)
    assert ours.shape == ref.shape
    scale = model.error_scale(X0) * (np.abs(ref) if loss == "poisson" else 1)
    _check(ours, ref, scale, 1e-12)


def test_float32_trained_mlp():
    X = X0.astype(np.float32)
    est = _fit(MLPClassifier((8,), max_iter=40, random_state=0), X, (Y0 > 0).astype(int))
    assert est.coefs_[0].dtype == np.float32
    model = import_model(est)
    assert model.dtype == np.float32
    p = model.predict_proba(X)
    ref = est.predict_proba(X)
    assert p.dtype == ref.dtype == np.float32
    _check(p, ref, 2 * model.error_scale(X), 1e-6)
    # float64 input promotes to float64 compute, as numpy does inside sklearn
    ref64 = est.predict_proba(X0)
    assert model.predict_proba(X0).dtype == ref64.dtype
    _check(model.predict_proba(X0), ref64, 2 * model.error_scale(X0), 1e-12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), widths=st.lists(st.integers(1, 40), min_size=1, max_size=3),
       activation=st.sampled_from(["relu", "tanh", "logistic", "identity"]),
       n_classes=st.integers(2, 4), n=st.integers(1, 30), p=st.integers(1, 20))
def test_hypothesis_random_weights(seed, widths, activation, n_classes, n, p):
    rng = np.random.default_rng(seed)
    Xf = rng.normal(size=(4 * n_classes, p))
    est = _fit(MLPClassifier(tuple(widths), activation=activation, max_iter=1, random_state=0),
               Xf, np.arange(4 * n_classes) % n_classes)
    est.coefs_ = [rng.normal(size=c.shape) * rng.uniform(0.1, 3) for c in est.coefs_]
    est.intercepts_ = [rng.normal(size=b.shape) for b in est.intercepts_]
    X = rng.normal(size=(n, p)) * 3
    model = import_model(est)
    scale = model.error_scale(X)
    proba = est.predict_proba(X)
    _check(model.predict_proba(X), proba, 2 * scale, 1e-12)
    top2 = np.sort(proba, axis=1)[:, -2:]
    decided = (top2[:, 1] - top2[:, 0]) > 1e-9 * (1 + scale.max())
    np.testing.assert_array_equal(model.predict(X)[decided], est.predict(X)[decided])


def test_nan_rejected_like_sklearn():
    est = _fit(MLPRegressor(hidden_layer_sizes=(5,), max_iter=20, random_state=0), X0, Y0)
    model = import_model(est)
    X = X0.copy()
    X[3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.predict(X)
    with pytest.raises(fl.DataError, match="row 3, column 'x0'"):
        model.predict(X)
    X[3, 0] = np.inf  # relu could hide an infinity in the output; the input scan does not
    with pytest.raises(fl.DataError, match="infinity"):
        model.predict(X)


def test_round_trip_and_unsupported():
    est = _fit(MLPClassifier((6,), max_iter=30, random_state=0), X0, np.digitize(Y0, [0]))
    model = import_model(est)
    back = model_from_parts(*model.to_parts())
    assert np.array_equal(back.predict_proba(X0), model.predict_proba(X0))
    multilabel = _fit(MLPClassifier((4,), max_iter=5, random_state=0), X0, np.c_[Y0 > 0, Y0 > 1])
    with pytest.raises(fl.UnsupportedModelError, match="multilabel"):
        import_model(multilabel)
    with pytest.raises(fl.NotFittedError):
        import_model(MLPRegressor())
