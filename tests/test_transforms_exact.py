"""Oracle tests: forgeline.transforms equals scikit-learn (rtol 1e-12), edge cases included."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

import forgeline.transforms as ft
import sklearn.impute as ski
import sklearn.preprocessing as skp

RTOL = 1e-12


def _data(n=300, p=5, seed=0, nan=0.1):
    rng = np.random.default_rng(seed)
    X = rng.lognormal(0, 1, (n, p))
    X[:, 1] = np.round(X[:, 1] * 2)  # ties
    X[rng.random(X.shape) < nan] = np.nan
    return X


def _edge():
    X = _data(200, 4)
    X[:, 2] = 0.1  # constant column (with a few NaN)
    X[np.arange(0, 200, 7), 2] = np.nan
    X[:, 3] = np.nan  # all-NaN column
    return X


def _same(a, b):
    assert a.shape == b.shape
    assert_allclose(a, b, rtol=RTOL, atol=0, equal_nan=True)


PAIRS_NAN = [
    (ft.StandardScaler(), skp.StandardScaler()),
    (ft.StandardScaler(with_mean=False), skp.StandardScaler(with_mean=False)),
    (ft.StandardScaler(with_std=False), skp.StandardScaler(with_std=False)),
    (ft.MinMaxScaler(), skp.MinMaxScaler()),
    (ft.MinMaxScaler(feature_range=(-2, 3), clip=True), skp.MinMaxScaler(feature_range=(-2, 3), clip=True)),
    (ft.MaxAbsScaler(), skp.MaxAbsScaler()),
    (ft.RobustScaler(), skp.RobustScaler()),
    (ft.RobustScaler(quantile_range=(10.0, 80.0), unit_variance=True),
     skp.RobustScaler(quantile_range=(10.0, 80.0), unit_variance=True)),
    (ft.PowerTransformer(), skp.PowerTransformer()),
    (ft.PowerTransformer(standardize=False), skp.PowerTransformer(standardize=False)),
]


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("pair", PAIRS_NAN, ids=lambda p: repr(p[0]))
def test_numeric_transformers_match_sklearn(pair, order):
    fl, sk = pair
    X = np.asarray(_data(), order=order)
    X2 = _data(seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        sk.fit(X)
        fl.fit(X)
        _same(fl.transform(X2), sk.transform(X2))
    assert fl.n_features_in_ == sk.n_features_in_
    for attr in ("mean_", "var_", "scale_", "center_", "data_min_", "data_max_", "min_",
                 "max_abs_", "lambdas_"):
        if hasattr(sk, attr):
            a, b = getattr(fl, attr), getattr(sk, attr)
            if b is None:
                assert a is None
            else:
                _same(np.asarray(a, dtype=float), np.asarray(b, dtype=float))


@pytest.mark.parametrize("pair", PAIRS_NAN[:8], ids=lambda p: repr(p[0]))
def test_edge_cases_constant_all_nan_single_row(pair):
    fl, sk = pair
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for X in (_edge(), _data(1, 3, nan=0.0)):
            sk.fit(X)
            fl.fit(X)
            _same(fl.transform(X), sk.transform(X))


def test_pandas_layouts_sum_like_numpy():
    X = _data(5000, 6)
    blocks = pd.DataFrame(X, columns=[f"c{j}" for j in range(6)])  # one block -> F order
    parts = pd.DataFrame({f"c{j}": X[:, j] for j in range(6)})
    parts["s"] = "a"
    parts = parts.drop(columns="s")
    for df in (blocks, parts):
        sk = skp.StandardScaler().fit(df)
        fl = ft.StandardScaler().fit(df)
        assert_array_equal(fl.mean_, sk.mean_)
        _same(fl.transform(df), sk.transform(df))


@pytest.mark.parametrize("strategy", ["mean", "median", "most_frequent", "constant"])
@pytest.mark.parametrize("add_indicator", [False, True])
def test_simple_imputer(strategy, add_indicator):
    X = _data()
    kw = dict(strategy=strategy, add_indicator=add_indicator)
    if strategy == "constant":
        kw["fill_value"] = -7.5
    sk = ski.SimpleImputer(**kw).fit(X)
    fl = ft.SimpleImputer(**kw).fit(X)
    _same(np.asarray(fl.statistics_, float), np.asarray(sk.statistics_, float))
    _same(fl.transform(X), sk.transform(X))
    assert list(fl.get_feature_names_out()) == list(sk.get_feature_names_out())


@pytest.mark.parametrize("strategy", ["mean", "median", "most_frequent"])
@pytest.mark.parametrize("keep", [False, True])
def test_simple_imputer_all_nan_column(strategy, keep):
    X = _edge()
    sk = ski.SimpleImputer(strategy=strategy, keep_empty_features=keep).fit(X)
    fl = ft.SimpleImputer(strategy=strategy, keep_empty_features=keep).fit(X)
    with warnings.catch_warnings(record=True) as w_sk:
        warnings.simplefilter("always")
        b = sk.transform(X)
    with warnings.catch_warnings(record=True) as w_fl:
        warnings.simplefilter("always")
        a = fl.transform(X)
    _same(a, b)
    assert len(w_sk) == len(w_fl)
    assert list(fl.get_feature_names_out()) == list(sk.get_feature_names_out())


def test_log1p_matches_numpy_bitwise():
    X = _data(4000, 3)
    X[0, 0], X[1, 0], X[2, 0] = -0.5, np.inf, -1.0
    with np.errstate(divide="ignore"):
        want = np.log1p(X)
    assert_array_equal(ft.Log1p().fit(X).transform(X), want)


def test_winsorizer_clips_at_nanpercentile():
    X = _data()
    w = ft.Winsorizer(quantile_range=(5.0, 95.0)).fit(X)
    lo, hi = np.nanpercentile(X, [5.0, 95.0], axis=0)
    _same(w.lower_, lo)
    _same(w.upper_, hi)
    _same(w.transform(X), np.clip(X, lo, hi))


KB = [dict(strategy=s, encode=e, n_bins=n, quantile_method=q)
      for s, e, n, q in [("quantile", "ordinal", 5, "averaged_inverted_cdf"),
                         ("quantile", "onehot-dense", 7, "averaged_inverted_cdf"),
                         ("quantile", "ordinal", 16, "linear"),
                         ("uniform", "ordinal", 4, "averaged_inverted_cdf"),
                         ("uniform", "onehot-dense", 3, "averaged_inverted_cdf"),
                         ("kmeans", "ordinal", 4, "averaged_inverted_cdf")]]


@pytest.mark.parametrize("kw", KB, ids=str)
def test_kbins(kw):
    X = np.nan_to_num(_data(), nan=1.0)
    X[:, 4] = 3.0  # constant -> one bin
    X[:150, 3] = 0.5  # heavy ties -> collapsing quantile bins
    X2 = np.nan_to_num(_data(seed=2), nan=0.0) * 1.5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        sk = skp.KBinsDiscretizer(subsample=None, **kw).fit(X)
        fl = ft.KBinsDiscretizer(subsample=None, **kw).fit(X)
    for a, b in zip(fl.bin_edges_, sk.bin_edges_):
        _same(a, b)
    assert_array_equal(fl.n_bins_, sk.n_bins_)
    _same(fl.transform(X2), sk.transform(X2))
    assert list(fl.get_feature_names_out()) == list(sk.get_feature_names_out())


def test_kbins_subsample_like_sklearn():
    X = np.nan_to_num(_data(3000), nan=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        sk = skp.KBinsDiscretizer(encode="ordinal", subsample=500, random_state=3).fit(X)
        fl = ft.KBinsDiscretizer(encode="ordinal", subsample=500, random_state=3).fit(X)
    for a, b in zip(fl.bin_edges_, sk.bin_edges_):
        _same(a, b)


def test_kbins_onehot_sparse():
    X = np.nan_to_num(_data(), nan=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        sk = skp.KBinsDiscretizer(n_bins=4).fit(X)
        fl = ft.KBinsDiscretizer(n_bins=4).fit(X)
    _same(fl.transform(X).toarray(), sk.transform(X).toarray())


@given(st.integers(1, 60), st.integers(2, 12), st.integers(0, 10_000),
       st.sampled_from(["averaged_inverted_cdf", "linear"]))
@settings(max_examples=40, deadline=None)
def test_kbins_quantiles_random(n, n_bins, seed, method):
    rng = np.random.default_rng(seed)
    X = np.round(rng.normal(size=(n, 2)) * rng.integers(1, 4), 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        sk = skp.KBinsDiscretizer(n_bins=n_bins, encode="ordinal", quantile_method=method,
                                  subsample=None).fit(X)
        fl = ft.KBinsDiscretizer(n_bins=n_bins, encode="ordinal", quantile_method=method,
                                 subsample=None).fit(X)
    for a, b in zip(fl.bin_edges_, sk.bin_edges_):
        _same(a, b)
    _same(fl.transform(X), sk.transform(X))


def _cats(n=400, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "a": rng.choice(["x", "y", "z", "w", "v"], n, p=[.4, .3, .2, .07, .03]).astype(object),
        "b": rng.integers(0, 6, n),
        "c": rng.choice([0.5, 1.25, -2.0], n),
    })
    df.loc[[3, 10], "a"] = None
    return df


OHE = [dict(), dict(handle_unknown="ignore"), dict(drop="first"), dict(drop="if_binary"),
       dict(min_frequency=20, handle_unknown="infrequent_if_exist"),
       dict(max_categories=3, handle_unknown="infrequent_if_exist"),
       dict(min_frequency=0.1, drop="first", handle_unknown="ignore"),
       dict(drop=["y", 2, 0.5])]


@pytest.mark.parametrize("kw", OHE, ids=str)
def test_one_hot_encoder(kw):
    df = _cats()
    sk = skp.OneHotEncoder(sparse_output=False, **kw).fit(df)
    fl = ft.OneHotEncoder(sparse_output=False, **kw).fit(df)
    test = df if kw.get("handle_unknown", "error") == "error" else pd.DataFrame(
        {"a": ["x", "unseen", None, "v"], "b": [1, 9, 3, 0], "c": [0.5, 7.0, -2.0, 1.25]})
    with warnings.catch_warnings(record=True) as w_sk:
        warnings.simplefilter("always")
        b = sk.transform(test)
    with warnings.catch_warnings(record=True) as w_fl:
        warnings.simplefilter("always")
        a = fl.transform(test)
    _same(a, b)
    assert [str(w.message) for w in w_fl] == [str(w.message) for w in w_sk]
    assert list(fl.get_feature_names_out()) == list(sk.get_feature_names_out())
    for a, b in zip(fl.categories_, sk.categories_):
        assert [str(x) for x in a] == [str(x) for x in b]
        assert a.dtype == b.dtype


@pytest.mark.parametrize("kw", [dict(), dict(handle_unknown="use_encoded_value", unknown_value=-1),
                                dict(encoded_missing_value=-9),
                                dict(max_categories=3, handle_unknown="use_encoded_value",
                                     unknown_value=np.nan)], ids=str)
def test_ordinal_encoder(kw):
    df = _cats()
    sk = skp.OrdinalEncoder(**kw).fit(df)
    fl = ft.OrdinalEncoder(**kw).fit(df)
    test = df if kw.get("handle_unknown", "error") == "error" else pd.DataFrame(
        {"a": ["x", "unseen", None, "v"], "b": [1, 9, 3, 0], "c": [0.5, 7.0, -2.0, 1.25]})
    _same(fl.transform(test), sk.transform(test))


def test_count_and_hash_encoders():
    df = _cats()
    out = ft.CountEncoder().fit(df).transform(df)
    want = np.stack([df[c].map(df[c].value_counts(dropna=False)).to_numpy(float) for c in df], 1)
    _same(out, want)
    freq = ft.CountEncoder(normalize=True).fit(df).transform(df)
    _same(freq, want / len(df))
    h = ft.HashEncoder(n_components=4).fit(df).transform(df)
    assert h.shape == (len(df), 12)
    assert_array_equal(h[:, :4].sum(1), df["a"].notna().to_numpy(float))
    assert_array_equal(ft.HashEncoder(n_components=4).fit(df).transform(df.iloc[::-1])[::-1], h)
