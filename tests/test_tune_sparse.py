"""forgeline._tune_sparse: native CSR products bit-identical to scipy, inside sklearn fits
and inside tune.search."""

from __future__ import annotations

import pickle
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from forgeline import _tune_cv, _tune_sparse, tune
from forgeline._native import core
from forgeline._tune_sparse import TunedCSR, wrap

SPECIAL = [0.0, -0.0, 1.0, -1.0, np.nan, np.inf, -np.inf, 1e308, -1e308, 5e-324, 1e-300,
           0.1, 3.0, -2.5, 1e16]
values = st.one_of(st.sampled_from(SPECIAL),
                   st.floats(allow_nan=True, allow_infinity=True, width=64))


def bits(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64).view(np.int64)


def assert_same_bits(a, b):
    assert a.shape == b.shape
    np.testing.assert_array_equal(bits(a), bits(b))


@st.composite
def csr_matrices(draw):
    """Raw CSR arrays as scipy accepts them: empty rows/columns, duplicate and unsorted
    indices, explicit zeros (also -0.0), NaN, infinities, huge and tiny values."""
    n_rows = draw(st.integers(0, 12))
    n_cols = draw(st.integers(0, 9))
    rows = []
    for _ in range(n_rows):
        k = draw(st.integers(0, 7)) if n_cols else 0
        rows.append([(draw(st.integers(0, n_cols - 1)), draw(values)) for _ in range(k)])
    indptr = np.zeros(n_rows + 1, dtype=np.int32)
    indptr[1:] = np.cumsum([len(r) for r in rows]).astype(np.int32)
    indices = np.array([j for r in rows for j, _ in r], dtype=np.int32)
    data = np.array([v for r in rows for _, v in r], dtype=np.float64)
    X = sp.csr_matrix((data, indices, indptr), shape=(n_rows, n_cols))
    x = np.array(draw(st.lists(values, min_size=n_cols, max_size=n_cols)), dtype=np.float64)
    g = np.array(draw(st.lists(values, min_size=n_rows, max_size=n_rows)), dtype=np.float64)
    return X, x, g


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(csr_matrices())
def test_products_bit_identical_to_scipy(case):
    X, x, g = case
    W = wrap(X)
    assert isinstance(W, TunedCSR)
    with np.errstate(all="ignore"):
        assert_same_bits(W @ x, X @ x)
        assert_same_bits(W.T @ g, X.T @ g)
        assert_same_bits(W.dot(x), X.dot(x))
    assert W._fl.fwd is not None and W._fl.bwd is not None  # the kernel really ran


def _random_csr(n_rows, n_cols, per_row, seed, sort=False):
    rng = np.random.default_rng(seed)
    lens = rng.integers(0, 2 * per_row + 1, n_rows)
    indptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int32)
    indices = rng.integers(0, n_cols, indptr[-1]).astype(np.int32)
    data = rng.standard_normal(indptr[-1]) * 10.0 ** rng.integers(-8, 9, indptr[-1])
    ints = rng.random(indptr[-1]) < 0.4  # one-hot / ordinal-like values too
    data[ints] = rng.integers(-3, 140, int(ints.sum()))
    X = sp.csr_matrix((data, indices, indptr), shape=(n_rows, n_cols))
    if sort:
        X.sum_duplicates()
    return X


@pytest.mark.parametrize("n_rows,n_cols", [(3001, 37), (70, 70000), (1500, 3), (512, 5),
                                           (70001, 2), (20000, 3000)])
def test_thread_count_and_wide_index_paths(n_rows, n_cols):
    # (70, 70000): int32 column indices; (1500, 3): the transposed copy in three row blocks
    # (the last one partial); (512, 5): exactly one full block
    X = _random_csr(n_rows, n_cols, 20 if n_rows < 10000 else 1, seed=n_rows)
    rng = np.random.default_rng(1)
    x, g = rng.standard_normal(n_cols), rng.standard_normal(n_rows)
    fwd = core._SpPacked(X.indptr, X.indices, X.data, n_cols)
    bwd = core._SpPacked(X.indptr, X.indices, X.data, n_cols, True)
    assert fwd.shape == (n_rows, n_cols) and bwd.shape == (n_cols, n_rows)
    ref_f, ref_b = X @ x, X.T @ g
    for t in (1, 2, 3, 0):
        assert_same_bits(fwd.matvec(x, t), ref_f)
        assert_same_bits(bwd.matvec(g, t), ref_b)


def _nan_payload(sign, payload):
    return np.array([(0xFFF0000000000000 if sign else 0x7FF0000000000000) | payload],
                    dtype=np.uint64).view(np.float64)[0]


