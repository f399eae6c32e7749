"""Faster, bit-identical histograms for the ``HistGradientBoosting`` fits of
:mod:`forgeline.tune`.

Most of a HistGradientBoosting fit on a cached binned matrix is sklearn's
``HistogramBuilder.compute_histograms_brute``: per feature and bin, the float32 gradients
and hessians of the node's samples summed into float64 in sample order. sklearn walks one
feature at a time, and consecutive samples that land in the same bin (nearly all of them in
a one-hot column) chain each addition on the previous one's store, so the loop runs at
memory latency; and a small node's rows are scattered over the column-major matrix, so each
(sample, feature) read is a cache miss. ``_core._hist_brute`` walks eight columns at once
(the root and large nodes) or, for nodes under 1/32 of the rows, reads a row-major copy of
the binned matrix (made once per matrix, see :func:`_matrix_aux`) a sample at a time; the
root takes its counts from the matrix's column bin counts, counted once. Either
way every (feature, bin) sum receives exactly sklearn's addends in sklearn's order, so the
histograms have the same bits, while the independent chains overlap (see
``cpp/include/forgeline/fit_hist.hpp``). Same histograms -> same splits, same leaf values,
same trees and predictions.

How fits reach it: inside :func:`histograms_for` (used around the tuner's fold fits), the
``HistogramBuilder`` name in ``sklearn.ensemble._hist_gradient_boosting.grower`` points at
:func:`_dispatch`, which gives the calling thread's growers a :class:`FastHistogramBuilder`
and every other thread sklearn's own class. The swap is reference-counted across threads
and undone when the last fit leaves (also on an exception).

:class:`FastHistogramBuilder` wraps one of sklearn's own builders: sklearn validates the
arguments, owns the ``ordered_gradients`` / ``ordered_hessians`` state (the native kernel
gathers into the very same buffers) and answers every call the native kernel does not
reproduce (another dtype or layout, non-array arguments).

Self-check: the first few histograms and subtractions of the process are also computed by
sklearn's builder and compared byte for byte. A difference turns the drop-in off for the
process with a ``RuntimeWarning``, and that call returns sklearn's result, so fits stay
exact either way.
"""

from __future__ import annotations

import collections
import contextlib
import threading
import weakref

import numpy as np

from ._sklearn_swap import ModuleSwap, turn_off

_local = threading.local()  # .depth > 0 while this thread's fits use the drop-in
_disabled: list = []  # the self-check's finding, once the drop-in is off for the process
_CHECKS = 6  # per process: brute histograms (and as many subtractions) compared to sklearn's
_checks_left = {"brute": _CHECKS, "subtract": _CHECKS}
_check_lock = threading.Lock()
_rows_lock = threading.Lock()
_rows_shared: collections.OrderedDict = collections.OrderedDict()  # id(X) -> (weakref, aux)
_ROWS_KEPT = 4  # _matrix_aux of read-only matrices kept at once (one per live fold)


def _sklearn_builder():
    from sklearn.ensemble._hist_gradient_boosting.histogram import HistogramBuilder
    return HistogramBuilder


def _histogram_dtype():
    from sklearn.ensemble._hist_gradient_boosting.common import HISTOGRAM_DTYPE
    return HISTOGRAM_DTYPE


def applicable(model) -> bool:
    """Whether ``model``'s fit may use the drop-in: a HistGradientBoosting estimator whose
    private sklearn paths are where this module expects them, and the self-check has not
    turned the drop-in off."""
    if _disabled:
        return False
    try:
        from sklearn.ensemble._hist_gradient_boosting import grower  # noqa: F401
        from sklearn.ensemble._hist_gradient_boosting.gradient_boosting import (
            BaseHistGradientBoosting,
        )
        _sklearn_builder()
        _histogram_dtype()
    except ImportError:  # pragma: no cover - private paths moved in a future sklearn
        return False
    return isinstance(model, BaseHistGradientBoosting) and hasattr(grower, "HistogramBuilder")


