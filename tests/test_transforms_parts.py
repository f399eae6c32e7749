"""to_parts / from_parts round trips, BundleError on bad parts, and from_sklearn."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_array_equal

import forgeline.transforms as ft
import sklearn.impute as ski
import sklearn.preprocessing as skp
from forgeline.errors import BundleError


def _num(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.lognormal(size=(n, 3))
    X[rng.random(X.shape) < 0.1] = np.nan
    return pd.DataFrame(X, columns=["a", "b", "c"])


def _cat(n=200, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"s": rng.choice(["x", "y", "z", "q"], n, p=[.5, .3, .15, .05]).astype(object),
                       "i": rng.integers(0, 5, n)})
    df.loc[2, "s"] = None
    return df


FITTED = [
    (lambda: ft.StandardScaler(), _num), (lambda: ft.MinMaxScaler(clip=True), _num),
    (lambda: ft.MaxAbsScaler(), _num), (lambda: ft.RobustScaler(), _num),
    (lambda: ft.SimpleImputer(strategy="median", add_indicator=True), _num),
    (lambda: ft.Log1p(), _num), (lambda: ft.Winsorizer(), _num),
    (lambda: ft.PowerTransformer(), lambda seed=0: _num(seed=seed).fillna(1.0)),
    (lambda: ft.KBinsDiscretizer(encode="onehot-dense"), lambda seed=0: _num(seed=seed).fillna(1.0)),
    (lambda: ft.OneHotEncoder(sparse_output=False, max_categories=3,
                              handle_unknown="infrequent_if_exist"), _cat),
    (lambda: ft.OrdinalEncoder(), _cat), (lambda: ft.CountEncoder(), _cat),
    (lambda: ft.HashEncoder(), _cat),
]


@pytest.mark.parametrize("make,data", FITTED, ids=lambda x: "")
def test_parts_round_trip(make, data):
    X = data()
    t = make().fit(X)
    meta, arrays = t.to_parts()
    meta = json.loads(json.dumps(meta))  # JSON-safe
    arrays = {k: np.array(v) for k, v in arrays.items()}
    back = type(t).from_parts(meta, arrays)
    assert_array_equal(back.transform(X), t.transform(X))
    assert list(back.get_feature_names_out()) == list(t.get_feature_names_out())


def test_target_encoder_parts_round_trip():
    X = _cat()
    y = np.random.default_rng(1).integers(0, 3, len(X))
    t = ft.TargetEncoder().fit(X, y)
    meta, arrays = t.to_parts()
    back = ft.TargetEncoder.from_parts(json.loads(json.dumps(meta)), arrays)
    assert_array_equal(back.transform(X), t.transform(X))


def test_from_parts_rejects_bad_content():
    t = ft.StandardScaler().fit(_num())
    meta, arrays = t.to_parts()
    with pytest.raises(BundleError, match="not a forgeline"):
        ft.StandardScaler.from_parts({"format": "x"}, arrays)
    with pytest.raises(BundleError, match="MinMaxScaler"):
        ft.MinMaxScaler.from_parts(meta, arrays)
    with pytest.raises(BundleError, match="version"):
        ft.StandardScaler.from_parts({**meta, "version": 99}, arrays)
    with pytest.raises(BundleError):
        ft.StandardScaler.from_parts(meta, {})
    with pytest.raises(BundleError, match="unexpected"):
        ft.StandardScaler.from_parts({**meta, "state": {**meta["state"], "evil_": {"value": 1}}},
                                     arrays)
    with pytest.raises(BundleError, match="feature_names_in_"):
        ft.StandardScaler.from_parts({**meta, "feature_names_in_": ["a"]}, arrays)
    bad = dict(arrays)
    bad["mean_"] = np.zeros(7)
    with pytest.raises(BundleError, match="shape"):
        ft.StandardScaler.from_parts(meta, bad)


SK = [
    (lambda: ski.SimpleImputer(strategy="median", add_indicator=True), ft.SimpleImputer, _num),
    (lambda: skp.StandardScaler(), ft.StandardScaler, _num),
    (lambda: skp.MinMaxScaler(feature_range=(-1, 2)), ft.MinMaxScaler, _num),
    (lambda: skp.RobustScaler(), ft.RobustScaler, _num),
    (lambda: skp.MaxAbsScaler(), ft.MaxAbsScaler, _num),
    (lambda: skp.PowerTransformer(), ft.PowerTransformer, lambda seed=0: _num(seed=seed).fillna(2.0)),
    (lambda: skp.KBinsDiscretizer(n_bins=4, encode="ordinal"), ft.KBinsDiscretizer,
     lambda seed=0: _num(seed=seed).fillna(2.0)),
    (lambda: skp.OneHotEncoder(sparse_output=False, handle_unknown="infrequent_if_exist",
                               min_frequency=20), ft.OneHotEncoder, _cat),
    (lambda: skp.OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
     ft.OrdinalEncoder, _cat),
]


@pytest.mark.parametrize("make,cls,data", SK, ids=lambda x: getattr(x, "__name__", ""))
def test_from_sklearn_transforms_identically(make, cls, data):
    X = data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        sk = make().fit(X)
    fl = cls.from_sklearn(sk)
    test = data(seed=5)
    assert_array_equal(fl.transform(test), sk.transform(test))
    assert list(fl.get_feature_names_out()) == list(sk.get_feature_names_out())


def test_from_sklearn_target_encoder():
    X = _cat()
    y = np.random.default_rng(2).normal(size=len(X))
    sk = skp.TargetEncoder().fit(X, y)
    fl = ft.TargetEncoder.from_sklearn(sk)
    assert_array_equal(fl.transform(_cat(seed=3)), sk.transform(_cat(seed=3)))
