"""Fit fast paths: a Pipeline's later steps fit from deferred (never materialised) program
outputs, and a median imputer takes its counts and medians in one native pass. Both must give
bit-identical fitted states to fitting each step on the previous step's materialised output."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

import forgeline.transforms as ft
from forgeline.errors import DataError
from forgeline.transforms import _engine as eng


def _frame(n=700, seed=0):
    rng = np.random.default_rng(seed)
    d = {f"x{j}": rng.lognormal(0, 1, n) - (j == 3) * 1.5 for j in range(5)}
    d["x1"] = np.round(d["x1"] * 2)  # ties
    d["x2"] = np.full(n, 0.25)  # constant
    for j in range(5):
        d[f"x{j}"][rng.random(n) < 0.08] = np.nan
    d["x4"][:] = np.nan
    d["x4"][5] = -0.0  # a single value, and a negative zero
    return pd.DataFrame(d)


def _state(t) -> dict:
    return {k: v for k, v in vars(t).items() if k.endswith("_") and not k.startswith("_")}


def _assert_same_state(a, b):
    sa, sb = _state(a), _state(b)
    assert sa.keys() == sb.keys(), type(a).__name__
    for k in sa:
        x, y = sa[k], sb[k]
        if isinstance(x, np.ndarray) and x.dtype == object and x.size and isinstance(x[0], np.ndarray):
            for u, v in zip(x, y):
                assert_array_equal(u, v, err_msg=f"{type(a).__name__}.{k}")
        elif isinstance(x, np.ndarray):
            assert_array_equal(x, y, err_msg=f"{type(a).__name__}.{k}")
            if x.dtype.kind == "f":  # bitwise: the sign of zero too
                assert_array_equal(np.signbit(x), np.signbit(y), err_msg=k)
        else:
            assert x == y or (x != x and y != y), f"{type(a).__name__}.{k}"


def _stepwise(steps, X):
    """The reference: each step fitted on the previous step's materialised output."""
    names = None
    Xt = X
    for i, t in enumerate(steps):
        if i:
            t._layout_hint = getattr(steps[0], "_pairwise_sums", None)
        t.fit(Xt)
        if i + 1 < len(steps):
            out = t.transform(Xt)
            names = [str(n) for n in t.get_feature_names_out()]
            Xt = {n: np.ascontiguousarray(out[:, j]) for j, n in enumerate(names)}
    return steps


CHAINS = {
    "median-log1p-standard": lambda: [ft.SimpleImputer(strategy="median"), ft.Log1p(),
                                      ft.StandardScaler()],
    "mean-minmax": lambda: [ft.SimpleImputer(strategy="mean"), ft.MinMaxScaler()],
    "median-qbins": lambda: [ft.SimpleImputer(strategy="median"),
                             ft.KBinsDiscretizer(n_bins=16, encode="ordinal", subsample=None)],
    "median-qbins-linear": lambda: [ft.SimpleImputer(strategy="median"),
                                    ft.KBinsDiscretizer(n_bins=[3, 4, 5], encode="ordinal",
                                                        quantile_method="linear")],
    "median-ubins": lambda: [ft.SimpleImputer(strategy="median"),
                             ft.KBinsDiscretizer(n_bins=5, strategy="uniform",
                                                 encode="onehot-dense")],
    "constant-log1p-robust": lambda: [ft.SimpleImputer(strategy="constant", fill_value=2.0),
                                      ft.Log1p(), ft.RobustScaler()],
    "log1p-winsor": lambda: [ft.Log1p(), ft.Winsorizer(quantile_range=(5, 95))],
    "indicator-standard-maxabs": lambda: [ft.SimpleImputer(strategy="median", add_indicator=True),
                                          ft.StandardScaler(), ft.MaxAbsScaler()],
    "median-median": lambda: [ft.StandardScaler(), ft.SimpleImputer(strategy="median")],
    # steps that read column values: materialised, as before
    "median-kmeans": lambda: [ft.SimpleImputer(strategy="median"),
                              ft.KBinsDiscretizer(n_bins=3, strategy="kmeans", encode="ordinal")],
    "median-power": lambda: [ft.SimpleImputer(strategy="median"), ft.PowerTransformer()],
    "subsampled-bins": lambda: [ft.SimpleImputer(strategy="median"),
                                ft.KBinsDiscretizer(n_bins=4, subsample=300, random_state=0)],
    "mode-after": lambda: [ft.Log1p(), ft.SimpleImputer(strategy="most_frequent")],
}