@contextlib.contextmanager
def histograms_for(model):
    """Context manager around ``model.fit``: its trees get their histograms from the native
    kernel when :func:`applicable`, else nothing changes.

    Parameters
    ----------
    model : estimator
        The model about to be fitted on the calling thread.
    """
    if not applicable(model):
        yield
        return
    with enabled():
        yield


def _grower_module():
    from sklearn.ensemble._hist_gradient_boosting import grower
    return grower


@contextlib.contextmanager
def enabled():
    """Growers created on the calling thread inside this block use
    :class:`FastHistogramBuilder`; other threads keep sklearn's class."""
    _local.depth = getattr(_local, "depth", 0) + 1
    if _local.depth == 1:
        _local.rows = {}
    try:
        with _SWAP.active():
            yield
    finally:
        _local.depth -= 1
        if _local.depth == 0:
            _local.rows = None


def _matrix_aux(X):
    """``(rows, counts)`` for the binned matrix ``X``, made once per matrix: a C-ordered copy
    (nodes below the root read their scattered rows from it) and each column's bin counts
    as a (n_features, 256) uint32 array (the root's counts, which no tree changes).
    Read-only matrices (the tuner's cached binned folds, which nothing can change) keep
    theirs in a small process-wide LRU, dropped with the matrix; a writable matrix keeps
    them only until the thread's outermost :func:`enabled` block ends (sklearn does not
    change X_binned during a fit)."""
    key = id(X)
    with _rows_lock:
        hit = _rows_shared.get(key)
        if hit is not None and hit[0]() is X and not X.flags.writeable:
            _rows_shared.move_to_end(key)
            return hit[1]
    local = getattr(_local, "rows", None)
    if local is not None:
        hit = local.get(key)
        if hit is not None and hit[0]() is X:
            return hit[1]
    counts = np.empty((X.shape[1], 256), dtype=np.uint32)
    for f in range(X.shape[1]):
        counts[f] = np.bincount(X[:, f], minlength=256)
    aux = (np.ascontiguousarray(X), counts)
    if not X.flags.writeable:
        def _drop(_ref, key=key):
            with _rows_lock:
                entry = _rows_shared.get(key)
                if entry is not None and entry[0] is _ref:
                    del _rows_shared[key]
        ref = weakref.ref(X, _drop)
        with _rows_lock:
            _rows_shared[key] = (ref, aux)
            while len(_rows_shared) > _ROWS_KEPT:
                _rows_shared.popitem(last=False)
    elif local is not None:
        local[key] = (weakref.ref(X), aux)
    return aux


def _dispatch(X_binned, n_bins, gradients, hessians, hessians_are_constant, n_threads):
    """Stands in for sklearn's HistogramBuilder class inside ``grower`` (same call)."""
    base = _SWAP.original if _SWAP.original is not None else _sklearn_builder()
    if getattr(_local, "depth", 0) <= 0 or _disabled:
        return base(X_binned, n_bins, gradients, hessians, hessians_are_constant, n_threads)
    return FastHistogramBuilder(X_binned, n_bins, gradients, hessians, hessians_are_constant,
                                n_threads)


# _dispatch stands in for grower's HistogramBuilder while at least one enabled() block runs.
_SWAP = ModuleSwap(_grower_module, "HistogramBuilder", lambda original: _dispatch)


def _serves_inputs(X_binned, n_bins, gradients, hessians, constant) -> bool:
    """The builder arguments the native kernel reproduces; anything else is sklearn's."""
    if not (isinstance(X_binned, np.ndarray) and X_binned.dtype == np.uint8
            and X_binned.ndim == 2 and X_binned.flags.f_contiguous):
        return False
    n = X_binned.shape[0]
    if not (0 <= int(n_bins) <= 256):
        return False
    for a in (gradients, hessians):
        if not (isinstance(a, np.ndarray) and a.dtype == np.float32 and a.ndim == 1
                and a.flags.c_contiguous):
            return False
    if gradients.shape[0] != n:
        return False
    return constant or hessians.shape[0] == n


