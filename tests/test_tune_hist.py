"""Native HistGradientBoosting histograms in forgeline.tune: the kernel gives sklearn's
HistogramBuilder bytes, fits with the drop-in grow the same trees, and searches equal
GridSearchCV exactly."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.ensemble._hist_gradient_boosting import grower
from sklearn.ensemble._hist_gradient_boosting.common import HISTOGRAM_DTYPE
from sklearn.ensemble._hist_gradient_boosting.histogram import HistogramBuilder
from sklearn.impute import SimpleImputer
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from threadpoolctl import threadpool_limits

from _tune_data import count_calls
from forgeline import _core, _tune_hist, tune


@pytest.fixture(autouse=True)
def _fresh_state(monkeypatch):
    """Each test starts with the drop-in on and its own self-check budget; sklearn's OpenMP
    loops run on one thread (on a busy shared box its spinning threads cost seconds, and
    thread counts change no result here)."""
    monkeypatch.setattr(_tune_hist, "_disabled", [])
    monkeypatch.setattr(_tune_hist, "_checks_left", {"brute": 6, "subtract": 6})
    with threadpool_limits(1):
        yield


@pytest.fixture
def counted(monkeypatch):
    """Counts the histograms the native kernel builds."""
    return count_calls(monkeypatch, _core, "_hist_brute", lambda a: len(a[6]))


# -- the kernel against sklearn's builder ------------------------------------------------

_float32 = st.floats(width=32, allow_nan=False, allow_infinity=False, allow_subnormal=True)


@st.composite
def problems(draw):
    n_rows = draw(st.integers(1, 120))  # sklearn cannot build for 0 rows
    n_features = draw(st.integers(1, 11))
    n_bins = draw(st.sampled_from([1, 2, 3, 5, 17, 256]))
    X = draw(st.lists(st.integers(0, n_bins - 1), min_size=n_rows * n_features,
                      max_size=n_rows * n_features))
    X = np.asfortranarray(np.array(X, dtype=np.uint8).reshape(n_rows, n_features))
    # a few distinct values, so bins receive repeated, cancelling and signed-zero addends
    pool = draw(st.lists(_float32 | st.sampled_from([0.0, -0.0, 1e30, -1e30, 1e-30]),
                         min_size=1, max_size=6))
    pick = draw(st.lists(st.integers(0, len(pool) - 1), min_size=2 * n_rows,
                         max_size=2 * n_rows))
    g = np.array([pool[i] for i in pick[:n_rows]], dtype=np.float32)
    constant = draw(st.booleans())
    if constant:
        h = np.array([draw(_float32)], dtype=np.float32)
    else:
        h = np.abs(np.array([pool[i] for i in pick[n_rows:]], dtype=np.float32))
    kind = draw(st.sampled_from(["root", "subset", "empty", "one"]))
    if kind == "root":
        idx = np.arange(n_rows, dtype=np.uint32)
    elif kind == "empty":
        idx = np.empty(0, dtype=np.uint32)
    elif kind == "one":
        idx = np.array([draw(st.integers(0, n_rows - 1))], dtype=np.uint32)
    else:
        perm = draw(st.permutations(range(n_rows)))
        k = draw(st.integers(0, n_rows - 1))
        idx = np.array(perm[:k], dtype=np.uint32)
    allowed = None
    if draw(st.booleans()):
        allowed = np.array(sorted(draw(st.sets(st.integers(0, n_features - 1), min_size=1))),
                           dtype=np.uint32)
    return X, n_bins, g, h, constant, idx, allowed


def _rows(a, allowed):
    a = _tune_hist._as_array(a)
    return (a if allowed is None else a[allowed]).tobytes()


@given(problems(), st.sampled_from([1, 2]), st.sampled_from(["columns", "rows", "auto"]))
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_kernel_is_sklearns_builder_bit_for_bit(problem, n_threads, path):
    X, n_bins, g, h, constant, idx, allowed = problem
    ref = HistogramBuilder(X, n_bins, g, h, constant, 1)
    og, oh = g.copy(), h.copy()
    ours = np.zeros((X.shape[1], n_bins), HISTOGRAM_DTYPE)
    # the row-major path (nodes below the root) is forced on, off, or left to the size rule;
    # the root takes precounted bins except on the plain column path
    rows = None if path == "columns" else np.ascontiguousarray(X)
    rows_below = 10**6 if path == "rows" else 32
    counts = None
    if path != "columns":
        counts = np.stack([np.bincount(X[:, f], minlength=256) for f in range(X.shape[1])])
        counts = counts.astype(np.uint32)
    _core._hist_brute(X, g, h, constant, og, oh, idx, allowed, ours, n_threads, rows,
                      rows_below, counts)
    expected = ref.compute_histograms_brute(idx, allowed)
    assert _rows(ours, allowed) == _rows(expected, allowed)
    # the gather leaves the builder's state as sklearn's does
    assert og.tobytes() == np.asarray(ref.ordered_gradients).tobytes()
    if not constant:
        assert oh.tobytes() == np.asarray(ref.ordered_hessians).tobytes()
    # subtraction, against sklearn's, on a parent that is the root's histogram
    root = np.arange(X.shape[0], dtype=np.uint32)
    parent = _tune_hist._as_array(HistogramBuilder(X, n_bins, g, h, constant, 1)
                                  .compute_histograms_brute(root)).copy()
    sk_parent = parent.copy()
    _core._hist_subtract(parent, ours, allowed)
    ref.compute_histograms_subtraction(sk_parent, _tune_hist._as_array(expected).copy(),
                                       allowed)
    assert _rows(parent, allowed) == _rows(sk_parent, allowed)


def test_root_reads_the_builders_state_like_sklearn():
    """A whole-size call after a smaller one reads the partly overwritten ordered buffers
    in sklearn; the drop-in shares sklearn's buffers, so it reads the same."""
    rng = np.random.default_rng(1)
    X = np.asfortranarray(rng.integers(0, 4, (50, 3)).astype(np.uint8))
    g = rng.standard_normal(50).astype(np.float32)
    h = rng.random(50).astype(np.float32)
    sk = HistogramBuilder(X, 4, g, h, False, 1)
    ours = _tune_hist.FastHistogramBuilder(X, 4, g, h, False, 1)
    sub = np.array([7, 3, 30, 2], dtype=np.uint32)
    root = np.arange(50, dtype=np.uint32)
    for b in (sk, ours):
        b.compute_histograms_brute(sub)
    assert (_tune_hist._as_array(sk.compute_histograms_brute(root)).tobytes()
            == _tune_hist._as_array(ours.compute_histograms_brute(root)).tobytes())
    assert ours.hessians_are_constant == sk.hessians_are_constant
    assert ours.n_bins == 4 and ours.n_features == 3


