"""Exact native sparse products inside the model fits of :mod:`forgeline.tune`.

``search`` caches each fold's transformed training matrix and refits only the final model
per candidate. For a linear model on a CSR matrix (sklearn's default one-hot output) most
of a fit is ``X @ w`` and ``X.T @ g`` inside ``LinearModelLoss``. :func:`wrap` turns the
cached matrix into a :class:`TunedCSR` (a ``scipy.sparse.csr_matrix`` subclass sharing the
same arrays, no copy) whose float64 matrix-vector products run on forgeline's kernel
(``_core._SpPacked``) and are bit-identical to scipy's: every output element is the same
``s = 0.0; s += a * x[j]`` chain in the same order. The fitted models, and so the search's
scores, are therefore exactly those of a fit on the plain matrix.

The kernel reads packed copies (one of ``X``, one of ``X.T`` in CSC order) that are built
lazily, once per matrix, under a lock (candidates run in threads that share the cache).
Anything the kernel does not take (other dtypes, int64 indices, multi-vector products,
malformed arrays) goes through scipy's own code.
"""

from __future__ import annotations

import threading

import numpy as np
import scipy.sparse as sp

from ._native import core

_BLOCK_ROWS = 512  # sparse.hpp's Packed::kBlockRows

#: Module-level switch: False makes :func:`wrap` return its input unchanged and wrapped
#: matrices use scipy's products (tests compare the two).
ENABLED = True


class _Packed:
    """The lazily built native copies of one matrix, shared by its transposed views.

    They are keyed on the matrix's buffers: a scipy operation that replaces ``data``,
    ``indices`` or ``indptr`` (or the shape) makes the next product rebuild them.
    """

    __slots__ = ("fwd", "bwd", "failed", "key", "lock")

    def __init__(self):
        self.fwd = self.bwd = self.key = None
        self.failed = False
        self.lock = threading.Lock()

    def get(self, X, transpose: bool):
        key = _key(X)
        with self.lock:  # a second thread waits for the first build instead of repeating it
            if key != self.key:
                self.fwd = self.bwd = None
                self.failed = False
                self.key = key
            have = self.bwd if transpose else self.fwd
            if have is not None or self.failed:
                return have
            try:
                have = core._SpPacked(X.indptr, X.indices, X.data, X.shape[1], transpose)
            except (ValueError, TypeError):
                # arrays scipy accepts but the kernel refuses: scipy keeps the products
                self.failed = True
                return None
            if transpose:
                self.bwd = have
            else:
                self.fwd = have
            return have


def _key(X) -> tuple:
    return (X.shape,) + tuple((a.ctypes.data, a.shape, a.strides)
                              for a in (X.data, X.indices, X.indptr))


