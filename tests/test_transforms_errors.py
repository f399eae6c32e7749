"""Bad input gets a typed forgeline error naming the problem."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import forgeline.transforms as ft
from forgeline.errors import DataError, InputError, NotFittedError, SchemaError

ALL = [ft.StandardScaler, ft.MinMaxScaler, ft.MaxAbsScaler, ft.RobustScaler, ft.SimpleImputer,
       ft.Log1p, ft.Winsorizer, ft.PowerTransformer, ft.KBinsDiscretizer, ft.OneHotEncoder,
       ft.OrdinalEncoder, ft.CountEncoder, ft.HashEncoder, ft.DateTimeFeatures]


def _X(cls, n=20):
    rng = np.random.default_rng(0)
    if cls is ft.DateTimeFeatures:
        return pd.DataFrame({"t": pd.date_range("2020-01-01", periods=n, freq="37h")})
    return pd.DataFrame({"a": rng.normal(size=n), "b": np.round(rng.normal(size=n) * 3, 2)})


@pytest.mark.parametrize("cls", ALL)
def test_transform_before_fit(cls):
    with pytest.raises(NotFittedError, match="not fitted"):
        cls().transform(_X(cls))


@pytest.mark.parametrize("cls", [c for c in ALL if c is not ft.DateTimeFeatures])
def test_wrong_column_count(cls):
    X = _X(cls).to_numpy()
    t = cls().fit(X)
    with pytest.raises(SchemaError, match="features"):
        t.transform(np.column_stack([X, X]))


@pytest.mark.parametrize("cls", ALL)
def test_missing_named_column(cls):
    X = _X(cls)
    t = cls().fit(X)
    with pytest.raises(SchemaError, match="missing"):
        t.transform(X.iloc[:, :1].rename(columns=lambda c: c + "_other"))


@pytest.mark.parametrize("cls", [ft.StandardScaler, ft.MinMaxScaler, ft.MaxAbsScaler,
                                 ft.RobustScaler, ft.SimpleImputer, ft.Winsorizer,
                                 ft.PowerTransformer, ft.KBinsDiscretizer])
def test_inf_rejected_in_fit_and_transform(cls):
    X = _X(cls)
    bad = X.copy()
    bad.loc[3, "a"] = np.inf
    with pytest.raises(DataError, match="infinity"):
        cls().fit(bad)
    t = cls().fit(X)
    with pytest.raises(DataError, match="'a'"):
        t.transform(bad)


def test_kbins_rejects_nan():
    X = _X(ft.KBinsDiscretizer)
    t = ft.KBinsDiscretizer(encode="ordinal").fit(X)
    X.loc[0, "b"] = np.nan
    with pytest.raises(DataError, match="NaN"):
        t.transform(X)


@pytest.mark.parametrize("cls", [ft.OneHotEncoder, ft.OrdinalEncoder])
def test_unknown_category_with_handle_unknown_error(cls):
    df = pd.DataFrame({"c": ["x", "y", "x"]})
    t = cls().fit(df)
    with pytest.raises(DataError, match="unknown categories"):
        t.transform(pd.DataFrame({"c": ["x", "zzz"]}))
    with pytest.raises(DataError, match="unknown categories"):
        t.transform(pd.DataFrame({"c": ["x", None]}))  # missing never seen in fit


def test_numeric_transformer_rejects_strings():
    with pytest.raises(SchemaError, match="'s'"):
        ft.StandardScaler().fit(pd.DataFrame({"s": ["a", "b"]}))


def test_bad_containers_and_shapes():
    with pytest.raises(InputError, match="2D"):
        ft.StandardScaler().fit(np.arange(4.0))
    with pytest.raises(DataError, match="0 sample"):
        ft.StandardScaler().fit(np.empty((0, 3)))
    with pytest.raises(InputError, match="sparse"):
        from scipy import sparse
        ft.StandardScaler().fit(sparse.csr_matrix(np.eye(3)))
    with pytest.raises(InputError):
        ft.StandardScaler().fit(object())


def test_bad_params():
    X = _X(ft.StandardScaler)
    with pytest.raises(InputError, match="strategy"):
        ft.SimpleImputer(strategy="nope").fit(X)
    with pytest.raises(InputError, match="n_bins"):
        ft.KBinsDiscretizer(n_bins=1).fit(X)
    with pytest.raises(InputError, match="quantile range"):
        ft.RobustScaler(quantile_range=(80.0, 20.0)).fit(X)
    with pytest.raises(InputError, match="handle_unknown"):
        ft.OneHotEncoder(handle_unknown="maybe").fit(X)
    with pytest.raises(InputError, match="feature range"):
        ft.MinMaxScaler(feature_range=(1, 0)).fit(X)