@pytest.mark.parametrize("n_threads", [1, 3])
@pytest.mark.parametrize("layout", ["pandas", "c-array", "f-array"])
@pytest.mark.parametrize("chain", sorted(CHAINS))
def test_pipeline_fit_equals_stepwise_fit(chain, layout, n_threads):
    X = _frame()
    if chain not in ("log1p-winsor", "mode-after", "median-median"):
        X = X.drop(columns="x4")  # all-NaN after an imputer: dropped, as sklearn does
    if chain in ("median-qbins-linear",):
        X = X.drop(columns="x2")  # three columns for the per-feature n_bins
    if chain.startswith("median-qbins") or chain.endswith("bins") or chain == "median-kmeans":
        X = X.drop(columns="x3")  # log1p of < -1 is NaN, which bins reject (tested below)
    if chain == "median-qbins-linear":
        X["x5"] = X["x0"] * 3
    if layout != "pandas":
        X = np.asarray(X, order="C" if layout == "c-array" else "F")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # constant features, removed bins
        steps = CHAINS[chain]()
        for s in steps:
            s.n_threads = n_threads
        pipe = ft.Pipeline([(f"s{i}", s) for i, s in enumerate(steps)], n_threads=n_threads).fit(X)
        ref = _stepwise(CHAINS[chain](), X)
        for a, b in zip([s for _, s in pipe.steps], ref):
            _assert_same_state(a, b)
        assert_array_equal(_dense(pipe.transform(X)), _dense(ref[-1].transform(_ref_input(ref, X))))


def _dense(a):
    return a.toarray() if hasattr(a, "toarray") else a


def _ref_input(ref, X):
    Xt = X
    for t in ref[:-1]:
        out = t.transform(Xt)
        Xt = {str(n): out[:, j] for j, n in enumerate(t.get_feature_names_out())}
    return Xt


