"""scikit-learn linear estimators → LinearModel, against scikit-learn's own predict,
predict_proba and decision_function (oracle tests, float32 and float64 inputs)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn import linear_model as lm
from sklearn import svm
from sklearn.exceptions import ConvergenceWarning
from sklearn.multiclass import OneVsRestClassifier

import forgeline as fl
from forgeline.models import import_model, model_from_parts
from forgeline.models.linear import LinearModel

RTOL = {np.float32: 1e-6, np.float64: 1e-12}


def _data(seed=0, n=400, p=8):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) * rng.uniform(0.1, 10, size=p)
    y = X @ rng.normal(size=p) / 10 + rng.normal(size=n)
    return X, y


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


def _close(ours, ref, scale, dtype):
    r = RTOL[dtype]
    np.testing.assert_allclose(ours, ref, rtol=r, atol=r * np.max(scale) + 1e-300)


X0, Y0 = _data()
YPOS = np.exp(Y0 / 3)
YBIN = (Y0 > 0.2).astype(int)
Y3 = np.digitize(Y0, [-0.8, 0.8])
YSTR = np.array(["lo", "mid", "hi"])[Y3]

REGRESSORS = [
    (lm.LinearRegression(), Y0), (lm.Ridge(alpha=2.0), Y0), (lm.RidgeCV(), Y0),
    (lm.Lasso(alpha=0.05), Y0), (lm.ElasticNet(alpha=0.05, l1_ratio=0.3), Y0),
    (lm.LassoCV(cv=3), Y0), (lm.SGDRegressor(random_state=0), Y0),
    (lm.HuberRegressor(), Y0), (lm.BayesianRidge(), Y0),
    (lm.PoissonRegressor(), YPOS), (lm.GammaRegressor(), YPOS),
    (lm.TweedieRegressor(power=1.5), YPOS), (lm.TweedieRegressor(power=0), Y0),
    (lm.TweedieRegressor(power=1.2, link="identity"), YPOS),
    (lm.LinearRegression(fit_intercept=False), Y0),
    (lm.LinearRegression(), np.c_[Y0, -Y0, 2 * Y0]),  # multi-target
    (lm.Ridge(), Y0[:, None]),  # 2-D y with one column keeps a 2-D prediction
]
CLASSIFIERS = [
    (lm.LogisticRegression(), YBIN), (lm.LogisticRegression(), Y3),
    (lm.LogisticRegression(C=0.1), YSTR), (lm.LogisticRegression(solver="liblinear"), YBIN),
    (lm.LogisticRegressionCV(cv=3, l1_ratios=(0.0,), scoring="neg_log_loss",
                             use_legacy_attributes=False), Y3),
    (lm.SGDClassifier(loss="log_loss", random_state=0), YBIN),
    (lm.SGDClassifier(loss="log_loss", random_state=0), Y3),
    (lm.SGDClassifier(loss="modified_huber", random_state=0), YBIN),
    (lm.SGDClassifier(loss="modified_huber", random_state=0), Y3),
    (lm.SGDClassifier(loss="hinge", random_state=0), Y3),
    (svm.LinearSVC(), YBIN), (svm.LinearSVC(), YSTR),
    (lm.RidgeClassifier(), Y3), (lm.Perceptron(random_state=0), YBIN),
    # One-vs-rest logistic regression (sklearn 1.9 dropped multi_class="ovr").
    (OneVsRestClassifier(lm.LogisticRegression()), YSTR),
    (OneVsRestClassifier(lm.LogisticRegression()), YBIN),
    (OneVsRestClassifier(lm.SGDClassifier(loss="log_loss", random_state=0)), Y3),
    (OneVsRestClassifier(svm.LinearSVC()), Y3),
]


def _id(case):
    est, y = case
    inner = f"[{type(est.estimator).__name__}]" if isinstance(est, OneVsRestClassifier) else ""
    return f"{type(est).__name__}{inner}-{np.ndim(y)}-{len(np.unique(y)) if np.ndim(y) == 1 else 'mt'}"


@pytest.mark.parametrize("in_dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", REGRESSORS, ids=[_id(c) for c in REGRESSORS])
def test_regressors_match_sklearn(case, in_dtype):
    est, y = case
    _fit(est, X0, y)
    model = import_model(est)
    assert isinstance(model, LinearModel) and model.task == "regression"
    Xt = _data(1)[0].astype(in_dtype)
    ref = est.predict(Xt)
    ours = model.predict(Xt, n_threads=2)
    assert ours.shape == ref.shape
    scale = model.error_scale(Xt)
    if model.link == "exp":
        scale = scale * np.abs(ref)
    _close(ours, ref, scale, np.float64)
    raw = model.predict_raw(Xt)
    assert raw.shape == ref.shape
    np.testing.assert_array_equal(model.predict(Xt[3:4]), ours[3:4])


@pytest.mark.parametrize("in_dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CLASSIFIERS, ids=[_id(c) for c in CLASSIFIERS])
def test_classifiers_match_sklearn(case, in_dtype):
    est, y = case
    _fit(est, X0, y)
    model = import_model(est)
    Xt = _data(2)[0].astype(in_dtype)
    dec = est.decision_function(Xt)
    raw = model.predict_raw(Xt)
    scale = model.error_scale(Xt)
    _close(raw, dec, scale, np.float64)
    np.testing.assert_array_equal(model.classes_, est.classes_)
    tol = 1e-12 * scale.max()
    decided = np.abs(dec) > tol if dec.ndim == 1 else (np.sort(dec, 1)[:, -1] - np.sort(dec, 1)[:, -2]) > tol
    np.testing.assert_array_equal(model.predict(Xt)[decided], est.predict(Xt)[decided])
    if hasattr(est, "predict_proba") and model.proba != "none":
        _close(model.predict_proba(Xt), est.predict_proba(Xt), 2 * scale.max(), np.float64)
    else:
        with pytest.raises(NotImplementedError):
            model.predict_proba(Xt)


@pytest.mark.parametrize("cls", [lm.Ridge, lm.LinearRegression, lm.LogisticRegression])
def test_float32_fitted_models_compute_like_sklearn(cls):
    X = X0.astype(np.float32)
    y = YBIN if cls is lm.LogisticRegression else Y0.astype(np.float32)
    est = _fit(cls(), X, y)
    model = import_model(est)
    out = model.predict_raw(X) if cls is lm.LogisticRegression else model.predict(X)
    ref = est.decision_function(X) if cls is lm.LogisticRegression else est.predict(X)
    assert out.dtype == ref.dtype
    dtype = np.float32 if ref.dtype == np.float32 else np.float64
    _close(out, ref, model.error_scale(X), dtype)
    # float64 input promotes to float64, as numpy does inside sklearn
    ref64 = est.predict(X0) if cls is not lm.LogisticRegression else est.decision_function(X0)
    out64 = model.predict(X0) if cls is not lm.LogisticRegression else model.predict_raw(X0)
    assert out64.dtype == ref64.dtype
    _close(out64, ref64, model.error_scale(X0), np.float64)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n_classes=st.integers(2, 5), p=st.integers(1, 60),
       n=st.integers(1, 50), coef_scale=st.floats(1e-3, 1e3))
def test_hypothesis_logistic_weights(seed, n_classes, p, n, coef_scale):
    rng = np.random.default_rng(seed)
    est = lm.LogisticRegression()
    _fit(est, rng.normal(size=(3 * n_classes, p)), np.arange(3 * n_classes) % n_classes)
    k = 1 if n_classes == 2 else n_classes
    est.coef_ = rng.normal(size=(k, p)) * coef_scale
    est.intercept_ = rng.normal(size=k)
    X = rng.normal(size=(n, p)) * rng.uniform(0.01, 100, size=p)
    X[rng.random(X.shape) < 0.1] = 0.0
    model = import_model(est)
    scale = model.error_scale(X)
    _close(model.predict_raw(X), est.decision_function(X), scale, np.float64)
    _close(model.predict_proba(X), est.predict_proba(X), 2 * scale.max(), np.float64)


def test_nan_and_inf_are_rejected_like_sklearn():
    est = _fit(lm.LogisticRegression(), X0, YBIN)
    model = import_model(est)
    X = X0.copy()
    X[17, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.predict(X)
    for fn in (model.predict, model.predict_proba, model.predict_raw):
        with pytest.raises(fl.DataError, match=r"NaN \(row 17, column 'x3'\)"):
            fn(X)
    with pytest.raises(fl.DataError, match="NaN"):
        model.predict(X[17:18])
    X[17, 3] = -np.inf
    with pytest.raises(fl.DataError, match="infinity"):
        model.predict(X)


def test_dataframe_input_and_feature_names():
    df = pd.DataFrame(X0, columns=[f"f{i}" for i in range(X0.shape[1])])
    est = _fit(lm.Ridge(), df, Y0)
    model = import_model(est)
    assert model.feature_names == list(df.columns)
    shuffled = df[df.columns[::-1]]
    np.testing.assert_allclose(model.predict(shuffled), est.predict(df), rtol=1e-12,
                               atol=1e-12 * model.error_scale(df).max())
    with pytest.raises(fl.SchemaError):
        model.predict(df.drop(columns="f2"))
    with pytest.raises(fl.SchemaError):
        model.predict(X0[:, :3])


def test_round_trip_through_parts():
    for est, y in [(lm.LogisticRegression(), YSTR), (lm.PoissonRegressor(), YPOS),
                   (lm.SGDClassifier(loss="modified_huber", random_state=0), Y3)]:
        model = import_model(_fit(est, X0, y))
        meta, arrays = model.to_parts()
        import json

        meta = json.loads(json.dumps(meta))
        back = model_from_parts(meta, {k: v.copy() for k, v in arrays.items()})
        assert type(back) is LinearModel
        assert np.array_equal(back.predict(X0), model.predict(X0))
        assert np.array_equal(back.predict_raw(X0), model.predict_raw(X0))
        assert back.classes_ is None or back.classes_.dtype == model.classes_.dtype


def test_unfitted_and_unsupported():
    with pytest.raises(fl.NotFittedError):
        import_model(lm.LogisticRegression())
    multilabel = _fit(lm.RidgeClassifier(), X0, np.c_[YBIN, 1 - YBIN])
    with pytest.raises(fl.UnsupportedModelError, match="multilabel"):
        import_model(multilabel)
    sparse = _fit(lm.SGDClassifier(random_state=0), X0, YBIN).sparsify()
    with pytest.raises(fl.UnsupportedModelError, match="sparse"):
        import_model(sparse)


def test_one_vs_rest_ties_and_unsupported():
    from sklearn.tree import DecisionTreeClassifier

    est = _fit(OneVsRestClassifier(lm.LogisticRegression()), X0, Y3)
    # Make classes 0 and 2 tie everywhere: OneVsRestClassifier keeps the first maximum.
    est.estimators_[0].coef_ = est.estimators_[2].coef_.copy()
    est.estimators_[0].intercept_ = est.estimators_[2].intercept_ + 50.0
    est.estimators_[2].intercept_ = est.estimators_[0].intercept_.copy()
    model = import_model(est)
    np.testing.assert_array_equal(model.predict(X0), est.predict(X0))
    assert (est.predict(X0) == 0).all()
    back = model_from_parts(*model.to_parts())
    np.testing.assert_array_equal(back.predict(X0), est.predict(X0))
    with pytest.raises(fl.UnsupportedModelError, match="estimator 0 is DecisionTreeClassifier"):
        import_model(OneVsRestClassifier(DecisionTreeClassifier()).fit(X0, Y3))
    with pytest.raises(fl.UnsupportedModelError, match="modified_huber"):
        import_model(_fit(OneVsRestClassifier(lm.SGDClassifier(loss="modified_huber", random_state=0)), X0, Y3))
    with pytest.raises(fl.UnsupportedModelError, match="multilabel"):
        import_model(OneVsRestClassifier(lm.LogisticRegression()).fit(X0, np.c_[YBIN, 1 - YBIN, YBIN]))
    with pytest.raises(fl.NotFittedError):
        import_model(OneVsRestClassifier(lm.LogisticRegression()))
