"""scikit-learn tree importers: oracle tests against the estimators' own predict code."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn import ensemble as E
from sklearn import tree as T

import forgeline.models as fm
from forgeline.errors import NotFittedError, SchemaError, UnsupportedModelError
from forgeline.models.base import model_from_parts

KINDS = ["dt_clf", "dt_reg", "rf_clf", "rf_reg", "et_clf", "et_reg", "gb_clf", "gb_reg",
         "hgb_clf", "hgb_reg"]


def _make(kind, seed, cat):
    r = seed
    return {
        "dt_clf": lambda: T.DecisionTreeClassifier(max_depth=6, random_state=r),
        "dt_reg": lambda: T.DecisionTreeRegressor(max_depth=6, random_state=r),
        "rf_clf": lambda: E.RandomForestClassifier(8, max_depth=6, random_state=r),
        "rf_reg": lambda: E.RandomForestRegressor(8, max_depth=6, random_state=r),
        "et_clf": lambda: E.ExtraTreesClassifier(8, max_depth=6, random_state=r),
        "et_reg": lambda: E.ExtraTreesRegressor(8, max_depth=6, random_state=r),
        "gb_clf": lambda: E.GradientBoostingClassifier(n_estimators=8, max_depth=3, random_state=r),
        "gb_reg": lambda: E.GradientBoostingRegressor(n_estimators=8, max_depth=3, random_state=r),
        "hgb_clf": lambda: E.HistGradientBoostingClassifier(
            max_iter=8, categorical_features=[0] if cat else None, random_state=r),
        "hgb_reg": lambda: E.HistGradientBoostingRegressor(
            max_iter=8, categorical_features=[0] if cat else None, random_state=r),
    }[kind]()


def _raw_ref(est, X):
    if isinstance(est, (E.HistGradientBoostingClassifier, E.HistGradientBoostingRegressor,
                        E.GradientBoostingClassifier, E.GradientBoostingRegressor)):
        if isinstance(est, (E.GradientBoostingClassifier, E.GradientBoostingRegressor)):
            X = X.astype(np.float32)  # what GradientBoosting's public predict does
        raw = est._raw_predict(X)
        return raw[:, 0] if raw.shape[1] == 1 else raw
    return est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)


def _data(rng, n, nan, cat):
    X = rng.standard_normal((n, 4)) * rng.choice([1e-3, 1.0, 1e6])
    if nan:
        X[rng.random(X.shape) < 0.15] = np.nan
    if cat:
        X[:, 0] = rng.integers(0, 7, n)
        X[rng.random(n) < 0.1, 0] = np.nan
    return X


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), kind=st.sampled_from(KINDS), n_classes=st.sampled_from([2, 3]),
       nan=st.booleans(), cat=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]))
def test_random_models_match(seed, kind, n_classes, nan, cat, dtype):
    rng = np.random.default_rng(seed)
    nan = nan and not kind.startswith("gb")  # GradientBoosting refuses NaN
    cat = cat and kind.startswith("hgb")
    X = _data(rng, 300, nan, cat).astype(dtype)
    s = np.nan_to_num(X[:, 1]) + np.nan_to_num(X[:, 0] % 3)
    y = np.digitize(s, np.quantile(s, np.linspace(0, 1, n_classes + 1)[1:-1])) if "clf" in kind else s
    est = _make(kind, seed % 1000, cat).fit(X, y)
    m = fm.import_model(est)
    Xt = _data(rng, 200, nan, cat).astype(dtype)
    if cat:
        Xt[:5, 0] = [9.0, 2.5, -1.0, 1e9, 3.0]  # unknown, fractional, negative, huge, known
    Xt_other = Xt.astype(np.float64 if dtype == np.float32 else np.float32)
    for Z in (Xt, Xt_other):
        np.testing.assert_allclose(m.predict_raw(Z), _raw_ref(est, Z), rtol=1e-12, atol=1e-300)
        if "clf" in kind:
            np.testing.assert_allclose(m.predict_proba(Z), est.predict_proba(Z), rtol=1e-12, atol=1e-15)
            assert (m.predict(Z) == est.predict(Z)).all()
        else:
            np.testing.assert_allclose(m.predict(Z), est.predict(Z), rtol=1e-12, atol=1e-300)


def test_forest_raw_is_bit_exact_and_threads():
    rng = np.random.default_rng(0)
    X = _data(rng, 3000, True, False)
    y = (np.nan_to_num(X[:, 1]) > 0).astype(int)
    est = E.RandomForestClassifier(20, max_depth=8, random_state=0).fit(X, y)
    m = fm.import_model(est)
    np.testing.assert_array_equal(m.predict_proba(X), est.predict_proba(X))
    assert m.predict_raw(X, n_threads=1).tobytes() == m.predict_raw(X, n_threads=2).tobytes()
    assert m.predict_raw(X[:0]).shape == (0, 2)
    np.testing.assert_array_equal(m.predict_one(X[0]), est.predict_proba(X[:1])[0])


def test_hgb_poisson_and_regressor_losses():
    rng = np.random.default_rng(1)
    X = _data(rng, 400, True, False)
    y = np.exp(np.nan_to_num(X[:, 1]) / 3)
    for loss in ("poisson", "gamma", "absolute_error", "squared_error"):
        est = E.HistGradientBoostingRegressor(max_iter=5, loss=loss).fit(X, y)
        m = fm.import_model(est)
        np.testing.assert_array_equal(m.predict_raw(X), est._raw_predict(X)[:, 0])
        np.testing.assert_allclose(m.predict(X), est.predict(X), rtol=1e-12)


def test_unsupported_and_unfitted():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((100, 3))
    with pytest.raises(UnsupportedModelError, match="multi-output"):
        fm.import_model(T.DecisionTreeRegressor().fit(X, X[:, :2]))
    from sklearn.linear_model import LinearRegression
    gb = E.GradientBoostingRegressor(n_estimators=2, init=LinearRegression()).fit(X, X[:, 0])
    with pytest.raises(UnsupportedModelError, match="init"):
        fm.import_model(gb)
    gb = E.GradientBoostingClassifier(n_estimators=2, loss="exponential").fit(X, X[:, 0] > 0)
    with pytest.raises(UnsupportedModelError, match="exponential"):
        fm.import_model(gb)
    with pytest.raises(NotFittedError):
        fm.import_model(E.RandomForestClassifier())
    import pandas as pd
    df = pd.DataFrame({"c": pd.Categorical(rng.choice(["a", "b"], 100)), "x": X[:, 0]})
    h = E.HistGradientBoostingRegressor(max_iter=2, categorical_features="from_dtype").fit(df, X[:, 1])
    with pytest.raises(UnsupportedModelError, match="non-numeric categories"):
        fm.import_model(h)


def test_bad_input_and_parts():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((100, 3))
    est = E.RandomForestRegressor(3, max_depth=3).fit(X, X[:, 0])
    m = fm.import_model(est)
    with pytest.raises(SchemaError):
        m.predict(X[:, :2])
    with pytest.raises(SchemaError):
        m.predict(np.array([["1", "2", "x"]]))
    meta, arrays = m.to_parts()
    m2 = model_from_parts(meta, arrays)
    np.testing.assert_array_equal(m2.predict(X), est.predict(X))