def _eligible(X) -> bool:
    return (X.ndim == 2 and X.dtype == np.float64 and X.indices.dtype == np.int32
            and X.indptr.dtype == np.int32)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Same buffer, same layout (scipy's constructors re-view arrays without copying)."""
    return a is b or (a.ctypes.data == b.ctypes.data and a.shape == b.shape
                      and a.dtype == b.dtype and a.strides == b.strides)


def _vector(other, n: int):
    """``other`` as a contiguous float64 vector of length n, or None (scipy's path)."""
    if type(other) is not np.ndarray or other.dtype != np.float64 or other.shape != (n,):
        return None
    return np.ascontiguousarray(other)


class TunedCSR(sp.csr_matrix):
    """A ``csr_matrix`` whose float64 ``X @ v`` and ``X.T @ v`` run on forgeline's kernel.

    It shares the arrays of the matrix it wraps. Results are bit-identical to scipy's
    (same per-element operation order); only the speed differs. Every other operation is
    scipy's own and returns ordinary scipy objects (or a fresh ``TunedCSR`` with no native
    copies yet, where scipy builds one of ``type(self)``). In-place scipy operations
    (``sort_indices``, ``sum_duplicates``, ...) drop the native copies; writing into
    ``data``/``indices``/``indptr`` directly is not supported (fits do not do it).

    Parameters
    ----------
    arg1, shape, dtype, copy
        As for ``scipy.sparse.csr_matrix``.
    n_threads : int, default 1
        Threads per product (0 = all cores). ``forgeline.tune`` sets it to the fits'
        ``inner_threads``, so parallel candidates do not oversubscribe the cores.
    """

    def __init__(self, arg1, shape=None, dtype=None, copy=False, *, maxprint=None,
                 n_threads: int = 1):
        super().__init__(arg1, shape=shape, dtype=dtype, copy=copy, maxprint=maxprint)
        self._fl = _Packed()
        self._fl_threads = int(n_threads)

    # -- products ------------------------------------------------------------------
    def _matmul_vector(self, other):
        x = _vector(other, self.shape[1]) if ENABLED and _eligible(self) else None
        packed = None if x is None else self._fl.get(self, transpose=False)
        if packed is None:
            return super()._matmul_vector(other)
        return packed.matvec(x, self._fl_threads)

    def transpose(self, axes=None, copy=False):
        t = super().transpose(axes=axes, copy=copy)
        if copy or not isinstance(t, sp.csc_matrix):
            return t
        out = _TunedCSC((t.data, t.indices, t.indptr), shape=t.shape, copy=False)
        out._fl_parent = self
        return out

    # -- native copies ---------------------------------------------------------------
    def native_nbytes(self) -> int:
        """Bytes the two native copies take once built (counted by the tune cache up front).

        Returns
        -------
        int
            Index pointers, narrowed indices and values of the copies of ``X`` and ``X.T``.
        """
        if not _eligible(self):
            return 0
        n, p = self.shape
        nnz = int(self.indptr[-1] - self.indptr[0]) if n else 0
        fwd = 8 * (n + 1) + nnz * ((2 if p <= 65536 else 4) + 8)
        # X.T is cut into blocks of rows of X (sparse.cpp's transposed_block), 16-bit offsets
        block = _BLOCK_ROWS
        while block < 65536 and -(-n // block) * p > max(nnz // 8, p):
            block *= 2
        blocks = max(1, -(-n // max(1, min(block, n))))
        bwd = 8 * (blocks * p + 1) + nnz * (2 + 8)
        return fwd + bwd

    def _fl_reset(self):
        self._fl = _Packed()

    def sort_indices(self):
        self._fl_reset()
        return super().sort_indices()

    def sum_duplicates(self):
        self._fl_reset()
        return super().sum_duplicates()

    def eliminate_zeros(self):
        self._fl_reset()
        return super().eliminate_zeros()

    def prune(self):
        self._fl_reset()
        return super().prune()

    def resize(self, *shape):
        self._fl_reset()
        return super().resize(*shape)

    def __setitem__(self, key, value):
        self._fl_reset()
        return super().__setitem__(key, value)

    def __getstate__(self):
        # the native copies are rebuilt where needed; locks and pybind objects do not pickle
        state = self.__dict__.copy()
        state.pop("_fl", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._fl = _Packed()


class _TunedCSC(sp.csc_matrix):
    """``TunedCSR.T``: a CSC view over the parent's arrays whose vector product runs on the
    parent's packed transposed copy. Without a parent (scipy built it from another
    operation) it is a plain ``csc_matrix``."""

    _fl_parent = None

    def _matmul_vector(self, other):
        parent = self._fl_parent
        if (ENABLED and parent is not None and _eligible(self)
                and self.shape == parent.shape[::-1] and _same(self.data, parent.data)
                and _same(self.indices, parent.indices) and _same(self.indptr, parent.indptr)):
            x = _vector(other, self.shape[1])
            packed = None if x is None else parent._fl.get(parent, transpose=True)
            if packed is not None:
                return packed.matvec(x, parent._fl_threads)
        return super()._matmul_vector(other)

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_fl_parent", None)
        return state


def wrap(X, n_threads: int | None = 1):
    """``X`` as a :class:`TunedCSR` sharing its arrays, or ``X`` itself when not eligible.

    Eligible: a ``scipy.sparse.csr_matrix`` with float64 data and int32 ``indices`` /
    ``indptr``, and :data:`ENABLED`. A ``csr_array`` is left alone: its operators mean
    other things (``*`` is elementwise), so a matrix subclass would change behaviour.

    Parameters
    ----------
    X : object
        Any training matrix; only eligible CSR matrices are wrapped.
    n_threads : int or None, default 1
        Threads per product; ``None`` or 0 means all cores.

    Returns
    -------
    object
        The wrapped matrix (no copy of the arrays) or ``X`` unchanged.
    """
    if not ENABLED or isinstance(X, TunedCSR) or not isinstance(X, sp.csr_matrix):
        return X
    if not _eligible(X):
        return X
    out = TunedCSR((X.data, X.indices, X.indptr), shape=X.shape, copy=False,
                   n_threads=0 if n_threads is None else int(n_threads))
    if X.has_sorted_indices:
        out.has_sorted_indices = True  # a flag scipy would otherwise recompute with a pass
    return out
