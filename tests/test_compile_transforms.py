"""compile() of sklearn preprocessing into the native feature program: equal to sklearn."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    KBinsDiscretizer,
    MaxAbsScaler,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    RobustScaler,
    StandardScaler,
)

import forgeline as fl
from forgeline.plan import FeaturePlan


def _frame(n=500, seed=0, nan_share=0.1):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "a": rng.normal(size=n),
        "b": rng.exponential(size=n),
        "c": rng.choice(["x", "y", "z", "w"], size=n, p=[0.5, 0.3, 0.15, 0.05]).astype(object),
        "d": rng.integers(0, 5, size=n).astype(float),
    })
    df.loc[rng.random(n) < nan_share, "a"] = np.nan
    df.loc[rng.random(n) < nan_share, "c"] = None
    return df


def _quiet(fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # log1p of negatives, as sklearn does
        warnings.simplefilter("ignore", UserWarning)  # collapsed quantile bins (an edge case we test)
        return fn(*args)


NUMERIC_STEPS = {
    "standard": lambda: make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
    "standard_nomean": lambda: make_pipeline(SimpleImputer(), StandardScaler(with_mean=False)),
    "minmax_clip": lambda: make_pipeline(SimpleImputer(), MinMaxScaler(feature_range=(-1, 2), clip=True)),
    "robust": lambda: make_pipeline(SimpleImputer(strategy="most_frequent"), RobustScaler()),
    "maxabs": lambda: make_pipeline(SimpleImputer(strategy="constant", fill_value=3.5), MaxAbsScaler()),
    "log1p": lambda: make_pipeline(SimpleImputer(add_indicator=True), FunctionTransformer(np.log1p)),
    "kbins_ordinal": lambda: make_pipeline(SimpleImputer(), KBinsDiscretizer(
        n_bins=6, encode="ordinal", strategy="uniform")),
    "kbins_quantile_onehot": lambda: make_pipeline(SimpleImputer(), KBinsDiscretizer(
        n_bins=16, encode="onehot-dense", strategy="quantile", quantile_method="averaged_inverted_cdf")),
    "kbins_kmeans": lambda: make_pipeline(SimpleImputer(), KBinsDiscretizer(
        n_bins=4, encode="ordinal", strategy="kmeans")),
    "identity_ft": lambda: make_pipeline(SimpleImputer(), FunctionTransformer()),
}


@pytest.mark.parametrize("name", sorted(NUMERIC_STEPS))
def test_numeric_steps_match_sklearn(name):
    df = _frame()
    ct = ColumnTransformer([("n", NUMERIC_STEPS[name](), ["a", "b", "d"])])
    _quiet(ct.fit, df)
    scorer = _quiet(fl.compile, ct, df)
    cur = _frame(n=300, seed=1)
    np.testing.assert_allclose(scorer.transform(cur), _quiet(ct.transform, cur), rtol=1e-12)


CAT_ENCODERS = {
    "onehot_ignore": lambda: OneHotEncoder(handle_unknown="ignore", sparse_output=False),
    "onehot_drop_first": lambda: OneHotEncoder(drop="first", handle_unknown="ignore", sparse_output=False),
    "onehot_infrequent": lambda: OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=0.1,
                                               sparse_output=False),
    "onehot_max_categories": lambda: OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=2,
                                                   sparse_output=False),
    "ordinal_unknown": lambda: OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-7),
    "imputed_onehot": lambda: make_pipeline(SimpleImputer(strategy="constant", fill_value="MISSING"),
                                            OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
    "mode_imputed_ordinal": lambda: make_pipeline(SimpleImputer(strategy="most_frequent"),
                                                  OrdinalEncoder(handle_unknown="use_encoded_value",
                                                                 unknown_value=-1)),
}


@pytest.mark.parametrize("name", sorted(CAT_ENCODERS))
def test_categorical_encoders_match_sklearn_with_unseen(name):
    df = _frame()
    ct = ColumnTransformer([("c", CAT_ENCODERS[name](), ["c"]), ("num", "passthrough", ["b"])])
    ct.fit(df)
    scorer = fl.compile(ct, df)
    cur = _frame(n=300, seed=2)
    cur.loc[:20, "c"] = "never-seen"
    np.testing.assert_allclose(scorer.transform(cur), _quiet(ct.transform, cur), rtol=1e-12)


def test_onehot_on_integer_column():
    df = _frame()
    ct = ColumnTransformer([("c", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["d"])])
    ct.fit(df)
    scorer = fl.compile(ct, df)
    cur = df.assign(d=np.r_[[7.0, np.nan], df["d"].to_numpy()[2:]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        want = ct.transform(cur.fillna({"d": 99.0}))
    got = scorer.transform(cur.fillna({"d": 99.0}))
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_unknown_category_with_error_policy_raises_data_error():
    df = _frame().dropna()
    ct = ColumnTransformer([("c", OneHotEncoder(handle_unknown="error", sparse_output=False), ["c"])])
    ct.fit(df)
    scorer = fl.compile(ct, df)
    with pytest.raises(fl.DataError, match="'c'"):
        scorer.transform(df.assign(c="brand-new"))


def test_ordinal_error_policy_raises_on_unseen():
    df = _frame().dropna()
    ct = ColumnTransformer([("c", OrdinalEncoder(), ["c"])]).fit(df)
    scorer = fl.compile(ct, df)
    np.testing.assert_array_equal(scorer.transform(df), ct.transform(df))
    with pytest.raises(fl.DataError, match="unseen"):
        scorer.transform(df.assign(c="brand-new"))


def test_all_missing_column_is_dropped_like_sklearn():
    df = _frame().assign(e=np.nan)
    ct = ColumnTransformer([("n", SimpleImputer(), ["a", "e", "b"])])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ct.fit(df)
        scorer = fl.compile(ct, df)
        want = ct.transform(df)
    np.testing.assert_allclose(scorer.transform(df), want, rtol=1e-12)


def test_constant_column_scaling():
    df = _frame().assign(k=5.0)
    ct = ColumnTransformer([("n", make_pipeline(StandardScaler(), MinMaxScaler()), ["k", "b"])]).fit(df)
    np.testing.assert_allclose(fl.compile(ct, df).transform(df), ct.transform(df), rtol=1e-12)


def test_remainder_passthrough_and_drop():
    df = _frame()
    ct = ColumnTransformer([("s", StandardScaler(), ["b"]), ("x", "drop", ["a"])],
                           remainder="passthrough").fit(df.drop(columns=["c"]))
    d = df.drop(columns=["c"])
    s = fl.compile(ct, d)
    np.testing.assert_allclose(s.transform(d), ct.transform(d), rtol=1e-12)
    assert s.feature_names_out == list(ct.get_feature_names_out())


def test_numpy_input_pipeline():
    X = np.random.default_rng(3).normal(size=(200, 4))
    pipe = make_pipeline(StandardScaler(), MinMaxScaler()).fit(X)
    s = fl.compile(pipe, X)
    np.testing.assert_allclose(s.transform(X), pipe.transform(X), rtol=1e-12)
    assert s.schema.names == ["x0", "x1", "x2", "x3"]


def test_unsupported_transformer_is_named():
    X = np.random.default_rng(3).normal(size=(50, 2))
    pipe = make_pipeline(PolynomialFeatures(degree=3)).fit(X)
    with pytest.raises(fl.UnsupportedModelError, match="PolynomialFeatures"):
        fl.compile(pipe, X)


def test_unsupported_function_is_named():
    X = np.random.default_rng(3).normal(size=(50, 2))
    pipe = make_pipeline(FunctionTransformer(lambda v: v * 2)).fit(X)
    with pytest.raises(fl.UnsupportedModelError, match="ufuncs"):
        fl.compile(pipe, X)


def test_string_column_without_encoder_is_refused():
    df = _frame()
    ct = ColumnTransformer([("p", "passthrough", ["c"])]).fit(df)
    with pytest.raises(fl.UnsupportedModelError, match="'c'"):
        fl.compile(ct, df)


def test_verification_names_op_and_column(monkeypatch):
    df = _frame()
    ct = ColumnTransformer([("s", make_pipeline(SimpleImputer(), StandardScaler()), ["a", "b"])]).fit(df)
    # corrupt the fitted state after fitting, so sklearn and the plan disagree only if
    # compile reads a different attribute than sklearn's transform uses
    import forgeline._sklearn_plan as sp

    real = sp._standard_scaler

    def broken(b, est, syms, origin):
        out = real(b, est, syms, origin)
        b.groups[out[1].group].ops[-1].a *= 1.0001
        return out
    monkeypatch.setitem(sp._HANDLERS, "StandardScaler", broken)
    with pytest.raises(fl.CompileError) as info:
        fl.compile(ct, df)
    assert info.value.column == "b"
    assert "StandardScaler" in info.value.op


def test_feature_plan_round_trip_is_json_safe():
    df = _frame()
    ct = ColumnTransformer([
        ("n", make_pipeline(SimpleImputer(), KBinsDiscretizer(n_bins=5, encode="onehot-dense")), ["a"]),
        ("c", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["c"]),
        ("o", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan), ["c"]),
    ]).fit(df)
    s = fl.compile(ct, df)
    meta, arrays = s.features.to_parts()
    meta2 = json.loads(json.dumps(meta))
    plan2 = FeaturePlan.from_parts(meta2, arrays)
    frame = s.schema.validate(df)
    np.testing.assert_array_equal(plan2.run(frame), s.features.run(frame))


def test_feature_plan_rejects_hostile_indices():
    df = _frame()
    ct = ColumnTransformer([("c", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["c"])]).fit(df)
    meta, arrays = fl.compile(ct, df).features.to_parts()
    bad = json.loads(json.dumps(meta))
    bad["outputs"][0][0] = 999
    with pytest.raises(fl.BundleError):
        FeaturePlan.from_parts(bad, arrays)
    bad = json.loads(json.dumps(meta))
    for g in bad["groups"]:
        if "onehot_map" in g:
            g["onehot_map"][2] = 10**6
    with pytest.raises(fl.BundleError):
        FeaturePlan.from_parts(bad, arrays)
    bad = json.loads(json.dumps(meta))
    bad["groups"][0]["ops"] = [{"name": "rm -rf", "a": 0, "b": 0}]
    with pytest.raises(fl.BundleError, match="unknown plan op"):
        FeaturePlan.from_parts(bad, arrays)


@pytest.mark.parametrize("n_threads", [1, 2, 5])
def test_thread_count_does_not_change_results(n_threads):
    df = _frame(n=5000)
    ct = ColumnTransformer([
        ("n", make_pipeline(SimpleImputer(), StandardScaler()), ["a", "b"]),
        ("c", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["c"])]).fit(df)
    s = fl.compile(ct, df)
    np.testing.assert_array_equal(s.transform(df, n_threads=n_threads), s.transform(df, n_threads=1))


def test_zero_and_one_row():
    df = _frame()
    ct = ColumnTransformer([("n", make_pipeline(SimpleImputer(), StandardScaler()), ["a"]),
                            ("c", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["c"])]).fit(df)
    s = fl.compile(ct, df)
    assert s.transform(df.iloc[:0]).shape == (0, ct.transform(df.iloc[:1]).shape[1])
    np.testing.assert_allclose(s.transform(df.iloc[:1]), ct.transform(df.iloc[:1]), rtol=1e-12)


@settings(max_examples=25, deadline=None)
@given(st.integers(5, 200), st.integers(0, 2**31 - 1), st.floats(0, 0.9))
def test_hypothesis_frames(n, seed, nan_share):
    df = _frame(n=n, seed=seed, nan_share=nan_share)
    df["c"] = df["c"].fillna("x")  # sklearn's OneHotEncoder needs a non-missing value somewhere
    df.loc[df.index[0], "a"] = 0.25  # and the imputer needs at least one observed value
    ct = ColumnTransformer([
        ("n", make_pipeline(SimpleImputer(strategy="median"), RobustScaler()), ["a", "b"]),
        ("c", OneHotEncoder(handle_unknown="ignore", sparse_output=False, min_frequency=3), ["c"])])
    ct.fit(df)
    s = fl.compile(ct, df)
    cur = _frame(n=50, seed=seed + 1, nan_share=nan_share)
    np.testing.assert_allclose(s.transform(cur), _quiet(ct.transform, cur), rtol=1e-12)
