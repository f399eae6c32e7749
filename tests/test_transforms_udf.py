"""forgeline.transforms.udf: Numba-compiled functions called natively by address."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import forgeline.transforms as ft
from forgeline.errors import InputError


@ft.udf(name="ratio")
def _ratio(a, b):
    return math.log1p(a) / (b + 1.0)


def test_udf_matches_python_and_runs_in_column_transformer():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.lognormal(size=3000), "b": rng.lognormal(size=3000),
                       "c": rng.normal(size=3000)})
    df.loc[5, "a"] = np.nan
    t = ft.UDFTransformer(_ratio).fit(df[["a", "b"]])
    out = t.transform(df[["a", "b"]])
    want = np.array([_ratio(a, b) for a, b in zip(df["a"], df["b"])])
    assert_allclose(out[:, 0], want, rtol=1e-15, equal_nan=True)
    assert list(t.get_feature_names_out()) == ["ratio"]
    ct = ft.ColumnTransformer([("u", ft.UDFTransformer(_ratio), ["a", "b"]),
                               ("s", ft.StandardScaler(), ["c"])]).fit(df)
    both = ct.transform(df)
    assert_allclose(both[:, 0], want, rtol=1e-15, equal_nan=True)
    assert list(ct.get_feature_names_out()) == ["u__ratio", "s__c"]


def test_udf_single_column_and_errors():
    X = np.arange(10.0).reshape(-1, 1)
    out = ft.UDFTransformer(lambda x: x * x).fit_transform(X)
    assert_allclose(out[:, 0], X[:, 0] ** 2)
    with pytest.raises(InputError, match="cannot be compiled"):
        ft.UDFTransformer(lambda x: {"a": x}).fit(X)
    with pytest.raises(InputError, match="callable"):
        ft.UDFTransformer(func=3).fit(X)


def test_numba_is_imported_lazily():
    code = ("import sys\nimport forgeline.transforms as ft\n"
            "assert 'numba' not in sys.modules, 'numba imported eagerly'\n"
            "ft.udf(lambda a: a)\nassert 'numba' not in sys.modules\nprint('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
