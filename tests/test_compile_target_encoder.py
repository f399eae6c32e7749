"""compile() of scikit-learn's fitted TargetEncoder: transform-time encodings, exact."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler, TargetEncoder

import forgeline as fl

LEVELS = ["a", "b", "c", "d", "e"]


def _frame(rng, n, with_nan):
    cat = rng.choice(LEVELS, size=n).astype(object)
    if with_nan:
        cat[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame({"cat": cat, "num": rng.normal(size=n),
                         "code": rng.integers(0, 6, size=n).astype(np.float64)})


def _ct(target_type):
    return ColumnTransformer([("te", TargetEncoder(target_type=target_type), ["cat", "code"]),
                              ("num", StandardScaler(), ["num"])])


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), with_nan=st.booleans(),
       target_type=st.sampled_from(["binary", "continuous", "multiclass"]))
def test_transform_matches_sklearn(seed, with_nan, target_type):
    rng = np.random.default_rng(seed)
    X = _frame(rng, 300, with_nan)
    if target_type == "continuous":
        y = rng.normal(size=len(X))
    else:
        y = rng.integers(0, 3 if target_type == "multiclass" else 2, size=len(X))
    ct = _ct(target_type).fit(X, y)
    scorer = fl.compile(ct, sample=X.iloc[:100])
    # new rows: unseen string and numeric categories, and missing values
    Xn = _frame(np.random.default_rng(seed + 1), 200, True)
    Xn.loc[Xn.index[:5], "cat"] = "zzz"
    Xn.loc[Xn.index[5:10], "code"] = 99.0
    Xn.loc[Xn.index[10:15], "code"] = np.nan
    np.testing.assert_array_equal(scorer.transform(Xn), ct.transform(Xn))


@pytest.mark.parametrize("target_type,model", [("binary", LogisticRegression()),
                                               ("multiclass", LogisticRegression()),
                                               ("continuous", Ridge())])
def test_pipeline_predictions(target_type, model):
    rng = np.random.default_rng(7)
    X = _frame(rng, 500, True)
    y = rng.normal(size=len(X)) if target_type == "continuous" else \
        rng.integers(0, 3 if target_type == "multiclass" else 2, size=len(X))
    pipe = make_pipeline(_ct(target_type), model).fit(X, y)
    scorer = fl.compile(pipe, sample=X)  # self-verification runs on the (folded) plan
    Xn = _frame(np.random.default_rng(8), 300, True)
    Xn.loc[Xn.index[:3], "cat"] = "unseen"
    if target_type == "continuous":
        np.testing.assert_allclose(scorer.predict(Xn), pipe.predict(Xn), rtol=1e-12, atol=1e-12)
    else:
        np.testing.assert_allclose(scorer.predict_proba(Xn), pipe.predict_proba(Xn), rtol=0, atol=1e-12)


def test_bundle_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    X = _frame(rng, 400, True)
    y = rng.integers(0, 3, size=len(X))
    pipe = make_pipeline(_ct("multiclass"), LogisticRegression()).fit(X, y)
    scorer = fl.compile(pipe, sample=X)
    scorer.save(tmp_path / "te.forge")
    again = fl.load(tmp_path / "te.forge")
    np.testing.assert_array_equal(again.predict_proba(X), scorer.predict_proba(X))