def _is_hist(a, n_features: int, n_bins: int) -> bool:
    return (isinstance(a, np.ndarray) and a.dtype == _histogram_dtype()
            and a.shape == (n_features, n_bins) and a.flags.c_contiguous
            and a.flags.writeable)


def _u32(a, contiguous: bool):
    """A uint32 ndarray view of ``a`` (an ndarray or a buffer such as the Cython memoryviews
    the grower passes), made contiguous unless ``contiguous`` requires it already to be, or
    None when the native path should not take it (sklearn's own method then answers)."""
    try:
        v = a if isinstance(a, np.ndarray) else np.asarray(memoryview(a))
    except TypeError:
        return None
    if v.dtype != np.uint32 or v.ndim != 1:
        return None
    if not v.flags.c_contiguous:
        if contiguous:
            return None
        v = np.ascontiguousarray(v)
    return v


def _take_check(kind: str) -> bool:
    with _check_lock:
        if _checks_left[kind] > 0:
            _checks_left[kind] -= 1
            return True
        return False


def _turn_off(why: str):
    turn_off(_disabled, "native HistGradientBoosting histograms", why,
             "the fits use sklearn's own HistogramBuilder")


def _as_array(h):
    """The ndarray behind one of sklearn's returned histogram memoryviews (numpy cannot
    read a one-record packed memoryview's format, so take the base array when it is it)."""
    if isinstance(h, np.ndarray):
        return h
    base = getattr(h, "base", None)
    if isinstance(base, np.ndarray) and base.shape == tuple(h.shape):
        return base
    return np.asarray(h)


def _same_rows(a, b, rows) -> bool:
    """Byte equality of the histogram rows sklearn defines (all, or the allowed features:
    sklearn leaves the others uninitialised)."""
    a = _as_array(a)
    b = _as_array(b)
    if a.shape != b.shape or a.dtype.itemsize != b.dtype.itemsize:
        return False
    if rows is not None:
        a, b = a[rows], b[rows]
    return a.tobytes() == b.tobytes()


