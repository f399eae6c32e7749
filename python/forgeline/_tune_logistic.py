"""Lockstep ``LogisticRegression`` fits in :mod:`forgeline.tune`: the candidates of one
``(fold, prefix)`` unit share one read of the training matrix per lbfgs evaluation.

A grid over ``C`` (or any other model parameter) fits the same fold matrix again and again.
Each of sklearn's lbfgs evaluations (``LinearModelLoss.loss_gradient``) reads the whole CSR
matrix twice (``X @ w``, then ``X.T @ g``) and runs the pointwise loss in between; the
matrix reads are about 70% of a fit. Here the unit's fits run side by side, one thread each,
and every evaluation waits at a barrier until each fit still running has asked for one. The
last to arrive runs one native pass over X for all of them
(``_core._half_binomial_many``), in which lane ``c`` does exactly fit ``c``'s arithmetic in
sklearn's and scipy's order (see ``cpp/include/forgeline/fit_logistic.hpp``). Each fit's
lbfgs therefore sees the same numbers it would alone (to the bit; only a NaN's sign and
payload may differ, which nothing downstream can observe), takes the same steps and ends with
bit-identical coefficients, scores and best candidate as ``GridSearchCV``.

How the fits reach the pass: while any unit runs in lockstep, the ``LinearModelLoss`` name
in ``sklearn.linear_model._logistic`` points at a subclass whose ``loss_gradient`` hands the
request to the calling thread's group. Everything else (another thread's fit, a multiclass
or dense problem, float32, a different matrix) takes sklearn's own method unchanged.

Self-check: the first few passes of every group also evaluate one of their fits with
sklearn's own method and compare every bit. A difference (a future scipy or sklearn that
sums in another order, another libm) turns lockstep off for the process with a warning,
and that pass's fits take sklearn's own numbers, so results stay exact either way.
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np

from ._sklearn_swap import ModuleSwap, turn_off

_local = threading.local()  # .member: this thread's _Member while its model fits
_disabled: list = []  # the self-check's finding, once lockstep is off for the process
_CHECKED_PASSES = 3  # per group: passes that also run sklearn's own evaluation of one lane
_LANES = 8  # the native pass pads its lanes to a multiple of this


class _Aborted(BaseException):
    """Raised inside a waiting fit when its group is torn down (Ctrl-C in the unit)."""


def applicable(task) -> bool:
    """Whether ``task``'s units may run their fits in lockstep: a plain sklearn
    ``LogisticRegression`` final model, cold starts (no warm-start path), and the
    self-check has not turned lockstep off."""
    if _disabled or task.warm_path is not None:
        return False
    est = task.estimator
    final = est.steps[-1][1] if task.split.final else est
    try:
        from sklearn.linear_model import LogisticRegression
        from sklearn.linear_model import _logistic  # noqa: F401 - the patched module
        from sklearn.linear_model._linear_loss import LinearModelLoss  # noqa: F401
    except ImportError:  # pragma: no cover - private paths moved in a future sklearn
        return False
    return type(final) is LogisticRegression


class _Request:
    __slots__ = ("loss", "coef", "X", "y", "sample_weight", "l2", "n_threads", "result",
                 "fallback")

    def __init__(self, loss, coef, X, y, sample_weight, l2, n_threads):
        self.loss, self.coef, self.X, self.y = loss, coef, X, y
        self.sample_weight, self.l2, self.n_threads = sample_weight, l2, n_threads
        self.result = None
        self.fallback = False  # set when the pass did not serve this request


class Group:
    """The barrier and the batch of one unit's fits. ``size`` members are counted from the
    start, so a fit still fitting its prefix holds the batch until it arrives or leaves."""

    def __init__(self, size: int):
        self._cv = threading.Condition()
        self._active = int(size)
        self._pending: list[_Request] = []
        self._X = None  # the matrix this group's passes read (checked once)
        self._y = None
        self._sw = None
        self._bufs: list = []
        self._unique = False  # rows' column indices strictly increase (checked once)
        self.broken = None  # why the group stopped batching (requests then fall back)
        self.passes = 0  # native passes run (the first few are self-checked)

    def member(self) -> "_Member":
        return _Member(self)

    # -- member side ------------------------------------------------------------------
    def _leave(self):
        with self._cv:
            self._leave_locked()

    def _leave_locked(self):
        self._active -= 1
        self._run_if_ready()  # the others may all be waiting for this fit

    def _evaluate(self, member: "_Member", req: _Request) -> _Request:
        with self._cv:
            if self.broken == "aborted":
                raise _Aborted()
            if self.broken is None and not self._joins(member, req):
                # another matrix or labels: this fit goes on alone and stops holding the
                # others' passes
                member._left = True
                self._leave_locked()
                req.fallback = True
                return req
            if self.broken is not None:
                req.fallback = True
                return req
            self._pending.append(req)
            self._run_if_ready()
            while req.result is None and not req.fallback:
                if self.broken == "aborted":
                    raise _Aborted()
                self._cv.wait()
        return req

    def abort(self):
        with self._cv:
            self.broken = "aborted"
            self._cv.notify_all()

    # -- batching (under self._cv) ----------------------------------------------------
    def _joins(self, member: "_Member", req: _Request) -> bool:
        """Same matrix, labels and weights as the group's first request (else this fit
        evaluates alone). A fit passes the same label and weight arrays at every
        evaluation, so each member compares its own only once."""
        if member._seen is not None and member._seen == (id(req.X), id(req.y),
                                                           id(req.sample_weight)):
            return True
        ok = self._first_or_same(req)
        if ok:  # _held keeps the objects alive, so their ids cannot be reused
            member._seen = (id(req.X), id(req.y), id(req.sample_weight))
            member._held = (req.X, req.y, req.sample_weight)
        return ok

    def _first_or_same(self, req: _Request) -> bool:
        if self._X is None:
            from . import _core
            X = req.X
            problem, increasing = _core._csr_check(X.indptr, X.indices, X.data, X.shape[1])
            if problem:
                return False  # inconsistent CSR: sklearn's own path reports it
            self._X, self._y, self._sw = X, req.y, req.sample_weight
            self._unique = increasing
            return True
        if req.X is not self._X:
            return False
        if req.y is not self._y and not np.array_equal(req.y, self._y):
            return False
        if req.sample_weight is None or self._sw is None:
            return req.sample_weight is None and self._sw is None
        return req.sample_weight is self._sw or np.array_equal(req.sample_weight, self._sw)

    def _run_if_ready(self):
        if not self._pending or len(self._pending) < self._active:
            return
        batch, self._pending = self._pending, []
        if len(batch) == 1:
            # a lone fit (the others have stopped): sklearn's own evaluation is faster than
            # a pass padded to eight lanes (7.8 vs about 13 ms on the T2 fold), same bits
            batch[0].fallback = True
            self._cv.notify_all()
            return
        try:
            self._run(batch)
        except BaseException as exc:  # the fits take sklearn's own path from here on
            self.broken = f"{type(exc).__name__}: {exc}"
            for r in batch:
                r.fallback = True
        self._cv.notify_all()

    def _run(self, batch: list[_Request]):
        from . import _core
        X = self._X
        n, d = X.shape
        k = len(batch)
        lanes = -(-k // _LANES) * _LANES
        W = np.zeros((d, lanes))
        b = np.zeros(k)
        for c, r in enumerate(batch):
            W[:, c] = r.coef[:d]
            if r.loss.fit_intercept:
                b[c] = r.coef[-1]
        sw = self._sw
        sw_sum = n if sw is None else np.sum(sw)
        # reused from pass to pass: only their sums leave this method (fresh arrays every
        # pass cost about as much in page faults as the loss itself)
        while len(self._bufs) < 2 * k:
            self._bufs.append(np.empty(n))
        loss_out, grad_out = self._bufs[:k], self._bufs[k:2 * k]
        XG = np.empty((d, lanes))
        _core._half_binomial_many(X.indptr, X.indices, X.data, d, W, b, self._y, sw,
                                  float(sw_sum), loss_out, grad_out, XG, self._unique)
        results = []
        for c, r in enumerate(batch):
            # the rest of sklearn's LinearModelLoss.loss_gradient, as it writes it
            weights = r.coef[:d]
            loss = float(np.sum(loss_out[c]) / sw_sum)
            loss += r.loss.l2_penalty(weights, r.l2)
            grad = np.empty_like(r.coef, dtype=weights.dtype)
            grad[:d] = XG[:, c] + r.l2 * weights
            if r.loss.fit_intercept:
                grad[-1] = np.sum(grad_out[c])
            results.append((loss, grad))
        if self.passes < _CHECKED_PASSES:
            c = self.passes % k
            r = batch[c]
            ref = _SWAP.original.loss_gradient(r.loss, r.coef, r.X, r.y, r.sample_weight,
                                               r.l2, r.n_threads)
            if not _same_bits(ref, results[c]):
                _turn_off("the native logistic pass differs from sklearn's own "
                          "LinearModelLoss.loss_gradient in this environment")
                self.broken = "self-check"
                for r in batch:
                    r.fallback = True
                return
        self.passes += 1
        for r, res in zip(batch, results):
            r.result = res


class _Member:
    """One fit's seat in a group: ``with member.fitting():`` around its ``fit``; leaving
    (at the end of the fit, or through :meth:`close` when the fit never started) is
    idempotent."""

    def __init__(self, group: Group):
        self.group = group
        self._left = False
        self._seen = None  # ids of the (X, y, sample_weight) this member already matched
        self._held = None

    @contextlib.contextmanager
    def fitting(self):
        _local.member = self
        try:
            with _SWAP.active():
                yield
        finally:
            _local.member = None
            self.close()

    def close(self):
        with self.group._cv:
            if self._left:
                return
            self._left = True
        self.group._leave()


def current_member() -> _Member | None:
    return getattr(_local, "member", None)


def same_values(a, b) -> bool:
    """Equal bits, except that any NaN equals any NaN: the sign and payload a NaN picks up
    depend on which operand the compiler put first, and no later step can tell them apart
    (lbfgs stops on a NaN either way)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return False
    na, nb = np.isnan(a), np.isnan(b)
    if not np.array_equal(na, nb):
        return False
    return a[~na].tobytes() == b[~nb].tobytes()