@pytest.mark.parametrize("n_rows,n_cols", [(40001, 5), (23, 9001)])
def test_nan_payloads_across_blocks_and_groups(n_rows, n_cols):
    # NaN rows are recomputed with scipy's operand orders, also when the chain spans the
    # transposed copy's row blocks and sits in any lane of a four-row group
    X = _random_csr(n_rows, n_cols, 12, seed=7)
    rng = np.random.default_rng(8)
    nans = [_nan_payload(s, p) for s in (0, 1) for p in (1 << 51, (1 << 51) | 7, 5)]
    k = rng.choice(X.nnz, 40, replace=False)
    X.data[k] = rng.choice(nans + [np.inf, -np.inf, 0.0], 40)
    x = rng.standard_normal(n_cols)
    g = rng.standard_normal(n_rows)
    x[rng.choice(n_cols, 3, replace=False)] = nans[:3]
    g[rng.choice(n_rows, 6, replace=False)] = nans[1:] + [np.inf]
    W = wrap(X)
    with np.errstate(all="ignore"):
        assert_same_bits(W @ x, X @ x)
        assert_same_bits(W.T @ g, X.T @ g)
        for t in (1, 2):
            assert_same_bits(core._SpPacked(X.indptr, X.indices, X.data, n_cols, True)
                             .matvec(g, t), X.T @ g)


def test_nonzero_indptr_start_and_trailing_entries():
    # only [indptr[0], indptr[-1]) is used, as by sparsetools' loops
    data = np.arange(1.0, 8.0)
    indices = np.array([0, 1, 2, 0, 1, 2, 0], dtype=np.int32)
    indptr = np.array([2, 4, 4, 6], dtype=np.int32)
    X = sp.csr_matrix((data[2:6], indices[2:6], indptr - 2), shape=(3, 3))
    x, g = np.array([1.0, 10.0, 100.0]), np.array([1.0, 2.0, 3.0])
    for t in (False, True):
        assert core._SpPacked(indptr, indices, data, 3, t).nnz == 4
    assert_same_bits(core._SpPacked(indptr, indices, data, 3).matvec(x), X @ x)
    assert_same_bits(core._SpPacked(indptr, indices, data, 3, True).matvec(g), X.T @ g)


def _binary(n=600, p=40, seed=0):
    X = _random_csr(n, p, 6, seed, sort=True)
    X.data = np.abs(X.data) ** 0.25 * np.sign(X.data)  # tame scales: lbfgs really iterates
    rng = np.random.default_rng(seed)
    y = (X @ rng.standard_normal(p) + rng.normal(size=n) > 0).astype(int)
    return X, y


def _count_kernel_calls(monkeypatch):
    calls = {"fwd": 0, "bwd": 0}
    real = _tune_sparse._Packed.get

    def counting(self, X, transpose):
        out = real(self, X, transpose)
        if out is not None:
            calls["bwd" if transpose else "fwd"] += 1
        return out

    monkeypatch.setattr(_tune_sparse._Packed, "get", counting)
    return calls


