"""Shared fixtures: a small fitted churn pipeline and its compiled Scorer."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")


@pytest.fixture(scope="session")
def churn_data():
    from forgeline import _demo

    train = _demo.churn_table(4000, seed=3).to_pandas()
    current = _demo.churn_table(2000, seed=3, drifted=True).to_pandas()
    return train, current


@pytest.fixture(scope="session")
def churn_pipeline(churn_data):
    import lightgbm as lgb
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    from forgeline import _demo

    train, _ = churn_data
    X = train.drop(columns=[_demo.TARGET, _demo.ID])
    pre = ColumnTransformer([
        ("num", SimpleImputer(strategy="median"), _demo.NUMERIC),
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), _demo.CATEGORICAL),
        ("flag", "passthrough", ["paperless_billing"]),
    ])
    model = lgb.LGBMClassifier(n_estimators=25, num_leaves=15, verbose=-1, n_jobs=1, random_state=0)
    pipe = Pipeline([("pre", pre), ("model", model)]).fit(X, train[_demo.TARGET])
    return pipe, X


@pytest.fixture(scope="session")
def churn_scorer(churn_pipeline):
    import forgeline as fl

    pipe, X = churn_pipeline
    return fl.compile(pipe, X.iloc[:1500])


def forgeline_cmd() -> list[str]:
    """The installed console script when there is one, else ``python -m forgeline.cli``."""
    exe = shutil.which("forgeline")
    return [exe] if exe else [sys.executable, "-m", "forgeline.cli"]


def run_cli(*args, timeout=300, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*forgeline_cmd(), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, **kw)


@pytest.fixture(scope="session")
def udf_model():
    """A compiled pipeline with one ``forgeline.udf`` (so its bundle needs ``allow_code``),
    and the pandas frame it was fitted on."""
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    import forgeline as fl

    rng = np.random.default_rng(11)
    df = pd.DataFrame({"a": rng.normal(size=700), "b": rng.normal(size=700)})
    y = (df["a"] - df["b"] > 0).astype(int).to_numpy()
    ct = ColumnTransformer([("u", FunctionTransformer(fl.udf(_udf_gap, name="gap")), ["a", "b"]),
                            ("s", StandardScaler(), ["a", "b"])])
    pipe = make_pipeline(ct, LogisticRegression()).fit(df, y)
    return fl.compile(pipe, df), df


def _udf_gap(a, b):
    return (a - b) / (abs(a) + abs(b) + 1.0)