def test_bad_arguments_are_refused():
    X = np.asfortranarray(np.zeros((4, 2), np.uint8))
    g = np.zeros(4, np.float32)
    out = np.zeros((2, 3), HISTOGRAM_DTYPE)
    idx = np.arange(2, dtype=np.uint32)
    ok = dict(X_binned=X, gradients=g, hessians=g, hessians_constant=False,
              ordered_gradients=g.copy(), ordered_hessians=g.copy(), sample_indices=idx,
              allowed_features=None, out=out, n_threads=1)
    _core._hist_brute(**ok)
    bad = [
        ({"X_binned": np.ascontiguousarray(np.zeros((4, 2), np.uint8))}, ValueError),
        ({"X_binned": X.astype(np.uint16)}, TypeError),
        ({"gradients": g.astype(np.float64)}, TypeError),
        ({"gradients": np.zeros(3, np.float32)}, ValueError),
        ({"sample_indices": np.array([0, 9], np.uint32)}, ValueError),
        ({"sample_indices": idx.astype(np.int64)}, TypeError),
        ({"allowed_features": np.array([5], np.uint32)}, ValueError),
        ({"out": np.zeros((2, 3), np.float64)}, TypeError),
        ({"out": np.zeros((3, 3), HISTOGRAM_DTYPE)}, ValueError),
        ({"X_rows": np.zeros((4, 2), np.uint8, order="F")}, ValueError),
        ({"X_rows": np.zeros((4, 3), np.uint8)}, ValueError),
        ({"X_rows": np.zeros((4, 2), np.int8)}, TypeError),
        ({"rows_below": -1}, ValueError),
        ({"root_counts": np.zeros((2, 255), np.uint32)}, ValueError),
        ({"root_counts": np.zeros((2, 256), np.int64)}, TypeError),
        ({"ordered_gradients": np.zeros(3, np.float32)}, ValueError),
    ]
    for change, exc in bad:
        with pytest.raises(exc):
            _core._hist_brute(**{**ok, **change})
    with pytest.raises(ValueError):
        _core._hist_subtract(out, np.zeros((2, 4), HISTOGRAM_DTYPE), None)
    frozen = out.copy()
    frozen.flags.writeable = False
    with pytest.raises(ValueError):
        _core._hist_subtract(frozen, out, None)
    # the drop-in's constructor refuses what sklearn's refuses, with sklearn's error
    with pytest.raises(ValueError):
        _tune_hist.FastHistogramBuilder(np.zeros((4, 2), np.uint8), 3, g, g, False, 1)


