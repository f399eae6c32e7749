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
    fl = bench.forgeline_ct(sparse=False).fit(df)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        sk = bench.sklearn_ct(sparse=False).fit(df)
    test = bench.make_data(2000, seed=5)
    assert_array_equal(fl.transform(test), sk.transform(test))
    # (sklearn's FunctionTransformer(np.log1p) has no feature names to compare with)
    assert fl.get_feature_names_out()[30] == "bins__n30"


@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_results_do_not_depend_on_thread_count(n_threads):
    df = bench.make_data(5000, seed=6)
    ref = bench.forgeline_ct(n_threads=1, sparse=False).fit(df).transform(df)
    got = bench.forgeline_ct(n_threads=n_threads, sparse=False).fit(df).transform(df)
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


def _csr_equal(a, b):
    from scipy import sparse
    assert sparse.issparse(a) and sparse.issparse(b)
    assert type(a) is type(b) and a.format == b.format == "csr"
    assert a.shape == b.shape and a.indices.dtype == b.indices.dtype
    assert_array_equal(a.indptr, b.indptr)
    assert_array_equal(a.indices, b.indices)
    assert_array_equal(a.data, b.data)


def test_t2_sparse_default_output_equals_sklearn_csr():
    # sklearn's defaults (OneHotEncoder(sparse_output=True), sparse_threshold=0.3): the T2
    # output has density 50/340, so both return CSR; zeros of the dense branches (bin 0)
    # are dropped the way scipy drops them, unknown categories give empty one-hot slots.
    df = bench.make_data(3000, seed=4)
    fl = bench.forgeline_ct(sparse=True).fit(df)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        sk = bench.sklearn_ct(sparse=True).fit(df)
    assert fl.sparse_output_ is True and sk.sparse_output_ is True
    test = bench.make_data(2000, seed=5)
    test.loc[::7, "c3"] = "never-seen"
    test.loc[::5, "c4"] = None
    _csr_equal(fl.transform(test), sk.transform(test))


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.6, 1.0])
def test_sparse_threshold_decides_like_sklearn(threshold):
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    rng = np.random.default_rng(2)
    n = 400
    df = __import__("pandas").DataFrame({
        "a": rng.normal(size=n), "b": np.where(rng.random(n) < 0.5, 0.0, rng.normal(size=n)),
        "c": rng.choice(list("pqrs"), n).astype(object),
        "d": rng.choice(["u", "v", None], n).astype(object)})
    fl = ft.ColumnTransformer([("s", ft.StandardScaler(), ["a", "b"]),
                               ("o", ft.OneHotEncoder(drop="first"), ["c", "d"])],
                              sparse_threshold=threshold).fit(df)
    sk = ColumnTransformer([("s", StandardScaler(), ["a", "b"]),
                            ("o", OneHotEncoder(drop="first"), ["c", "d"])],
                           sparse_threshold=threshold).fit(df)
    assert fl.sparse_output_ == sk.sparse_output_
    got, want = fl.transform(df), sk.transform(df)
    if sk.sparse_output_:
        _csr_equal(got, want)
    else:
        assert_array_equal(got, want)


def test_sparse_threshold_is_validated():
    from forgeline.errors import InputError
    df = {"c": np.array(["a", "b"], dtype=object)}
    with pytest.raises(InputError, match="sparse_threshold"):
        ft.ColumnTransformer([("o", ft.OneHotEncoder(), ["c"])], sparse_threshold=2).fit(df)


@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_sparse_output_does_not_depend_on_thread_count(n_threads):
    df = bench.make_data(5000, seed=6)
    ref = bench.forgeline_ct(n_threads=1, sparse=True).fit(df).transform(df)
    got = bench.forgeline_ct(n_threads=n_threads, sparse=True).fit(df).transform(df)
    _csr_equal(got, ref)


def test_standalone_sparse_encoders_equal_sklearn():
    from sklearn.preprocessing import KBinsDiscretizer, OneHotEncoder
    rng = np.random.default_rng(3)
    df = __import__("pandas").DataFrame({"c": rng.choice(list("abcde"), 300).astype(object),
                                         "d": rng.choice(["x", None], 300).astype(object)})
    _csr_equal(ft.OneHotEncoder().fit(df).transform(df), OneHotEncoder().fit(df).transform(df))
    X = rng.normal(size=(300, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        _csr_equal(ft.KBinsDiscretizer(n_bins=4).fit(X).transform(X),
                   KBinsDiscretizer(n_bins=4).fit(X).transform(X))


def test_parallel_categorical_read_matches_serial_and_reports_first_bad_column():
    import pandas as pd
    from forgeline.errors import DataError
    rng = np.random.default_rng(8)
    n = 30_000  # 8 columns x 30k rows: above the parallel-conversion threshold
    df = pd.DataFrame({f"c{j}": rng.choice([f"v{i}" for i in range(12)], n).astype(object)
                       for j in range(8)})
    one = ft.OneHotEncoder(n_threads=1).fit(df)
    two = ft.OneHotEncoder(n_threads=2).fit(df)
    _csr_equal(two.transform(df), one.transform(df))
    bad = df.copy()
    bad.loc[3, "c6"] = "new"
    bad.loc[5, "c2"] = "new"
    with pytest.raises(DataError, match="'c2'"):
        two.transform(bad)


def test_sparse_direct_entries_zeros_nan_unknown_and_ignored_equal_sklearn():
    # The CSR builder emits entries straight from each group: exact 0.0 and -0.0 scalars
    # dropped, NaN kept (StandardScaler passes NaN through), unknown and missing categories
    # under handle_unknown="ignore" and the dropped first level emit nothing.
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    rng = np.random.default_rng(11)
    n = 600
    a = rng.choice([0.0, -0.0, 1.5, -2.0, np.nan], n)
    df = pd.DataFrame({"a": a, "b": rng.normal(size=n),
                       "c": rng.choice(list("pqr"), n).astype(object),
                       "d": rng.choice(list("xyz"), n).astype(object)})
    parts = lambda lib_scaler, lib_ohe: [  # noqa: E731
        ("s", lib_scaler(with_mean=False), ["a", "b"]),
        ("o", lib_ohe(handle_unknown="ignore"), ["c"]),
        ("f", lib_ohe(drop="first"), ["d"])]
    fl = ft.ColumnTransformer(parts(ft.StandardScaler, ft.OneHotEncoder), sparse_threshold=1.0).fit(df)
    sk = ColumnTransformer(parts(StandardScaler, OneHotEncoder), sparse_threshold=1.0).fit(df)
    test = df.copy()
    test.loc[::3, "c"] = "unseen"
    test.loc[1::4, "c"] = None
    got, want = fl.transform(test), sk.transform(test)
    assert fl.sparse_output_ and sk.sparse_output_
    _csr_equal(got, want)
    assert np.isnan(got.data).any() and (got.data != 0).all()
