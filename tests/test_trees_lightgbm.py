"""LightGBM importer: oracle tests against Booster.predict (raw margins exact, links rtol 1e-12)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import forgeline.models as fm
from forgeline.errors import BundleError, SchemaError, UnsupportedModelError
from forgeline.models.base import model_from_parts

lgb = pytest.importorskip("lightgbm")

OBJECTIVES = ["binary", "multiclass", "multiclassova", "regression", "poisson", "gamma",
              "tweedie", "cross_entropy", "huber", "lambdarank"]


def _data(rng, n, f, nan_frac, zero_frac, n_cat):
    X = rng.standard_normal((n, f))
    X[rng.random(X.shape) < zero_frac] = 0.0
    X[rng.random(X.shape) < nan_frac] = np.nan
    for j in range(n_cat):
        X[:, j] = rng.integers(0, 12, n)
        X[rng.random(n) < nan_frac, j] = np.nan
    return X


def _target(rng, X, objective, k):
    s = np.nan_to_num(X[:, 0]) + 0.5 * np.nan_to_num(X[:, -1]) + rng.standard_normal(len(X)) * 0.3
    if objective == "binary":
        return (s > 0).astype(int)
    if objective in ("multiclass", "multiclassova"):
        return np.digitize(s, np.quantile(s, np.linspace(0, 1, k + 1)[1:-1]))
    if objective in ("poisson", "gamma", "tweedie"):
        return np.exp(s / 2) + (0.01 if objective == "gamma" else 0.0)
    if objective == "cross_entropy":
        return 1 / (1 + np.exp(-s))
    if objective == "lambdarank":
        return np.clip(np.digitize(s, [-1, 0, 1]), 0, 3)
    return s


def _train(rng, objective, n=400, f=5, n_cat=0, nan_frac=0.05, zero_frac=0.05, rounds=8,
           extra=None):
    X = _data(rng, n, f, nan_frac, zero_frac, n_cat)
    k = 3
    y = _target(rng, X, objective, k)
    params = dict(objective=objective, verbose=-1, num_leaves=7, min_data_in_leaf=5,
                  min_data_per_group=5, cat_smooth=1, num_threads=1, deterministic=True)
    if objective in ("multiclass", "multiclassova"):
        params["num_class"] = k
    params.update(extra or {})
    ds = lgb.Dataset(X, y, categorical_feature=list(range(n_cat)) if n_cat else "auto",
                     group=[len(X) // 4] * 3 + [len(X) - 3 * (len(X) // 4)] if objective == "lambdarank" else None)
    return lgb.train(params, ds, rounds), X


def _check(booster, X, **kw):
    m = fm.import_model(booster, **kw)
    pkw = {}
    if "num_iteration" in kw:
        pkw["num_iteration"] = kw["num_iteration"]
    if "start_iteration" in kw:
        pkw["start_iteration"] = kw["start_iteration"]
    raw_ref = booster.predict(X, raw_score=True, **pkw)
    np.testing.assert_array_equal(m.predict_raw(X), raw_ref)
    ref = booster.predict(X, **pkw)
    if m.task == "binary":
        np.testing.assert_allclose(m.predict_proba(X)[:, 1], ref, rtol=1e-12, atol=0)
    elif m.task == "multiclass":
        np.testing.assert_allclose(m.predict_proba(X), ref, rtol=1e-12, atol=0)
    else:
        np.testing.assert_allclose(m.predict(X), ref, rtol=1e-12, atol=0)
    return m


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), objective=st.sampled_from(OBJECTIVES),
       n_cat=st.integers(0, 2), nan_frac=st.sampled_from([0.0, 0.1, 0.4]),
       zero_as_missing=st.booleans(), use_missing=st.booleans())
def test_random_models_match(seed, objective, n_cat, nan_frac, zero_as_missing, use_missing):
    rng = np.random.default_rng(seed)
    booster, X = _train(rng, objective, n_cat=n_cat, nan_frac=nan_frac,
                        extra=dict(zero_as_missing=zero_as_missing, use_missing=use_missing))
    Xt = _data(rng, 300, X.shape[1], 0.1, 0.1, n_cat)
    # Edge values: inf, the zero window, negative / fractional / huge categories.
    Xt[0, :] = np.inf
    Xt[1, :] = -np.inf
    Xt[2, :] = 1e-36
    Xt[3, :] = -1e-300
    Xt[4, :] = -0.5
    Xt[5, :] = 3.7
    Xt[6, :] = 1e12
    Xt[7, :] = -1.0
    _check(booster, Xt)
    _check(booster, Xt.astype(np.float32))


def test_iteration_ranges():
    rng = np.random.default_rng(1)
    booster, X = _train(rng, "multiclass", rounds=10)
    _check(booster, X, num_iteration=4)
    _check(booster, X, start_iteration=3, num_iteration=5)
    _check(booster, X, start_iteration=6)


def test_model_string_file_and_sklearn_wrapper(tmp_path):
    rng = np.random.default_rng(2)
    booster, X = _train(rng, "binary")
    ref = booster.predict(X, raw_score=True)
    np.testing.assert_array_equal(fm.import_model(booster.model_to_string()).predict_raw(X), ref)
    path = tmp_path / "m.txt"
    booster.save_model(str(path))
    np.testing.assert_array_equal(fm.import_model(str(path)).predict_raw(X), ref)
    np.testing.assert_array_equal(fm.import_model(path).predict_raw(X), ref)
    y = (np.nan_to_num(X[:, 0]) > 0).astype(int)
    clf = lgb.LGBMClassifier(n_estimators=5, num_leaves=7, verbose=-1).fit(X, np.where(y, "yes", "no"))
    m = fm.import_model(clf)
    np.testing.assert_allclose(m.predict_proba(X), clf.predict_proba(X), rtol=1e-12)
    assert (m.predict(X) == clf.predict(X)).all()
    reg = lgb.LGBMRegressor(n_estimators=5, num_leaves=7, verbose=-1).fit(X, y * 1.5)
    np.testing.assert_allclose(fm.import_model(reg).predict(X), reg.predict(X), rtol=1e-12)


def test_random_forest_mode_and_sigmoid_param():
    rng = np.random.default_rng(3)
    booster, X = _train(rng, "binary", extra=dict(boosting="rf", bagging_freq=1, bagging_fraction=0.6,
                                                  sigmoid=0.7))
    _check(booster, X)


def test_linear_tree_unsupported():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((200, 3))
    b = lgb.train(dict(objective="regression", linear_tree=True, verbose=-1), lgb.Dataset(X, X[:, 0]), 3)
    with pytest.raises(UnsupportedModelError, match="linear_tree"):
        fm.import_model(b)


def test_unsupported_objective():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((200, 3))
    b = lgb.train(dict(objective="cross_entropy_lambda", verbose=-1), lgb.Dataset(X, (X[:, 0] > 0) * 1.0), 3)
    with pytest.raises(UnsupportedModelError, match="cross_entropy_lambda|xentlambda"):
        fm.import_model(b)


def test_rows_edge_cases_and_threads():
    rng = np.random.default_rng(6)
    booster, X = _train(rng, "multiclass", n=2000, rounds=20)
    m = fm.import_model(booster)
    assert m.predict_raw(X[:0]).shape == (0, 3)
    np.testing.assert_array_equal(m.predict_raw(X[:1]), booster.predict(X[:1], raw_score=True))
    big = np.repeat(X, 5, axis=0)
    a = m.predict_raw(big, n_threads=1)
    b = m.predict_raw(big, n_threads=2)
    assert a.tobytes() == b.tobytes()
    np.testing.assert_array_equal(m.predict_one(X[7], output="raw"), booster.predict(X[7:8], raw_score=True)[0])
    np.testing.assert_allclose(m.predict_one(X[7]), booster.predict(X[7:8])[0], rtol=1e-12)


def test_million_rows():
    rng = np.random.default_rng(7)
    booster, X = _train(rng, "binary", rounds=3)
    big = np.tile(X.astype(np.float32), (2500, 1))
    assert big.shape[0] == 1_000_000
    np.testing.assert_array_equal(fm.import_model(booster).predict_raw(big),
                                  booster.predict(big, raw_score=True))


def test_bad_input():
    rng = np.random.default_rng(8)
    booster, X = _train(rng, "binary")
    m = fm.import_model(booster)
    with pytest.raises(SchemaError):
        m.predict_raw(X[:, :3])
    with pytest.raises(SchemaError):
        m.predict_raw(np.array([["a"] * X.shape[1]], dtype=object))
    with pytest.raises(SchemaError):
        m.predict_one(X[0, :2])


def test_parts_roundtrip_and_hostile_parts():
    rng = np.random.default_rng(9)
    booster, X = _train(rng, "multiclass", n_cat=1)
    m = fm.import_model(booster)
    meta, arrays = m.to_parts()
    import json
    meta = json.loads(json.dumps(meta))
    m2 = model_from_parts(meta, arrays)
    np.testing.assert_array_equal(m2.predict_raw(X), m.predict_raw(X))
    bad = dict(arrays, left=arrays["left"] + 1000)
    with pytest.raises(BundleError):
        model_from_parts(meta, bad)
    loop = dict(arrays, left=np.zeros_like(arrays["left"]))
    with pytest.raises(BundleError):
        model_from_parts(meta, loop)
    with pytest.raises(BundleError):
        model_from_parts(meta, dict(arrays, feature=arrays["feature"] + 100))
    with pytest.raises(BundleError):
        model_from_parts(meta, dict(arrays, cat_offset=arrays["cat_offset"] + 10**6))
    with pytest.raises(BundleError):
        model_from_parts(meta, {k: v for k, v in arrays.items() if k != "threshold"})
    with pytest.raises(BundleError):
        model_from_parts(dict(meta, settings=dict(meta["settings"], link="evil")), arrays)


def test_malformed_model_text():
    rng = np.random.default_rng(10)
    booster, X = _train(rng, "binary")
    text = booster.model_to_string()
    broken = text.replace("threshold=", "threshold=abc ", 1)
    with pytest.raises(UnsupportedModelError, match="malformed"):
        fm.import_model(broken)
    with pytest.raises(UnsupportedModelError, match="not supported"):
        fm.import_model(text.replace("objective=binary", "objective=custom", 1))


def test_frame_inputs_by_name():
    import pandas as pd
    import polars as pl
    rng = np.random.default_rng(11)
    df = pd.DataFrame(rng.standard_normal((300, 3)), columns=["a", "b", "c"])
    b = lgb.train(dict(objective="binary", verbose=-1), lgb.Dataset(df, (df.a > 0).astype(int)), 5)
    m = fm.import_model(b)
    ref = b.predict(df, raw_score=True)
    np.testing.assert_array_equal(m.predict_raw(df[["c", "b", "a"]]), ref)  # by name, any order
    np.testing.assert_array_equal(m.predict_raw(pl.from_pandas(df)), ref)
    with pytest.raises(SchemaError, match="'c'"):
        m.predict_raw(df[["a", "b"]])