# -- whole models ------------------------------------------------------------------------

def _data(n=1500, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 8))
    X[rng.random(X.shape) < 0.08] = np.nan
    X[:, 2] = rng.integers(0, 6, n)
    X[:, 5] = rng.integers(0, 2, n)  # a one-hot-like column
    y = (np.nan_to_num(X[:, 0]) + 0.5 * X[:, 5] + rng.standard_normal(n) > 0).astype(int)
    y3 = (y + (np.nan_to_num(X[:, 1]) > 0.7)).astype(int)
    yr = np.nan_to_num(X[:, 0]) * 2 + rng.standard_normal(n)
    return X, y, y3, yr


def _same_model(a, b):
    assert len(a._predictors) == len(b._predictors)
    for pa, pb in zip(a._predictors, b._predictors):
        for ta, tb in zip(pa, pb):
            assert ta.nodes.tobytes() == tb.nodes.tobytes()
            assert ta.binned_left_cat_bitsets.tobytes() == tb.binned_left_cat_bitsets.tobytes()
            assert ta.raw_left_cat_bitsets.tobytes() == tb.raw_left_cat_bitsets.tobytes()


_MODELS = [
    ("binary", HistGradientBoostingClassifier(max_iter=12, random_state=0)),
    ("multiclass", HistGradientBoostingClassifier(max_iter=6, random_state=0,
                                                  l2_regularization=1.0)),
    ("categorical", HistGradientBoostingClassifier(max_iter=8, random_state=0,
                                                   categorical_features=[2])),
    ("shape", HistGradientBoostingClassifier(max_iter=8, random_state=0, max_leaf_nodes=7,
                                             max_depth=3, min_samples_leaf=40, max_bins=31)),
    ("interaction", HistGradientBoostingClassifier(max_iter=8, random_state=0,
                                                   interaction_cst=[[0, 1], [2, 3, 5]])),
    ("regressor", HistGradientBoostingRegressor(max_iter=10, random_state=0)),
    ("regressor-abs", HistGradientBoostingRegressor(max_iter=6, random_state=0,
                                                    loss="absolute_error")),
    ("early-stopping", HistGradientBoostingClassifier(max_iter=15, random_state=0,
                                                      early_stopping=True,
                                                      validation_fraction=0.2,
                                                      n_iter_no_change=3)),
]


@pytest.mark.parametrize("name,est", _MODELS, ids=[m[0] for m in _MODELS])
def test_fit_with_the_drop_in_grows_sklearns_trees(name, est, counted):
    X, y, y3, yr = _data()
    target = {"multiclass": y3}.get(name, yr if name.startswith("regressor") else y)
    plain = clone(est).fit(X, target)
    with _tune_hist.enabled():
        fast = clone(est).fit(X, target)
    assert counted, "the native kernel was not used"
    _same_model(plain, fast)
    assert plain._raw_predict(X).tobytes() == fast._raw_predict(X).tobytes()
    if hasattr(plain, "predict_proba"):
        assert plain.predict_proba(X).tobytes() == fast.predict_proba(X).tobytes()
    assert grower.HistogramBuilder is HistogramBuilder
    assert not _tune_hist._disabled


