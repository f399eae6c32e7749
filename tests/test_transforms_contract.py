"""scikit-learn estimator contract for every forgeline transformer, plus set_output/names."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest
from numpy.testing import assert_array_equal
from sklearn.utils.estimator_checks import parametrize_with_checks

import forgeline.transforms as ft

ESTIMATORS = [
    ft.StandardScaler(), ft.StandardScaler(with_mean=False), ft.MinMaxScaler(),
    ft.MaxAbsScaler(), ft.RobustScaler(), ft.SimpleImputer(strategy="median", add_indicator=True),
    ft.Log1p(), ft.Winsorizer(), ft.PowerTransformer(), ft.KBinsDiscretizer(encode="ordinal"),
    ft.KBinsDiscretizer(encode="onehot-dense", strategy="uniform"),
    ft.OneHotEncoder(sparse_output=False, handle_unknown="ignore"), ft.OrdinalEncoder(),
    ft.OneHotEncoder(handle_unknown="ignore"), ft.KBinsDiscretizer(),  # native CSR output
    ft.CountEncoder(), ft.HashEncoder(),
    ft.TargetEncoder(),
]

# Checks exempted per class, with the reason. None are needed today: every sklearn check
# passes for every transformer (TargetEncoder included, cross-fitting and all).
EXPECTED_FAILED: dict[str, dict[str, str]] = {}


def _expected_failed(est):
    return EXPECTED_FAILED.get(type(est).__name__, {})


# sklearn's checks set `random_state`, which TargetEncoder deprecates exactly like sklearn's.
@pytest.mark.filterwarnings("ignore:`TargetEncoder.shuffle` and `TargetEncoder.random_state`"
                            ":FutureWarning")
@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed)
def test_sklearn_contract(estimator, check):
    check(estimator)


NUMERIC = [ft.StandardScaler, ft.MinMaxScaler, ft.MaxAbsScaler, ft.RobustScaler, ft.Log1p,
           ft.Winsorizer, ft.PowerTransformer, ft.SimpleImputer]


@pytest.mark.parametrize("cls", NUMERIC)
@pytest.mark.parametrize("how", ["pandas", "polars"])
def test_set_output(cls, how):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.lognormal(size=50), "b": rng.lognormal(size=50)})
    t = cls().set_output(transform=how).fit(df)
    out = t.transform(df)
    want = cls().fit(df).transform(df)
    if how == "pandas":
        assert isinstance(out, pd.DataFrame)
        assert list(out.columns) == ["a", "b"]
        assert_array_equal(out.to_numpy(), want)
    else:
        assert isinstance(out, pl.DataFrame)
        assert out.columns == ["a", "b"]
        assert_array_equal(out.to_numpy(), want)


def test_inputs_pandas_polars_arrow_dict_agree():
    import pyarrow as pa
    rng = np.random.default_rng(1)
    d = {"a": rng.normal(size=40), "b": rng.normal(size=40)}
    want = ft.StandardScaler().fit(np.column_stack([d["a"], d["b"]])).transform(
        np.column_stack([d["a"], d["b"]]))
    for X in (pd.DataFrame(d), pl.DataFrame(d), pa.table(d), d):
        t = ft.StandardScaler().fit(X)
        np.testing.assert_allclose(t.transform(X), want, rtol=1e-12)
        assert list(t.feature_names_in_) == ["a", "b"]


def test_feature_names_out_one_hot_and_pipeline():
    df = pd.DataFrame({"c": ["x", "y", "x"], "n": [1.0, np.nan, 3.0]})
    ohe = ft.OneHotEncoder(sparse_output=False).fit(df[["c"]])
    assert list(ohe.get_feature_names_out()) == ["c_x", "c_y"]
    ct = ft.ColumnTransformer([("num", [ft.SimpleImputer(), ft.StandardScaler()], ["n"]),
                               ("cat", ft.OneHotEncoder(sparse_output=False), ["c"])]).fit(df)
    assert list(ct.get_feature_names_out()) == ["num__n", "cat__c_x", "cat__c_y"]
    out = ct.transform(df)
    assert out.shape == (3, 3)


def test_works_inside_sklearn_pipeline():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    rng = np.random.default_rng(2)
    X = rng.normal(size=(80, 3))
    y = (X[:, 0] > 0).astype(int)
    pipe = make_pipeline(ft.SimpleImputer(), ft.StandardScaler(), LogisticRegression())
    pipe.fit(X, y)
    assert pipe.score(X, y) > 0.8


def test_package_imports_without_sklearn_and_numba(tmp_path):
    import subprocess
    import sys
    code = (
        "import sys\n"
        "sys.modules['sklearn'] = None\n"
        "sys.modules['numba'] = None\n"
        "sys.modules['scipy'] = None\n"
        "import numpy as np\n"
        "import forgeline.transforms as ft\n"
        "from forgeline.transforms._base import HAVE_SKLEARN\n"
        "assert not HAVE_SKLEARN\n"
        "X = np.array([[1.0, np.nan], [3.0, 4.0], [5.0, 8.0]])\n"
        "t = ft.StandardScaler().fit(X)\n"
        "assert t.get_params()['with_mean'] is True\n"
        "t.set_params(with_mean=False)\n"
        "out = ft.SimpleImputer(strategy='median').fit_transform(X)\n"
        "assert out[0, 1] == 6.0\n"
        "print('ok')\n"
    )
    env = {**__import__("os").environ}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"
