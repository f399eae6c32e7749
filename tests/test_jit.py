"""forgeline.jit: udfs inside compiled plans, called natively by address per tile."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

import forgeline as fl
import forgeline.transforms as ft
from forgeline.errors import DataError, UnsupportedModelError


@fl.udf(name="ratio")
def ratio(a, b):
    return math.log1p(a) / (b + 1.0)


@fl.udf
def combo(a, b, c):
    # NaN-aware branch: missing inputs give a defined value, exercised below
    if a != a:
        return -1.0
    return a * b - c if b > 0.5 else math.sqrt(abs(c)) + 1e-3 * a


@fl.udf
def square(x):
    return x * x


def _frame(n=2500, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"a": rng.lognormal(size=n), "b": rng.random(n), "c": rng.normal(size=n),
                       "k": rng.choice(["x", "y", "z"], n)})
    df.loc[rng.choice(n, 60, replace=False), "a"] = np.nan
    df.loc[rng.choice(n, 60, replace=False), "c"] = np.nan
    return df


def _pipe(df):
    y = (df["b"] > 0.5).to_numpy().astype(int)
    ct = ColumnTransformer([
        ("r", make_pipeline(FunctionTransformer(ratio),
                            SimpleImputer(strategy="constant", fill_value=0.0)), ["a", "b"]),
        ("m", make_pipeline(SimpleImputer(strategy="median"), FunctionTransformer(combo),
                            StandardScaler()), ["a", "b", "c"]),
        ("s", ft.UDFTransformer(square), ["b"]),
        ("k", OneHotEncoder(handle_unknown="ignore"), ["k"])])
    return make_pipeline(ct, LogisticRegression(max_iter=500)).fit(df, y)


def test_compiled_udfs_match_the_python_pipeline_exactly():
    df = _frame()
    pipe = _pipe(df)
    scorer = fl.compile(pipe, df)
    want = pipe[:-1].transform(df)
    got = scorer.transform(df)
    assert np.array_equal(want, got, equal_nan=True)  # bit-identical, NaN included
    np.testing.assert_allclose(scorer.predict_proba(df), pipe.predict_proba(df), rtol=1e-12)
    lines = scorer.explain_plan()
    assert "udf ratio(a, b)" in lines and "udf combo(a, b, c)" in lines
    assert "udf square(b)" in lines


@pytest.mark.parametrize("n_threads", [1, 2])
def test_udf_plan_is_thread_count_and_row_path_invariant(n_threads):
    df = _frame(n=3000, seed=1)
    pipe = _pipe(df)
    scorer = fl.compile(pipe, df)
    full = scorer.transform(df, n_threads=n_threads)
    assert np.array_equal(full, scorer.transform(df, n_threads=1), equal_nan=True)
    # ragged tiles: every prefix length up to two tiles gives the same rows
    for n in (1, 63, 64, 65, 129):
        assert np.array_equal(scorer.transform(df.iloc[:n]), full[:n], equal_nan=True)
    row = {k: v for k, v in df.iloc[7].items()}
    np.testing.assert_array_equal(scorer.predict_proba(row)[0], scorer.predict_proba(df)[7])


def test_udf_of_a_udf_and_duplicate_use():
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"a": rng.normal(size=500), "b": rng.normal(size=500)})
    inner = make_pipeline(FunctionTransformer(ratio.__class__(lambda a, b: a - b, "d")),
                          FunctionTransformer(square))
    ct = ColumnTransformer([("i", inner, ["a", "b"]), ("j", FunctionTransformer(square), ["a"]),
                            ("k", FunctionTransformer(square), ["b"])])
    ct.fit(df)
    scorer = fl.compile(ct, df)
    assert np.array_equal(scorer.transform(df), ct.transform(df), equal_nan=True)


# Numba reports the Python exception through sys.unraisablehook (it has no caller to raise
# into); forgeline turns the failed call into a DataError.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_udf_errors_are_typed():
    @fl.udf
    def boom(x):
        if x > 5:
            raise ValueError("too big")
        return x

    X = pd.DataFrame({"x": np.arange(4.0)})
    scorer = fl.compile(FunctionTransformer(boom).fit(X), X)
    with pytest.raises(DataError, match="boom"):
        scorer.transform(pd.DataFrame({"x": [1.0, 9.0]}))
    cats = pd.DataFrame({"k": ["a", "b", "a"]})
    enc = make_pipeline(OneHotEncoder(sparse_output=False), FunctionTransformer(square)).fit(cats)
    with pytest.raises(UnsupportedModelError):
        fl.compile(enc, cats)


def test_udf_called_on_a_matrix_applies_row_wise():
    X = np.array([[1.0, 2.0], [np.nan, 1.0], [3.0, 0.0]])
    out = ratio(X)
    assert out.shape == (3, 1)
    want = [math.log1p(1.0) / 3.0, np.nan, math.log1p(3.0) / 1.0]
    np.testing.assert_allclose(out[:, 0], want, rtol=1e-15)
    assert ratio(1.0, 2.0) == math.log1p(1.0) / 3.0  # scalars: the Python function
    # numpy's error model: division by zero is inf, not an exception
    assert np.isinf(fl.udf(lambda a, b: a / b)(np.array([[1.0, 0.0]]))[0, 0])


def test_one_udf_scorer_shared_by_many_python_threads():
    from concurrent.futures import ThreadPoolExecutor

    df = _frame(n=1500, seed=5)
    scorer = fl.compile(_pipe(df), df)
    want = scorer.predict_proba(df, n_threads=1)
    parts = [df.iloc[i::8] for i in range(8)]
    with ThreadPoolExecutor(16) as pool:
        got = list(pool.map(lambda i: scorer.predict_proba(parts[i % 8], n_threads=2), range(32)))
    for i, out in enumerate(got):
        assert np.array_equal(out, want[i % 8::8])


@pytest.mark.parametrize("edit,match", [
    (lambda k: k.update(slot=np.array([0, 0, 0], np.int32)), "no earlier group writes"),
    (lambda k: k.update(udf_fn=np.array([-1, -1, 3], np.int32)), "udf index out of range"),
    (lambda k: k.update(reg_len=np.array([0, 0, 5], np.int32)), "registers out of range"),
    (lambda k: k.update(udf_addr=[0]), "null udf address"),
    (lambda k: k.update(n_regs=-1), "bad register count"),
    (lambda k: k.update(slot=np.array([0, 2, 0], np.int32)), "register out of range"),
    (lambda k: k.update(udf_fn=np.array([-1, -1], np.int32)), "size mismatch"),
])
def test_native_program_checks_udf_wiring(edit, match):
    from forgeline._native import core
    from forgeline.plan import FeaturePlan, Group, Sym

    groups = [Group("a"), Group("b"), Group("a", udf="ratio", args=(0, 1))]
    fp = FeaturePlan([("a", "numeric"), ("b", "numeric")], groups, [Sym(2)], ["r"],
                     {"ratio": ratio})
    packed = fp._pack()
    # the packed program: two register groups, then the udf group
    assert list(packed["emit"]) == [3, 3, 0] and list(packed["src_kind"])[2] == 4
    X = np.array([1.0, np.nan, 3.0])
    out = core.FeatureProgram(1, **packed).run([X, X], np.zeros(2, np.int32), 3, 1)
    np.testing.assert_array_equal(out[:, 0], ratio(np.c_[X, X])[:, 0])
    edit(packed)
    with pytest.raises(ValueError, match=match):
        core.FeatureProgram(1, **packed)
