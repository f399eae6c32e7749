"""Lockstep LogisticRegression fits in forgeline.tune: the shared native pass gives sklearn's
own evaluation bit for bit, and searches that use it equal GridSearchCV exactly."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn._loss.loss import HalfBinomialLoss
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.linear_model import _logistic
from sklearn.linear_model._linear_loss import LinearModelLoss
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import KBinsDiscretizer, OneHotEncoder, StandardScaler

from _tune_data import count_calls, tune_frame
from forgeline import _core, _tune_logistic, tune


def _bits(a) -> bytes:
    return np.asarray(a, dtype=np.float64).tobytes()


def _same(a, b) -> bool:
    """Same bits; any NaN equals any NaN (its sign depends on operand order in compiled
    code, see _tune_logistic.same_values)."""
    return _tune_logistic.same_values(a, b)


def _native(X, coefs, fit_intercept, y, sw):
    """Every coef's (loss, grad) from one native pass, assembled as the group does."""
    n, d = X.shape
    k = len(coefs)
    lanes = -(-k // 8) * 8
    W = np.zeros((d, lanes))
    b = np.zeros(k)
    for c, coef in enumerate(coefs):
        W[:, c] = coef[:d]
        if fit_intercept:
            b[c] = coef[-1]
    sw_sum = n if sw is None else np.sum(sw)
    lo = [np.empty(n) for _ in range(k)]
    gp = [np.empty(n) for _ in range(k)]
    XG = np.empty((d, lanes))
    problem, increasing = _core._csr_check(X.indptr, X.indices, X.data, d)
    assert problem == ""
    _core._half_binomial_many(X.indptr, X.indices, X.data, d, W, b, y, sw, float(sw_sum),
                              lo, gp, XG, increasing)
    return lo, gp, XG, sw_sum


def _assemble(loss_obj, coef, l2, lo, gp, xg, sw_sum, d):
    w = coef[:d]
    loss = float(np.sum(lo) / sw_sum) + loss_obj.l2_penalty(w, l2)
    grad = np.empty_like(coef)
    grad[:d] = xg + l2 * w
    if loss_obj.fit_intercept:
        grad[-1] = np.sum(gp)
    return loss, grad


_VALUES = st.one_of(
    st.floats(-50, 50, allow_nan=False, width=64),
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 1e-300, 5e-324, 1e300, np.nan, np.inf, -np.inf]))


@st.composite
def _problem(draw):
    n = draw(st.integers(1, 40))
    d = draw(st.integers(1, 12))
    density = draw(st.floats(0.0, 1.0))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    mask = rng.random((n, d)) < density
    dense = np.zeros((n, d))
    dense[mask] = rng.normal(scale=draw(st.sampled_from([0.1, 1.0, 30.0])), size=mask.sum())
    specials = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, d - 1), _VALUES),
                             max_size=4))
    for i, j, v in specials:
        dense[i, j] = v
    X = sp.csr_matrix(dense)
    X.data[X.data == 0] = 0.0  # explicit zeros of either sign stay stored
    layout = draw(st.sampled_from(["canonical", "reversed rows", "duplicates"]))
    if layout != "canonical" and X.nnz:
        # scipy sums a row's entries in storage order whatever it is; so must the pass
        rows = [(X.indices[a:b].tolist(), X.data[a:b].tolist())
                for a, b in zip(X.indptr[:-1], X.indptr[1:])]
        if layout == "reversed rows":
            rows = [(ix[::-1], v[::-1]) for ix, v in rows]
        else:
            rows = [(ix + ix[:1], v + [float(rng.normal())] * min(1, len(v))) for ix, v in rows]
        indptr = np.cumsum([0] + [len(ix) for ix, _ in rows])
        X = sp.csr_matrix((np.array([x for _, v in rows for x in v], dtype=np.float64),
                           np.array([j for ix, _ in rows for j in ix], dtype=np.int32),
                           indptr.astype(np.int32)), shape=(n, d))
        X.has_canonical_format = False
    if draw(st.booleans()):
        X.indices = X.indices.astype(np.int64)
        X.indptr = X.indptr.astype(np.int64)
    fit_intercept = draw(st.booleans())
    k = draw(st.integers(1, 19))
    scale = draw(st.sampled_from([0.0, 0.5, 5.0, 60.0]))
    coefs = [rng.normal(scale=scale, size=d + int(fit_intercept)) for _ in range(k)]
    y = (rng.random(n) < 0.5).astype(np.float64)
    sw = None if draw(st.booleans()) else rng.uniform(0.1, 3.0, size=n)
    l2 = draw(st.sampled_from([0.0, 1e-4, 0.3]))
    return X, coefs, fit_intercept, y, sw, l2