@pytest.mark.parametrize("C,max_iter", [(0.01, 100), (1.0, 100), (1e4, 100), (1e4, 4)])
def test_logistic_regression_fit_bit_identical(monkeypatch, C, max_iter):
    X, y = _binary()
    calls = _count_kernel_calls(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter=4 is meant to stop early
        ref = LogisticRegression(C=C, max_iter=max_iter).fit(X, y)
        got = LogisticRegression(C=C, max_iter=max_iter).fit(wrap(X), y)
    # sklearn's validation keeps the subclass: LinearModelLoss's products ran natively
    assert calls["fwd"] > 0 and calls["bwd"] > 0
    assert_same_bits(got.coef_, ref.coef_)
    assert_same_bits(got.intercept_, ref.intercept_)
    np.testing.assert_array_equal(got.n_iter_, ref.n_iter_)
    if max_iter == 4:
        assert ref.n_iter_[0] == 4


def test_multiclass_fit_falls_back_and_stays_identical():
    X, _ = _binary(seed=3)
    y = np.random.default_rng(3).integers(0, 3, X.shape[0])
    ref = LogisticRegression(C=0.5, max_iter=200).fit(X, y)
    got = LogisticRegression(C=0.5, max_iter=200).fit(wrap(X), y)
    assert_same_bits(got.coef_, ref.coef_)
    assert_same_bits(got.intercept_, ref.intercept_)


def test_fallbacks_for_what_the_kernel_does_not_take():
    X = _random_csr(50, 7, 3, 5)
    W = wrap(X)
    x32 = np.linspace(-1, 1, 7, dtype=np.float32)
    assert_same_bits(W @ x32, X @ x32)  # float32 vector: scipy's path
    xi = np.arange(7)
    np.testing.assert_array_equal(W @ xi, X @ xi)
    M = np.arange(14.0).reshape(7, 2)
    assert_same_bits(W @ M, X @ M)  # multi-vector: scipy's path
    assert_same_bits(W @ M[:, :1], X @ M[:, :1])  # (n, 1) column goes through the vector path
    strided = np.linspace(-1, 1, 14)[::2]
    assert_same_bits(W @ strided, X @ strided)
    assert W._fl.bwd is None
    # not wrapped: float32 data, int64 indices, csr_array, dense, CSC
    assert not isinstance(wrap(X.astype(np.float32)), TunedCSR)
    X64 = X.copy()
    X64.indices = X64.indices.astype(np.int64)
    X64.indptr = X64.indptr.astype(np.int64)
    assert wrap(X64) is X64
    arr = sp.csr_array(X)
    assert wrap(arr) is arr
    assert wrap(X.toarray()) is not None and not isinstance(wrap(X.toarray()), TunedCSR)
    assert not isinstance(wrap(X.tocsc()), TunedCSR)
    W2 = wrap(X)
    assert wrap(W2) is W2


def test_disabled_switch(monkeypatch):
    X = _random_csr(20, 5, 2, 6)
    monkeypatch.setattr(_tune_sparse, "ENABLED", False)
    assert wrap(X) is X


def test_inplace_scipy_operations_rebuild_the_copies():
    X = _random_csr(40, 6, 5, 8)  # unsorted, with duplicates
    W = wrap(X)
    x = np.linspace(-2, 2, 6)
    g = np.linspace(-1, 1, 40)
    assert_same_bits(W @ x, X @ x)
    assert_same_bits(W.T @ g, X.T @ g)
    W.sum_duplicates()  # replaces the arrays: the packed copies must follow
    ref = sp.csr_matrix(X, copy=True)
    ref.sum_duplicates()
    assert_same_bits(W @ x, ref @ x)
    assert_same_bits(W.T @ g, ref.T @ g)


def test_pickle_and_concurrent_first_use():
    X = _random_csr(2000, 30, 10, 9)
    W = pickle.loads(pickle.dumps(wrap(X, n_threads=2)))
    assert isinstance(W, TunedCSR) and W._fl_threads == 2
    x = np.random.default_rng(0).standard_normal(30)
    g = np.random.default_rng(1).standard_normal(2000)
    ref_f, ref_b = X @ x, X.T @ g
    barrier = threading.Barrier(4)

    def work(i):
        barrier.wait()
        return (W @ x) if i % 2 else (W.T @ g)

    with ThreadPoolExecutor(4) as ex:
        outs = list(ex.map(work, range(8)))
    for i, out in enumerate(outs):
        assert_same_bits(out, ref_f if i % 2 else ref_b)


def test_cache_accounting_counts_the_native_copies():
    X = _random_csr(300, 20, 4, 10)
    W = wrap(X)
    base = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    assert _tune_cv.nbytes(X) == base
    assert _tune_cv.nbytes(W) == base + W.native_nbytes()
    W @ np.ones(20)
    W.T @ np.ones(300)
    assert W.native_nbytes() == W._fl.fwd.nbytes + W._fl.bwd.nbytes
    # wide and very sparse: X.T's blocks grow so their segment bounds stay small
    Wd = wrap(_random_csr(5000, 4000, 2, 11))
    Wd @ np.ones(4000)
    Wd.T @ np.ones(5000)
    assert Wd.native_nbytes() == Wd._fl.fwd.nbytes + Wd._fl.bwd.nbytes
    assert Wd._fl.bwd.nbytes < 2 * Wd._fl.fwd.nbytes


@pytest.mark.parametrize("bad,err,match", [
    (dict(indptr=np.array([0, 2, 1], np.int32)), ValueError, "indptr"),
    (dict(indptr=np.array([0, 1, 9], np.int32)), ValueError, "indptr"),
    (dict(indptr=np.array([-1, 1, 2], np.int32)), ValueError, "indptr"),
    (dict(indices=np.array([0, 5], np.int32)), ValueError, "indices"),
    (dict(indices=np.array([0, -1], np.int32)), ValueError, "indices"),
    (dict(indices=np.array([0, 1], np.int64)), TypeError, "indices"),
    (dict(data=np.array([1.0, 2.0], np.float32)), TypeError, "data"),
    (dict(data=np.array([1.0, 2.0, 3.0])), ValueError, "length"),
    (dict(indptr=np.array([], np.int32)), ValueError, "indptr"),
    (dict(data=np.ones((2, 1))), ValueError, "1-D"),
    (dict(data=np.ones(4)[::2]), ValueError, "contiguous"),
    (dict(n_cols=-1), ValueError, "n_cols"),
])
@pytest.mark.parametrize("transpose", [False, True])
def test_bad_arrays_give_clear_errors(bad, err, match, transpose):
    args = dict(indptr=np.array([0, 1, 2], np.int32), indices=np.array([0, 1], np.int32),
                data=np.array([1.0, 2.0]), n_cols=3)
    args.update(bad)
    with pytest.raises(err, match=match):
        core._SpPacked(args["indptr"], args["indices"], args["data"], args["n_cols"], transpose)


def test_bad_vectors_give_clear_errors():
    p = core._SpPacked(np.array([0, 1], np.int32), np.array([0], np.int32), np.ones(1), 2)
    with pytest.raises(ValueError, match="entries"):
        p.matvec(np.ones(3))
    with pytest.raises(TypeError, match="x"):
        p.matvec(np.ones(2, np.float32))
    with pytest.raises(ValueError, match="1-D"):
        p.matvec(np.ones((2, 1)))


def test_malformed_matrix_falls_back_to_scipy():
    # indptr decreasing inside: scipy's product skips the row, the kernel refuses the arrays
    X = sp.csr_matrix((2, 2))
    X.data, X.indices, X.indptr = np.ones(2), np.array([0, 1], np.int32), np.array([0, 2, 1], np.int32)
    W = TunedCSR((2, 2))
    W.data, W.indices, W.indptr = X.data, X.indices, X.indptr
    x = np.array([1.0, 2.0])
    assert_same_bits(W @ x, X @ x)
    assert W._fl.failed


@pytest.fixture(scope="module")
def cat_data():
    rng = np.random.default_rng(0)
    n = 300
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.lognormal(size=n)})
    for i in range(4):
        df[f"k{i}"] = rng.choice(list("pqrstuvw"), n).astype(object)
    y = ((df["a"] + (df["k0"] == "p") + (df["k1"] == "q") + rng.normal(scale=0.7, size=n))
         > 0.4).astype(int).to_numpy()
    return df, y