def test_other_threads_keep_sklearns_builder(counted):
    X, y, _, _ = _data(400)
    seen = {}
    entered, release = threading.Event(), threading.Event()

    def other():
        entered.wait()
        b = grower.HistogramBuilder(np.asfortranarray(np.zeros((3, 1), np.uint8)), 2,
                                    np.zeros(3, np.float32), np.ones(1, np.float32), True, 1)
        seen["type"] = type(b)
        release.set()

    t = threading.Thread(target=other)
    t.start()
    with _tune_hist.enabled():
        entered.set()
        release.wait()
        HistGradientBoostingClassifier(max_iter=2).fit(X, y)
    t.join()
    assert seen["type"] is HistogramBuilder
    assert counted
    assert grower.HistogramBuilder is HistogramBuilder


def test_swap_is_undone_after_an_exception():
    X, y, _, _ = _data(200)
    with pytest.raises(ValueError):
        with _tune_hist.enabled():
            assert grower.HistogramBuilder is not HistogramBuilder
            HistGradientBoostingClassifier(max_iter=2).fit(X, y[:10])
    assert grower.HistogramBuilder is HistogramBuilder
    assert getattr(_tune_hist._local, "depth", 0) == 0


@pytest.mark.parametrize("where", ["brute", "subtract"])
def test_self_check_turns_the_drop_in_off_and_keeps_fits_exact(where, monkeypatch):
    X, y, _, _ = _data()
    name = "_hist_brute" if where == "brute" else "_hist_subtract"
    orig = getattr(_core, name)

    def wrong(*a, **k):
        orig(*a, **k)
        out = a[8] if where == "brute" else a[0]
        out["sum_gradients"][0, 0] += 1e-9  # one bin is off

    monkeypatch.setattr(_core, name, wrong)
    est = HistGradientBoostingClassifier(max_iter=5, random_state=0)
    plain = clone(est).fit(X, y)
    with pytest.warns(RuntimeWarning, match="native HistGradientBoosting histograms are off"):
        with _tune_hist.enabled():
            fast = clone(est).fit(X, y)
    _same_model(plain, fast)
    assert _tune_hist._disabled
    assert not _tune_hist.applicable(est)
    assert grower.HistogramBuilder is HistogramBuilder


# -- forgeline.tune ----------------------------------------------------------------------

def _frame(n=600, seed=2):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.standard_normal(n), "b": rng.standard_normal(n),
                      "k": rng.choice(["x", "y", "z", "w"], n)})
    X.loc[rng.random(n) < 0.1, "b"] = np.nan
    y = ((X["a"] + (X["k"] == "y")) + 0.5 * rng.standard_normal(n) > 0.5).astype(int)
    return X, y.to_numpy()


def _pipe():
    ct = ColumnTransformer([
        ("num", SimpleImputer(strategy="median"), ["a", "b"]),
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["k"]),
    ])
    return Pipeline([("ct", ct), ("model", HistGradientBoostingClassifier(
        max_iter=8, early_stopping=False, random_state=0))])