@pytest.mark.parametrize("isa", [2, 1, 0])  # AVX-512, AVX2, baseline (where the CPU has it)
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(problem=_problem())
def test_native_pass_is_sklearns_evaluation_bit_for_bit(problem, isa):
    X, coefs, fit_intercept, y, sw, l2 = problem
    _core._set_fit_isa(isa)
    try:
        lo, gp, XG, sw_sum = _native(X, coefs, fit_intercept, y, sw)
    finally:
        _core._set_fit_isa(2)
    obj = LinearModelLoss(HalfBinomialLoss(), fit_intercept=fit_intercept)
    d = X.shape[1]
    for c, coef in enumerate(coefs):
        with np.errstate(all="ignore"):
            ref_loss, ref_grad = obj.loss_gradient(coef, X, y, sw, l2, 1)
            loss, grad = _assemble(obj, coef, l2, lo[c], gp[c], XG[:, c], sw_sum, d)
        assert _same(loss, ref_loss), c
        assert _same(grad, ref_grad), c


def test_every_loss_branch_and_every_copy():
    """raw <= -37, <= -2, <= 18 and beyond, with both labels, in one pass per copy."""
    raws = np.array([-800.0, -37.0, -36.9, -2.0, -1.9, 0.0, 18.0, 18.1, 33.3, 40.0, 800.0])
    n = raws.size * 2
    X = sp.csr_matrix(np.ones((n, 1)))
    y = np.tile([0.0, 1.0], raws.size)
    coefs = [np.array([r, 0.0]) for r in raws]  # w * 1.0 + 0 = raw for every row
    obj = LinearModelLoss(HalfBinomialLoss(), fit_intercept=True)
    out = {}
    for isa in (2, 1, 0):
        _core._set_fit_isa(isa)
        try:
            out[isa] = _native(X, coefs, True, y, None)
        finally:
            _core._set_fit_isa(2)
    for c, coef in enumerate(coefs):
        ref = obj.loss_gradient(coef, X, y, None, 0.0, 1)
        for isa in (2, 1, 0):
            lo, gp, XG, sw_sum = out[isa]
            got = _assemble(obj, coef, 0.0, lo[c], gp[c], XG[:, c], sw_sum, 1)
            assert _bits(got[0]) == _bits(ref[0]) and _bits(got[1]) == _bits(ref[1])