def _same_bits(a, b) -> bool:
    (la, ga), (lb, gb) = a, b
    return (isinstance(ga, np.ndarray) and ga.dtype == gb.dtype and same_values(la, lb)
            and same_values(ga, gb))


def _turn_off(why: str):
    turn_off(_disabled, "lockstep LogisticRegression fits", why,
             "the fits run one by one with sklearn's own loss")


def _serves(loss, coef, X, y, sample_weight, raw_prediction) -> bool:
    """The cases the native pass reproduces bit for bit; anything else is sklearn's."""
    import scipy.sparse as sp
    from sklearn._loss.loss import HalfBinomialLoss
    if raw_prediction is not None or type(loss.base_loss) is not HalfBinomialLoss:
        return False
    if not (sp.issparse(X) and X.format == "csr" and X.data.dtype == np.float64
            and X.indices.dtype == X.indptr.dtype
            and X.indices.dtype in (np.int32, np.int64)
            and X.data.flags.c_contiguous and X.indices.flags.c_contiguous
            and X.indptr.flags.c_contiguous and X.data.ndim == 1
            and X.indices.shape == X.data.shape):
        return False
    n, d = X.shape
    if not (isinstance(coef, np.ndarray) and coef.dtype == np.float64 and coef.ndim == 1
            and coef.shape[0] == d + int(loss.fit_intercept)):
        return False
    if not (isinstance(y, np.ndarray) and y.dtype == np.float64 and y.shape == (n,)
            and y.flags.c_contiguous):
        return False
    if sample_weight is not None and not (
            isinstance(sample_weight, np.ndarray) and sample_weight.dtype == np.float64
            and sample_weight.shape == (n,) and sample_weight.flags.c_contiguous):
        return False
    return True


def _make_subclass(base):
    class LockstepLinearModelLoss(base):
        """sklearn's LinearModelLoss; a fit running in a forgeline lockstep group gets its
        binary CSR evaluations from the group's shared native pass (same bits)."""

        def loss_gradient(self, coef, X, y, sample_weight=None, l2_reg_strength=0.0,
                          n_threads=1, raw_prediction=None):
            m = current_member()
            if (m is not None and not m._left and not _disabled
                    and _serves(self, coef, X, y, sample_weight, raw_prediction)):
                req = m.group._evaluate(m, _Request(self, coef, X, y, sample_weight,
                                                 l2_reg_strength, n_threads))
                if not req.fallback:
                    return req.result
            return super().loss_gradient(coef, X, y, sample_weight=sample_weight,
                                         l2_reg_strength=l2_reg_strength,
                                         n_threads=n_threads, raw_prediction=raw_prediction)

    return LockstepLinearModelLoss


def _logistic_module():
    from sklearn.linear_model import _logistic
    return _logistic


# The subclass stands in for sklearn's LinearModelLoss inside ``_logistic`` while at least
# one lockstep fit runs.
_SWAP = ModuleSwap(_logistic_module, "LinearModelLoss", _make_subclass)