def _sparse_pipe():
    ct = ColumnTransformer([
        ("num", StandardScaler(), ["a", "b"]),
        ("cat", OneHotEncoder(handle_unknown="ignore"), [f"k{i}" for i in range(4)]),
    ], sparse_threshold=1.0)  # sklearn's CSR output even at this density
    return Pipeline([("ct", ct), ("model", LogisticRegression(max_iter=100))])


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_search_scores_identical_with_and_without_native_products(monkeypatch, cat_data,
                                                                  n_jobs):
    X, y = cat_data
    space = {"ct__num__with_mean": [True, False], "model__C": [0.01, 1.0, 1e3]}
    calls = _count_kernel_calls(monkeypatch)
    got = tune.search(_sparse_pipe(), space, X, y, cv=3, strategy="grid", n_jobs=n_jobs,
                      refit=False)
    assert calls["fwd"] > 0 and calls["bwd"] > 0
    monkeypatch.setattr(_tune_sparse, "ENABLED", False)
    before = dict(calls)
    ref = tune.search(_sparse_pipe(), space, X, y, cv=3, strategy="grid", n_jobs=n_jobs,
                      refit=False)
    assert calls == before  # the switch really turned the kernel off
    a = got.trials_.sort_values("trial")
    b = ref.trials_.sort_values("trial")
    np.testing.assert_array_equal(a["mean_score"].to_numpy(), b["mean_score"].to_numpy())
    assert got.best_params_ == ref.best_params_


@pytest.mark.parametrize("inner", [1, 2, None])
def test_search_passes_inner_threads_to_the_products(monkeypatch, cat_data, inner):
    X, y = cat_data
    seen = []
    real = _tune_sparse.wrap

    def spy(M, n_threads=1):
        out = real(M, n_threads)
        seen.append(out._fl_threads if isinstance(out, TunedCSR) else "plain")
        return out

    monkeypatch.setattr(_tune_sparse, "wrap", spy)
    tune.search(_sparse_pipe(), {"model__C": [0.1, 1.0]}, X, y, cv=2, strategy="grid",
                n_jobs=2, refit=False, inner_threads=inner)
    assert seen and set(seen) == {0 if inner is None else inner}