def test_bad_arguments_are_refused():
    X = sp.csr_matrix(np.eye(3))
    y = np.zeros(3)
    W = np.zeros((3, 8))
    ok = dict(W=W, intercepts=np.zeros(1), y=y, sample_weight=None, sw_sum=3.0,
              loss_out=[np.empty(3)], grad_out=[np.empty(3)], XG=np.empty((3, 8)))

    def call(**kw):
        a = {**ok, **kw}
        _core._half_binomial_many(X.indptr, X.indices, X.data, 3, a["W"], a["intercepts"],
                                  a["y"], a["sample_weight"], a["sw_sum"], a["loss_out"],
                                  a["grad_out"], a["XG"])

    call()
    with pytest.raises(ValueError, match="lanes"):
        call(W=np.zeros((3, 7)))
    with pytest.raises(ValueError, match="lanes"):
        call(XG=np.empty((3, 8), dtype=np.float32))
    with pytest.raises(ValueError, match="y has 2 entries"):
        call(y=np.zeros(2))
    with pytest.raises(TypeError, match="dtype"):
        call(y=np.zeros(3, dtype=np.float32))
    with pytest.raises(ValueError, match="loss and gradient"):
        call(grad_out=[])
    ro = np.empty(3)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        call(loss_out=[ro])
    assert _core._csr_check(X.indptr, X.indices, X.data, 3) == ("", True)
    assert "out of range" in _core._csr_check(X.indptr, X.indices, X.data, 2)[0]
    assert "monotone" in _core._csr_check(np.array([0, 2, 1, 3], np.int32), X.indices,
                                            X.data, 3)[0]
    assert "past" in _core._csr_check(np.array([0, 1, 2, 9], np.int32), X.indices, X.data,
                                        3)[0]
    ip = np.array([0, 2, 3, 3], np.int32)
    assert _core._csr_check(ip, np.array([1, 1, 0], np.int32), X.data, 3) == ("", False)
    assert _core._csr_check(ip, np.array([2, 0, 0], np.int32), X.data, 3) == ("", False)


# -- searches ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def data():
    return tune_frame(600, 3, "pqrstu", c_weight=-0.5, noise=0.8, cut=0.3)


def _pipe(sparse=True, max_iter=100):
    ct = ColumnTransformer([
        ("num", Pipeline([("imp", SimpleImputer(strategy="median")),
                          ("sc", StandardScaler())]), ["a", "b"]),
        ("bins", Pipeline([("imp", SimpleImputer(strategy="median")),
                           ("kb", KBinsDiscretizer(n_bins=4, encode="ordinal",
                                                   quantile_method="averaged_inverted_cdf"))]),
         ["c"]),
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=sparse), ["k"]),
    ], sparse_threshold=1.0 if sparse else 0.0)
    return Pipeline([("ct", ct), ("model", LogisticRegression(max_iter=max_iter))])


_SPACE = {"ct__bins__kb__n_bins": [3, 5],
          "model__C": [0.001, 0.03, 1.0, 30.0, 1000.0],
          "model__fit_intercept": [True, False]}


@pytest.fixture
def counted(monkeypatch):
    """Counts the fits served by the native pass (per pass: its number of lanes)."""
    return count_calls(monkeypatch, _core, "_half_binomial_many", lambda a: len(a[9]))


def _grid(X, y, pipe, space, cv):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GridSearchCV(pipe, space, cv=cv, scoring="roc_auc").fit(X, y)


def _same_as_grid(res, gs):
    ours = {repr(sorted(p.items())): s for p, s in zip(res.trials_["params"],
                                                       res.trials_["mean_score"])}
    for p, s in zip(gs.cv_results_["params"], gs.cv_results_["mean_test_score"]):
        assert _bits(ours[repr(sorted(p.items()))]) == _bits(s), p
    assert res.best_params_ == gs.best_params_
    assert _bits(res.best_score_) == _bits(gs.best_score_)


