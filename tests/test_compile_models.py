"""compile() of bare models and pipelines ending in models: verified against the source."""

from __future__ import annotations

import warnings

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import forgeline as fl


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n = 2000
    df = pd.DataFrame({"a": rng.normal(size=n),
                       "b": pd.Categorical(rng.choice(["p", "q", "r", "s"], size=n)),
                       "c": rng.normal(size=n)})
    df.loc[rng.random(n) < 0.05, "a"] = np.nan
    y = ((df["a"].fillna(0) + (df["b"] == "q") + rng.normal(size=n) * 0.3) > 0.5).astype(int)
    return df, y.to_numpy()


def test_lightgbm_pandas_categorical_with_unseen_and_missing(data):
    df, y = data
    m = lgb.LGBMClassifier(n_estimators=30, verbose=-1, n_jobs=1).fit(df, y)
    s = fl.compile(m, df)
    assert s.schema["b"].vocabulary == ("p", "q", "r", "s")
    cur = df.iloc[:300].copy()
    cur["b"] = cur["b"].astype(object)
    cur.loc[:10, "b"] = "unseen"
    cur.loc[11:20, "b"] = None
    ref = cur.copy()
    ref["b"] = pd.Categorical(ref["b"].where(ref["b"].isin(["p", "q", "r", "s"])),
                              categories=["p", "q", "r", "s"])
    np.testing.assert_allclose(s.predict_proba(cur), m.predict_proba(ref), rtol=1e-12)


def test_bare_lightgbm_booster_is_verified(data):
    df, y = data
    bst = lgb.train({"objective": "binary", "verbose": -1, "num_threads": 1},
                    lgb.Dataset(df[["a", "c"]], label=y), 20)
    s = fl.compile(bst, df[["a", "c"]])
    np.testing.assert_allclose(s.predict_proba(df[["a", "c"]])[:, 1], bst.predict(df[["a", "c"]]), rtol=1e-12)


@pytest.mark.parametrize("objective", ["binary:logistic", "multi:softprob", "reg:squarederror"])
def test_bare_xgboost_booster_is_verified(data, objective):
    df, y = data
    X = df[["a", "c"]]
    params = {"objective": objective, "max_depth": 4, "nthread": 1}
    label = y
    if objective.startswith("multi"):
        params["num_class"] = 3
        label = np.random.default_rng(1).integers(0, 3, len(y))
    bst = xgb.train(params, xgb.DMatrix(X, label=label), 15)
    s = fl.compile(bst, X)
    want = bst.predict(xgb.DMatrix(X))
    got = s.predict_proba(X) if s.model.classes_ is not None else s.predict(X)
    if got.ndim == 2 and want.ndim == 1:
        got = got[:, 1]
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_pipeline_with_logistic_regression(data):
    df, y = data
    X = df.assign(b=df["b"].astype(object), a=df["a"].fillna(0.0))
    ct = ColumnTransformer([("n", StandardScaler(), ["a", "c"]),
                            ("k", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["b"])])
    pipe = make_pipeline(ct, LogisticRegression(max_iter=300)).fit(X, y)
    s = fl.compile(pipe, X)
    np.testing.assert_allclose(s.predict_proba(X), pipe.predict_proba(X), rtol=1e-12)
    np.testing.assert_array_equal(s.predict(X), pipe.predict(X))


def test_verification_catches_a_wrong_model(data, monkeypatch):
    df, y = data
    X = df[["a", "c"]]
    m = lgb.LGBMRegressor(n_estimators=10, verbose=-1, n_jobs=1).fit(X, y)
    from forgeline.models.trees import TreeEnsemble

    real = TreeEnsemble.predict

    def off_by_a_bit(self, X, n_threads=None, **kw):
        return real(self, X, n_threads=n_threads, **kw) * (1 + 1e-9)
    monkeypatch.setattr(TreeEnsemble, "predict", off_by_a_bit)
    with pytest.raises(fl.CompileError, match="verification failed"):
        fl.compile(m, X)


def test_unsupported_model_is_named():
    from sklearn.svm import SVC

    X = np.random.default_rng(0).normal(size=(40, 3))
    m = SVC().fit(X, (X[:, 0] > 0).astype(int))
    with pytest.raises(fl.UnsupportedModelError, match="SVC"):
        fl.compile(m, X)


def test_categorical_sample_columns_mismatch_is_explained(data):
    df, y = data
    m = lgb.LGBMClassifier(n_estimators=5, verbose=-1, n_jobs=1).fit(df, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(fl.UnsupportedModelError, match="category-dtype"):
            fl.compile(m, df.assign(b=df["b"].astype(object)))


def test_verification_tolerates_cancelling_sums_of_a_linear_model():
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(5)
    X = rng.normal(size=(500, 20))
    m = LinearRegression().fit(X, X @ rng.normal(size=20) + rng.normal(size=500))
    # rows whose prediction cancels to rounding noise: two huge, opposite terms
    c = np.zeros((50, 20))
    c[:, 0] = 1e8 * rng.uniform(1, 2, 50)
    c[:, 1] = -(c[:, 0] * m.coef_[0] + m.intercept_) / m.coef_[1]
    sample = np.vstack([X, c])
    s = fl.compile(m, sample)  # must not raise a spurious CompileError
    scale = s.model.error_scale(sample)
    assert np.all(np.abs(s.predict(sample) - m.predict(sample)) <= 1e-12 * (np.abs(m.predict(sample)) + scale))
