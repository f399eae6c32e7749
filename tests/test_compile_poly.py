"""PolynomialFeatures (degree <= 2) compiled as product groups: bit-identical features and
predictions against scikit-learn, bundles, explain_plan, thread independence, refusals."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, PolynomialFeatures, StandardScaler

import forgeline as fl
from forgeline._fold import fold
from forgeline.plan import FeaturePlan


def _fit(pipe, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pipe.fit(X, y)


def _sk_features(pipe, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(pipe[:-1].transform(X), dtype=np.float64)


def _data(n=300, seed=0, nan_frac=0.1):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"a": rng.normal(3, 2, n), "b": rng.lognormal(size=n),
                       "c": rng.uniform(-5, 5, n), "s": rng.choice(["x", "y", "z"], n)})
    df.loc[rng.random(n) < nan_frac, "a"] = np.nan
    df.loc[rng.random(n) < nan_frac, "c"] = np.nan
    y = (np.nan_to_num(df["b"].to_numpy()) + rng.normal(0, .5, n) > 1.5).astype(int)
    return df, y


_floats = st.floats(-1e6, 1e6, allow_nan=False, width=64) | st.just(np.nan)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.tuples(_floats, _floats, _floats), min_size=4, max_size=30),
       interaction_only=st.booleans(), include_bias=st.booleans(),
       strategy=st.sampled_from(["mean", "median", "constant"]))
def test_features_bit_identical_after_imputer(rows, interaction_only, include_bias, strategy):
    X = pd.DataFrame(rows, columns=["a", "b", "c"])
    X.iloc[0] = [1.0, 2.0, 3.0]  # every column has a value for the imputer
    y = np.arange(len(X)) % 2
    pipe = _fit(make_pipeline(
        SimpleImputer(strategy=strategy, fill_value=0.5), StandardScaler(),
        PolynomialFeatures(2, interaction_only=interaction_only, include_bias=include_bias),
        Ridge()), X, y)
    sc = fl.compile(pipe, X)
    want = _sk_features(pipe, X)
    got = sc.transform(X)
    np.testing.assert_array_equal(got, want)
    # the linear model's dot product sums in its own order: exact up to rounding of the sum
    scale = np.abs(want) @ np.abs(pipe[-1].coef_) + abs(pipe[-1].intercept_)
    assert np.all(np.abs(sc.predict(X) - pipe.predict(X)) <= 1e-13 * scale)
    assert sc.folded is None  # product groups run unfolded
    np.testing.assert_array_equal(sc.transform(X, n_threads=1), sc.transform(X, n_threads=3))


@pytest.mark.parametrize("interaction_only", [False, True])
@pytest.mark.parametrize("include_bias", [False, True])
def test_column_transformer_with_onehot_and_logistic(interaction_only, include_bias):
    df, y = _data()
    ct = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler(),
                              PolynomialFeatures(2, interaction_only=interaction_only,
                                                 include_bias=include_bias)), ["a", "b", "c"]),
        ("oh", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["s"]),
    ])
    pipe = _fit(make_pipeline(ct, LogisticRegression(max_iter=1000)), df, y)
    sc = fl.compile(pipe, df)
    np.testing.assert_array_equal(sc.transform(df), _sk_features(pipe, df))
    np.testing.assert_array_equal(sc.predict(df), pipe.predict(df))
    np.testing.assert_allclose(sc.predict_proba(df), pipe.predict_proba(df), rtol=0, atol=1e-12)
    assert len(sc.feature_names_out) == len(pipe[:-1].get_feature_names_out())
    a = sc.predict_raw(df, n_threads=1)
    np.testing.assert_array_equal(a, sc.predict_raw(df, n_threads=2))
    np.testing.assert_array_equal(a, sc.predict_raw(df, n_threads=4))


def test_poly_then_scaler_then_tree_model():
    df, y = _data(400, seed=3)
    num = df[["a", "b", "c"]]
    target = np.nan_to_num(num["a"].to_numpy()) * num["b"].to_numpy() + y
    pipe = _fit(make_pipeline(SimpleImputer(), PolynomialFeatures(2), StandardScaler(),
                              HistGradientBoostingRegressor(max_iter=20)), num, target)
    sc = fl.compile(pipe, num)
    np.testing.assert_array_equal(sc.transform(num), _sk_features(pipe, num))
    np.testing.assert_array_equal(sc.predict(num), pipe.predict(num))


def test_lightgbm_final_model():
    lgb = pytest.importorskip("lightgbm")  # installed in CI: this runs
    df, y = _data(400, seed=4)
    num = df[["a", "b", "c"]]
    pipe = _fit(make_pipeline(SimpleImputer(strategy="median"),
                              PolynomialFeatures(2, interaction_only=True),
                              lgb.LGBMClassifier(n_estimators=15, verbose=-1)), num, y)
    sc = fl.compile(pipe, num)
    np.testing.assert_array_equal(sc.transform(num), _sk_features(pipe, num))
    np.testing.assert_allclose(sc.predict_proba(num), pipe.predict_proba(num), rtol=0, atol=1e-12)


def test_nan_without_imputer_raises_like_sklearn():
    df, y = _data(nan_frac=0.0)
    num = df[["a", "b"]]
    pipe = _fit(make_pipeline(PolynomialFeatures(2), Ridge()), num, y)
    sc = fl.compile(pipe, num)
    np.testing.assert_array_equal(sc.transform(num), _sk_features(pipe, num))
    bad = num.copy()
    bad.loc[bad.index[2], "b"] = np.nan
    with pytest.raises(ValueError):
        pipe.predict(bad)
    with pytest.raises(fl.DataError, match="NaN"):
        sc.predict(bad)


def test_degree_three_refused():
    df, y = _data(nan_frac=0.0)
    num = df[["a", "b"]]
    pipe = _fit(make_pipeline(PolynomialFeatures(3), Ridge()), num, y)
    with pytest.raises(fl.UnsupportedModelError, match="degree 3"):
        fl.compile(pipe, num)


def test_after_onehot_refused():
    df, y = _data()
    pipe = _fit(make_pipeline(ColumnTransformer([("oh", OneHotEncoder(), ["s"])]),
                              PolynomialFeatures(2), Ridge()), df, y)
    with pytest.raises(fl.UnsupportedModelError, match="PolynomialFeatures"):
        fl.compile(pipe, df)


def test_bundle_round_trip_and_explain(tmp_path):
    df, y = _data()
    num = df[["a", "b", "c"]]
    pipe = _fit(make_pipeline(SimpleImputer(), PolynomialFeatures(2), StandardScaler(),
                              LogisticRegression(max_iter=1000)), num, y)
    sc = fl.compile(pipe, num)
    text = sc.explain_plan()
    assert "product(a, b)" in text and "product(c, c)" in text
    sc.save(tmp_path / "m.forge")
    back = fl.load(tmp_path / "m.forge")
    np.testing.assert_array_equal(back.transform(num), sc.transform(num))
    np.testing.assert_array_equal(back.predict_proba(num), sc.predict_proba(num))
    assert back.explain_plan() == text
    row = num.iloc[5].to_dict()
    np.testing.assert_array_equal(back.predict_proba(row)[0], sc.predict_proba(num)[5])


def _product_group(body):
    groups = body["features"]["groups"]
    return next(i for i, g in enumerate(groups) if "product" in g)


@pytest.mark.parametrize("damage", ["later", "self", "one_arg", "three_args", "not_list",
                                    "negative", "with_udf", "onehot_arg", "source"])
def test_bundle_rejects_damaged_product(damage):
    df, y = _data()
    ct = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(), PolynomialFeatures(2)), ["a", "b"]),
        ("oh", OneHotEncoder(), ["s"]),
    ])
    sc = fl.compile(_fit(make_pipeline(ct, Ridge()), df, y), df)
    body, arrays = sc.to_parts()
    groups = body["features"]["groups"]
    gi = _product_group(body)
    g = groups[gi]
    if damage == "later":
        g["product"] = [g["product"][0], len(groups) - 1 if gi < len(groups) - 1 else gi]
    elif damage == "self":
        g["product"] = [gi, gi]
    elif damage == "one_arg":
        g["product"] = g["product"][:1]
    elif damage == "three_args":
        g["product"] = g["product"] + [0]
    elif damage == "not_list":
        g["product"] = 3
    elif damage == "negative":
        g["product"] = [-1, 0]
    elif damage == "with_udf":
        g["udf"], g["args"] = "f", g["product"]
    elif damage == "onehot_arg":
        oh = next(i for i, h in enumerate(groups) if h["emit"] == "onehot")
        groups.append(dict(g, product=[oh, g["product"][1]], source=groups[oh]["source"]))
        body["features"]["outputs"].append([len(groups) - 1, 0])
    else:
        g["source"] = "c" if g["source"] != "c" else "a"
    with pytest.raises(fl.BundleError):
        fl.Scorer.from_parts(body, arrays)


def test_pruning_keeps_product_arguments():
    df, y = _data()
    num = df[["a", "b", "c"]]
    pipe = _fit(make_pipeline(SimpleImputer(), PolynomialFeatures(2), Ridge()), num, y)
    sc = fl.compile(pipe, num)
    plan = sc.features
    # keep only the a*b column: its argument groups must survive pruning
    k = list(pipe[:-1].get_feature_names_out()).index("a b")
    sub = FeaturePlan(plan.inputs, plan.groups, [plan.outputs[k]], ["a b"]).pruned()
    assert len(sub.groups) < len(plan.groups)
    assert sum(g.product for g in sub.groups) == 1
    frame = sc.schema.validate(num) if hasattr(sc.schema, "validate") else None
    if frame is not None and hasattr(frame, "n_rows"):
        np.testing.assert_array_equal(sub.run(frame)[:, 0], _sk_features(pipe, num)[:, k])
    meta, arrays = sub.to_parts()
    back = FeaturePlan.from_parts(meta, arrays)
    assert [g.args for g in back.groups] == [g.args for g in sub.groups]
    assert fold(sub, sc.model) is None


@pytest.mark.parametrize("damage", ["reg_len", "udf_fn", "unwritten"])
def test_native_program_rejects_bad_product(damage):
    from forgeline._native import core

    df, y = _data(nan_frac=0.0)
    num = df[["a", "b"]]
    sc = fl.compile(_fit(make_pipeline(PolynomialFeatures(2, include_bias=False), Ridge()), num, y), num)
    packed = sc.features._pack()
    g = int(np.flatnonzero(packed["src_kind"] == 5)[0])
    if damage == "reg_len":
        packed["reg_len"][g] = 1
    elif damage == "udf_fn":
        packed["udf_fn"][g] = 0
    else:
        packed["reg_off"][g] = packed["n_regs"] - 1
    with pytest.raises(ValueError, match="plan:"):
        core.FeatureProgram(sc.features.n_features, **packed)