@pytest.mark.parametrize("n_jobs,backend", [(1, "threads"), (2, "threads"), (2, "processes")])
def test_lockstep_search_equals_gridsearchcv(data, counted, n_jobs, backend):
    X, y = data
    cv = StratifiedKFold(3)
    gs = _grid(X, y, _pipe(), _SPACE, cv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = tune.search(_pipe(), _SPACE, X, y, cv=cv, scoring="roc_auc", n_jobs=n_jobs,
                          backend=backend, progress=False)
    _same_as_grid(res, gs)
    if backend == "threads":  # worker processes keep their own counts
        assert sum(counted) > 0 and min(counted) >= 2  # a lone fit takes sklearn's path
    assert _logistic.LinearModelLoss is LinearModelLoss  # sklearn's own class is back
    assert not _tune_logistic._disabled


def test_large_units_split_into_bounded_groups(data, counted, monkeypatch):
    from forgeline import _tune_run
    monkeypatch.setattr(_tune_run, "LOCKSTEP_MAX", 3)
    X, y = data
    space = {"model__C": [0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0]}
    gs = _grid(X, y, _pipe(), space, KFold(2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = tune.search(_pipe(), space, X, y, cv=KFold(2), scoring="roc_auc", n_jobs=1,
                          progress=False)
    _same_as_grid(res, gs)
    assert max(counted) == 3


def test_lockstep_best_estimator_equals_plain_fit(data):
    X, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = tune.search(_pipe(), {"model__C": [0.1, 10.0]}, X, y, cv=KFold(2),
                          scoring="roc_auc", n_jobs=1, progress=False)
        plain = _pipe().set_params(**res.best_params_).fit(X, y)
    assert _bits(res.best_estimator_[-1].coef_) == _bits(plain[-1].coef_)


def test_dense_and_multiclass_fits_take_sklearns_path(data, counted):
    X, y = data
    y3 = y + (X["a"].to_numpy() > 1)  # three classes: the multinomial loss
    space = {"model__C": [0.1, 10.0]}
    for pipe, target in ((_pipe(sparse=False), y), (_pipe(), y3)):
        scoring = "roc_auc" if target is y else "accuracy"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gs = GridSearchCV(pipe, space, cv=KFold(3), scoring=scoring).fit(X, target)
            res = tune.search(pipe, space, X, target, cv=KFold(3), scoring=scoring, n_jobs=2,
                              progress=False)
        assert res.best_params_ == gs.best_params_
        assert _bits(res.best_score_) == _bits(gs.best_score_)
    assert counted == []


def test_portable_copy_search_equals_gridsearchcv(data, counted):
    X, y = data
    space = {"model__C": [0.1, 10.0]}
    gs = _grid(X, y, _pipe(), space, KFold(3))
    _core._set_fit_isa(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = tune.search(_pipe(), space, X, y, cv=KFold(3), scoring="roc_auc", n_jobs=2,
                              progress=False)
    finally:
        _core._set_fit_isa(2)
    _same_as_grid(res, gs)
    assert sum(counted) > 0


def test_self_check_turns_lockstep_off_and_keeps_results_exact(data, monkeypatch):
    X, y = data
    orig = _core._half_binomial_many

    def wrong(*a, **k):
        orig(*a, **k)
        a[11][0, 0] += 1e-9  # XG: the first fit's first gradient entry is off
        return None

    monkeypatch.setattr(_core, "_half_binomial_many", wrong)
    monkeypatch.setattr(_tune_logistic, "_disabled", [])
    space = {"model__C": [0.01, 1.0, 100.0]}
    cv = KFold(3)
    gs = _grid(X, y, _pipe(), space, cv)
    with pytest.warns(RuntimeWarning, match="lockstep LogisticRegression fits are off"):
        res = tune.search(_pipe(), space, X, y, cv=cv, scoring="roc_auc", n_jobs=1,
                          progress=False)
    _same_as_grid(res, gs)
    assert _tune_logistic._disabled
    assert _logistic.LinearModelLoss is LinearModelLoss


def test_a_failing_fit_fails_the_search_and_releases_the_others(data, monkeypatch):
    X, y = data
    orig = LogisticRegression.fit

    def fit(self, *a, **k):
        if self.C == 1.0:
            raise RuntimeError("boom in one candidate")
        return orig(self, *a, **k)

    monkeypatch.setattr(LogisticRegression, "fit", fit)
    with pytest.raises(RuntimeError, match="boom in one candidate"):
        tune.search(_pipe(), {"model__C": [0.01, 1.0, 100.0]}, X, y, cv=KFold(2),
                    scoring="roc_auc", n_jobs=1, progress=False)
    assert _logistic.LinearModelLoss is LinearModelLoss
