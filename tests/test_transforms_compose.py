"""Pipeline / ColumnTransformer: fused native execution equals sklearn's ColumnTransformer."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import forgeline.transforms as ft

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import peers_transforms as bench  # noqa: E402


def test_t2_column_transformer_bitwise_equal_to_sklearn():
    df = bench.make_data(3000, seed=4)
    fl = bench.forgeline_ct().fit(df)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        sk = bench.sklearn_ct().fit(df)
    test = bench.make_data(2000, seed=5)
    assert_array_equal(fl.transform(test), sk.transform(test))
    # (sklearn's FunctionTransformer(np.log1p) has no feature names to compare with)
    assert fl.get_feature_names_out()[30] == "bins__n30"


@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_results_do_not_depend_on_thread_count(n_threads):
    df = bench.make_data(5000, seed=6)
    ref = bench.forgeline_ct(n_threads=1).fit(df).transform(df)
    got = bench.forgeline_ct(n_threads=n_threads).fit(df).transform(df)
    assert_array_equal(got, ref)


def test_pipeline_fuses_and_matches_steps():
    rng = np.random.default_rng(0)
    X = rng.lognormal(size=(500, 3))
    X[rng.random(X.shape) < 0.1] = np.nan
    steps = [ft.SimpleImputer(strategy="median"), ft.Log1p(), ft.StandardScaler()]
    pipe = ft.make_pipeline(*steps).fit(X)
    a = steps[0].transform(X)
    b = steps[1].transform(a)
    c = steps[2].transform(b)
    assert_array_equal(pipe.transform(X), c)
    # a non-fusable step (encoder after a numeric step) is materialised, same result
    p2 = ft.make_pipeline(ft.SimpleImputer(strategy="median"),
                          ft.KBinsDiscretizer(n_bins=4, encode="ordinal"),
                          ft.OneHotEncoder(sparse_output=False)).fit(X)
    want = p2.steps[2][1].transform(p2.steps[1][1].transform(p2.steps[0][1].transform(X)))
    assert_array_equal(p2.transform(X), want)


def test_column_transformer_pandas_output():
    import pandas as pd
    df = bench.make_data(100, seed=7)
    ct = bench.forgeline_ct().set_output(transform="pandas").fit(df)
    out = ct.transform(df)
    assert isinstance(out, pd.DataFrame)
    assert out.shape[0] == 100
    assert list(out.columns) == list(ct.get_feature_names_out())
    assert out.columns[0] == "num__n0"