_SPACE = {"ct__num__strategy": ["median", "mean"], "model__learning_rate": [0.1, 0.3],
          "model__max_leaf_nodes": [7, 15]}


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_search_equals_gridsearchcv(n_jobs, counted):
    X, y = _frame()
    cv = StratifiedKFold(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gs = GridSearchCV(_pipe(), _SPACE, cv=cv, scoring="roc_auc").fit(X, y)
        res = tune.search(_pipe(), _SPACE, X, y, cv=cv, scoring="roc_auc", n_jobs=n_jobs,
                          progress=False)
    ours = {repr(sorted(p.items())): s for p, s in zip(res.trials_["params"],
                                                       res.trials_["mean_score"])}
    for p, s in zip(gs.cv_results_["params"], gs.cv_results_["mean_test_score"]):
        assert np.float64(ours[repr(sorted(p.items()))]).tobytes() == np.float64(s).tobytes()
    assert res.best_params_ == gs.best_params_
    assert counted
    assert grower.HistogramBuilder is HistogramBuilder
    assert not _tune_hist._disabled


def test_search_undoes_the_swap_when_a_fit_fails(monkeypatch):
    X, y = _frame(200)
    orig = HistGradientBoostingClassifier.fit

    def failing(self, *a, **k):
        assert grower.HistogramBuilder is not HistogramBuilder  # the drop-in is in place
        raise RuntimeError("boom")

    monkeypatch.setattr(HistGradientBoostingClassifier, "fit", failing)
    with pytest.raises(Exception):
        tune.search(_pipe(), {"model__learning_rate": [0.1]}, X, y, cv=KFold(2),
                    scoring="roc_auc", n_jobs=1, progress=False)
    monkeypatch.setattr(HistGradientBoostingClassifier, "fit", orig)
    assert grower.HistogramBuilder is HistogramBuilder


def test_matrix_copies_and_counts_are_kept_per_matrix():
    X = np.asfortranarray(np.arange(12, dtype=np.uint8).reshape(4, 3))
    X.flags.writeable = False  # the tuner's cached binned folds are read-only
    a = _tune_hist._matrix_aux(X)
    assert a is _tune_hist._matrix_aux(X)
    assert a[0].flags.c_contiguous and np.array_equal(a[0], X)
    assert a[1].shape == (3, 256) and a[1].dtype == np.uint32
    assert np.array_equal(a[1][1, :12], [0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0])
    del X, a
    assert not any(ref() is not None and aux[0].shape == (4, 3)
                   for ref, aux in _tune_hist._rows_shared.values())
    W = np.asfortranarray(np.zeros((5, 2), np.uint8))  # writable: only inside one block
    with _tune_hist.enabled():
        b = _tune_hist._matrix_aux(W)
        assert b is _tune_hist._matrix_aux(W)
    assert _tune_hist._local.rows is None
    with _tune_hist.enabled():
        assert _tune_hist._matrix_aux(W) is not b


def test_out_of_range_bins_stay_inside_the_histogram_on_every_path():
    """sklearn's binning never produces a bin >= n_bins (sklearn would write past the row);
    here they are clamped into the last bin, the same on every path, and nothing else moves."""
    rng = np.random.default_rng(3)
    X = np.asfortranarray(rng.integers(0, 256, (200, 9)).astype(np.uint8))
    g = rng.standard_normal(200).astype(np.float32)
    h = rng.random(200).astype(np.float32)
    counts = np.stack([np.bincount(X[:, f], minlength=256) for f in range(9)]).astype(np.uint32)
    rows = np.ascontiguousarray(X)
    for idx in (np.arange(200, dtype=np.uint32), np.array([5, 1, 7], dtype=np.uint32)):
        outs = []
        for extra in ((None, 32, None), (rows, 10**6, counts)):
            out = np.zeros((9, 4), HISTOGRAM_DTYPE)
            _core._hist_brute(X, g, h, False, g.copy(), h.copy(), idx, None, out, 1, *extra)
            outs.append(out.tobytes())
        assert outs[0] == outs[1]
        assert int(np.frombuffer(outs[0], HISTOGRAM_DTYPE)["count"].sum()) == 9 * len(idx)


def test_refit_uses_the_drop_in_and_equals_a_plain_fit(counted):
    X, y = _frame()
    runs = {}
    for refit in (False, True):
        counted.clear()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = tune.search(_pipe(), {"model__learning_rate": [0.1, 0.3]}, X, y,
                              cv=KFold(2), scoring="roc_auc", n_jobs=1, progress=False,
                              refit=refit)
        runs[refit] = len(counted)
    assert 0 < runs[False] < runs[True]  # the refit's histograms are native too
    plain = _pipe().set_params(**res.best_params_).fit(X, y)
    _same_model(res.best_estimator_[-1], plain[-1])
    assert (res.best_estimator_.predict_proba(X).tobytes()
            == plain.predict_proba(X).tobytes())
    assert grower.HistogramBuilder is HistogramBuilder