def test_column_transformer_branch_fit_equals_stepwise_fit():
    X = _frame().drop(columns=["x3", "x4"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # ties in x1: bins removed
        ct = ft.ColumnTransformer([
            ("a", [ft.SimpleImputer(strategy="median"), ft.Log1p(), ft.StandardScaler()],
             ["x0", "x1"]),
            ("b", [ft.SimpleImputer(strategy="median"),
                   ft.KBinsDiscretizer(n_bins=8, encode="ordinal", subsample=None)], ["x0", "x1"]),
        ]).fit(X)
        ref_a = _stepwise([ft.SimpleImputer(strategy="median"), ft.Log1p(), ft.StandardScaler()],
                          X[["x0", "x1"]])
        ref_b = _stepwise([ft.SimpleImputer(strategy="median"),
                           ft.KBinsDiscretizer(n_bins=8, encode="ordinal", subsample=None)],
                          X[["x0", "x1"]])
    for (_, pipe, _), ref in zip(ct.transformers_, (ref_a, ref_b)):
        for (_, a), b in zip(pipe.steps, ref):
            _assert_same_state(a, b)


def test_pipeline_bad_values_after_an_elementwise_step_name_the_column():
    X = _frame().drop(columns="x4")  # x3 has values below -1: log1p gives NaN
    pipe = ft.make_pipeline(ft.SimpleImputer(strategy="median"), ft.Log1p(),
                            ft.KBinsDiscretizer(n_bins=3, encode="ordinal"))
    with pytest.raises(DataError, match="x3"):
        pipe.fit(X)
    Y = _frame().drop(columns="x4")
    Y.loc[3, "x0"] = np.inf  # the imputer rejects infinity before any deferred step runs
    with pytest.raises(DataError, match="x0"):
        ft.make_pipeline(ft.SimpleImputer(), ft.Log1p(), ft.StandardScaler()).fit(Y)
    Z = _frame().drop(columns="x4")
    Z.loc[3, "x1"] = np.inf  # Log1p passes infinity on; StandardScaler rejects it
    with pytest.raises(DataError, match="x1"):
        ft.make_pipeline(ft.Log1p(), ft.StandardScaler()).fit(Z)


def test_deferred_check_op_raises_data_error():
    x = np.array([1.0, np.nan, 3.0])
    sources = eng.Sources()
    p = eng.Prog(eng.SRC_FLOAT, sources.add(eng.SRC_FLOAT, x), "col_a").then(eng.Op(eng.OP_CHECK_NAN))
    d = eng.Deferred(sources, [p], 3, ["col_a"])
    with pytest.raises(DataError, match="col_a"):
        eng.moments(d)
    with pytest.raises(DataError, match="col_a"):
        eng.quantiles(d, [0.5], n_valid=[3])


_values = st.lists(st.one_of(st.floats(-1e6, 1e6, allow_nan=False), st.just(np.nan),
                             st.sampled_from([0.0, -0.0, 1.0, 2.5])), min_size=1, max_size=300)


@settings(max_examples=60, deadline=None)
@given(cols=st.lists(_values, min_size=1, max_size=4), fill=st.floats(-10, 10),
       q=st.lists(st.floats(0, 1), min_size=1, max_size=5), threads=st.sampled_from([1, 2, 3]),
       pairwise=st.booleans())
def test_deferred_statistics_equal_materialised(cols, fill, q, threads, pairwise):
    n = min(len(c) for c in cols)
    cols = [np.asarray(c[:n], dtype=np.float64) for c in cols]
    sources = eng.Sources()
    progs = [eng.Prog(eng.SRC_FLOAT, sources.add(eng.SRC_FLOAT, c), f"c{j}").then(
        eng.Op(eng.OP_IMPUTE, fill) if j % 2 else eng.Op(eng.OP_MUL, 0.5),
        eng.Op(eng.OP_ADD, 1.0)) for j, c in enumerate(cols)]
    d = eng.Deferred(sources, progs, n, [p.name for p in progs])
    mat = [np.ascontiguousarray(v) for v in d.columns(threads).values()]
    m_d, m_m = eng.moments(d, threads, pairwise), eng.moments(mat, threads, pairwise)
    for k in eng.MOMENT_FIELDS:
        assert_array_equal(m_d[k], m_m[k], err_msg=k)
    for method in ("linear", "averaged_inverted_cdf"):
        assert_array_equal(eng.quantiles(d, q, method, m_d["count"], threads),
                           eng.quantiles(mat, q, method, m_m["count"], threads))
    assert_array_equal(eng.medians(d, m_d["count"], threads), eng.medians(mat, m_m["count"], threads))
    assert_array_equal(eng.medians(d.take([len(cols) - 1]), None, threads),
                       eng.medians(mat[-1:], None, threads))


@settings(max_examples=60, deadline=None)
@given(cols=st.lists(_values, min_size=1, max_size=4), threads=st.sampled_from([1, 2, 3]))
def test_one_pass_medians_equal_two_pass(cols, threads):
    cols = [np.asarray(c, dtype=np.float64) for c in cols]
    m, med = eng.moments_medians(cols, threads)
    m2 = eng.moments(cols, threads, sums=False)
    for k in eng.MOMENT_FIELDS:
        assert_array_equal(m[k], m2[k], err_msg=k)
    ref = eng.medians(cols, m2["count"], threads)
    assert_array_equal(med, ref)
    assert_array_equal(np.signbit(med), np.signbit(ref))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slice
        assert_array_equal(med, [np.nanmedian(c) if c.size else np.nan for c in cols])


def test_quantiles_with_many_positions_in_one_bucket_are_exact():
    # many wanted positions inside one histogram bucket, and ties across bucket edges
    rng = np.random.default_rng(3)
    cols = [1.0 + rng.random(5000) * 1e-3, np.round(rng.normal(size=5000), 1),
            np.r_[np.full(2000, 7.0), rng.random(100)]]
    q = np.linspace(0, 1, 65)
    for method in ("linear", "averaged_inverted_cdf"):
        got = eng.quantiles(cols, q, method, None, 2)
        want = np.stack([np.percentile(c, q * 100, method=method) for c in cols])
        assert_array_equal(got, want)


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.one_of(st.none(), st.text(max_size=3)), max_size=60),
       ints=st.lists(st.one_of(st.none(), st.integers(-5, 5)), max_size=60))
def test_one_pass_category_coding_equals_unique_then_index_in(values, ints):
    import pyarrow as pa
    import pyarrow.compute as pc
    from forgeline import _frame
    for arr in (pa.array(values, type=pa.string()), pa.array(ints, type=pa.int64())):
        col = _frame._categorical("c", arr, None, str(arr.type))
        uniq = pc.unique(arr.drop_null())
        vocab = tuple(uniq.take(pc.array_sort_indices(uniq)).to_pylist())
        assert col.vocabulary == vocab
        want = _frame._index_in("c", arr, vocab)
        assert col.values.dtype == np.int32
        assert_array_equal(col.values, want)
        assert (col.valid is None) == (arr.null_count == 0)