class FastHistogramBuilder:
    """sklearn's ``HistogramBuilder`` with the native, bit-identical histogram kernel.

    Same constructor and calls as sklearn's class. Attributes it does not define
    (``hessians``, ``gradients``, ``ordered_gradients``, ``n_bins``, ``n_features``,
    ``hessians_are_constant``, ``n_threads``, ``X_binned``) are sklearn's builder's own
    objects, so code reading them (``grower.py`` reads ``hessians[0]``) sees exactly what
    it would without the drop-in.

    Parameters
    ----------
    X_binned : ndarray of uint8, shape (n_samples, n_features), Fortran order
        The binned training data.
    n_bins : int
        Bins per histogram, the missing-values bin included.
    gradients, hessians : ndarray of float32
        The samples' gradients and hessians (``hessians`` has one entry when constant).
    hessians_are_constant : bool
        Whether the hessians are constant.
    n_threads : int
        Threads for the feature loop (results do not depend on it).
    """

    def __init__(self, X_binned, n_bins, gradients, hessians, hessians_are_constant,
                 n_threads):
        # sklearn's builder validates the arguments (same errors) and owns the state
        self._ref = _sklearn_builder()(X_binned, n_bins, gradients, hessians,
                                       hessians_are_constant, n_threads)
        constant = bool(self._ref.hessians_are_constant)
        self._fast = _serves_inputs(X_binned, n_bins, gradients, hessians, constant)
        if self._fast:
            self._X = X_binned
            self._g = gradients
            self._h = hessians
            self._constant = constant
            self._nb = int(self._ref.n_bins)
            self._nf = int(self._ref.n_features)
            self._nt = int(self._ref.n_threads)
            # views of sklearn's own ordered buffers: the kernel gathers into them exactly
            # as sklearn's method would, so a call answered by either sees the same state
            self._og = np.asarray(self._ref.ordered_gradients)
            self._oh = np.asarray(self._ref.ordered_hessians)
            self._aux = None  # _matrix_aux(X_binned), fetched at the first histogram

    def __getattr__(self, name):
        if name == "_ref":  # not yet set (failed constructor): no recursion
            raise AttributeError(name)
        return getattr(self._ref, name)

    def compute_histograms_brute(self, sample_indices, allowed_features=None):
        """sklearn's ``compute_histograms_brute``: the node's histograms, shape
        (n_features, n_bins), of ``HISTOGRAM_DTYPE``.

        Parameters
        ----------
        sample_indices : ndarray of uint32
            The node's samples, in the order sklearn sums them.
        allowed_features : ndarray of uint32 or None
            The features interaction constraints allow (others are left unset).

        Returns
        -------
        ndarray of HISTOGRAM_DTYPE
        """
        # sklearn requires a contiguous sample_indices (its error for others comes from it)
        idx = _u32(sample_indices, contiguous=True)
        feats = None if allowed_features is None else _u32(allowed_features, False)
        if (not self._fast or _disabled or idx is None
                or (allowed_features is not None and feats is None)):
            return self._ref.compute_histograms_brute(sample_indices, allowed_features)
        dtype = _histogram_dtype()
        shape = (self._nf, self._nb)
        # rows outside allowed_features are never read; zeros keep them deterministic
        out = np.empty(shape, dtype) if feats is None else np.zeros(shape, dtype)
        from . import _core
        if self._aux is None:
            self._aux = _matrix_aux(self._X)
        rows, counts = self._aux
        _core._hist_brute(self._X, self._g, self._h, self._constant, self._og, self._oh,
                          idx, feats, out, self._nt, rows, root_counts=counts)
        if not _disabled and _take_check("brute"):
            ref = self._ref.compute_histograms_brute(sample_indices, allowed_features)
            if not _same_rows(out, ref, feats):
                _turn_off("a native histogram differs from sklearn's HistogramBuilder in "
                          "this environment")
                self._fast = False
                return ref
        return out

    def compute_histograms_subtraction(self, parent_histograms, sibling_histograms,
                                       allowed_features=None):
        """sklearn's ``compute_histograms_subtraction``: ``parent -= sibling`` in place
        (for the allowed features), returning the parent's array.

        Parameters
        ----------
        parent_histograms, sibling_histograms : ndarray of HISTOGRAM_DTYPE
            The parent's and the brute-built sibling's histograms.
        allowed_features : ndarray of uint32 or None
            The features interaction constraints allow.

        Returns
        -------
        ndarray of HISTOGRAM_DTYPE
        """
        feats = None if allowed_features is None else _u32(allowed_features, False)
        if (not self._fast or _disabled
                or (allowed_features is not None and feats is None)
                or not _is_hist(parent_histograms, self._nf, self._nb)
                or not _is_hist(sibling_histograms, self._nf, self._nb)):
            return self._ref.compute_histograms_subtraction(
                parent_histograms, sibling_histograms, allowed_features)
        from . import _core
        check = not _disabled and _take_check("subtract")
        if check:
            expected = _as_array(self._ref.compute_histograms_subtraction(
                parent_histograms.copy(), sibling_histograms, allowed_features))
        _core._hist_subtract(parent_histograms, sibling_histograms, feats)
        if check and not _same_rows(parent_histograms, expected, feats):
            _turn_off("a native histogram subtraction differs from sklearn's "
                      "HistogramBuilder in this environment")
            self._fast = False
            rows = slice(None) if feats is None else feats
            parent_histograms[rows] = expected[rows]
        return parent_histograms
