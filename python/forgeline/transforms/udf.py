"""User-defined feature functions compiled with Numba and called natively by address.

``udf(fn)`` wraps a scalar Python function of ``k`` float arguments. On first use it is
compiled with Numba (imported lazily: the package works without Numba, only UDFs need it)
into a C-callable block function ``void(double* in, int64 m, int64 k, double* out)`` that
the C++ kernel calls over row blocks in parallel, with the GIL released. The function must
be Numba ``nopython``-compilable pure arithmetic (no Python objects, no exceptions).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from . import _engine as eng
from ._common import StatelessTransformer


class UDF:
    """A scalar function ``f(x1, ..., xk) -> float`` that forgeline compiles with Numba."""

    def __init__(self, fn, name: str | None = None):
        if not callable(fn):
            raise InputError(f"udf needs a callable, got {type(fn).__name__}")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "udf")
        self._compiled: dict[int, object] = {}

    def __call__(self, *args):
        return self.fn(*args)

    def address(self, arity: int) -> int:
        """Address of the compiled block function for ``arity`` input columns."""
        if arity not in self._compiled:
            self._compiled[arity] = _compile(self.fn, arity)
        return self._compiled[arity].address

    def __reduce__(self):
        return (UDF, (self.fn, self.name))


def udf(fn=None, *, name: str | None = None):
    """Turn a scalar Python function into a :class:`UDF` (usable as a decorator).

    Parameters
    ----------
    fn : callable
        ``f(x1, ..., xk) -> float``, Numba nopython-compilable.
    name : str, optional
        Output feature name (defaults to the function name).

    Returns
    -------
    UDF
    """
    if fn is None:
        return lambda f: UDF(f, name)
    return UDF(fn, name)


def _compile(fn, arity: int):
    try:
        import numba
        from numba import types
    except ImportError as exc:
        raise InputError("forgeline UDFs need numba (pip install 'forgeline[jit]')") from exc
    jitted = numba.njit(fn)
    args = ", ".join(f"x[{c}, i]" for c in range(arity))
    src = (
        "def block(inp, m, k, out):\n"
        "    x = carray(inp, (k, m))\n"
        "    o = carray(out, (m,))\n"
        "    for i in range(m):\n"
        f"        o[i] = f({args})\n"
    )
    ns = {"carray": numba.carray, "f": jitted}
    exec(compile(src, f"<forgeline udf {getattr(fn, '__name__', '')}>", "exec"), ns)  # noqa: S102 - generated wrapper, no user text
    sig = types.void(types.CPointer(types.float64), types.int64, types.int64,
                     types.CPointer(types.float64))
    try:
        return numba.cfunc(sig, nopython=True)(ns["block"])
    except Exception as exc:  # numba's typing errors are many classes
        raise InputError(f"udf {getattr(fn, '__name__', fn)!r} cannot be compiled by Numba "
                         f"for {arity} float arguments: {exc}") from exc


class UDFTransformer(StatelessTransformer):
    """Apply a :class:`UDF` to the input columns, row by row, natively.

    The function receives one float per input column (NaN for missing) and returns one
    float: the output is a single column named after the UDF.

    Parameters
    ----------
    func : UDF or callable
    n_threads : int or None
    """

    _state = ()

    def __init__(self, func=None, *, n_threads=None):
        self.func = func
        self.n_threads = n_threads

    def _udf(self) -> UDF:
        if isinstance(self.func, UDF):
            return self.func
        if callable(self.func):
            return UDF(self.func)
        raise InputError("UDFTransformer needs func=a callable or forgeline.transforms.udf(...)")

    def _fit_frame(self, frame, y):
        self._udf().address(len(frame.names))  # compile now: errors surface in fit
        super()._fit_frame(frame, y)

    def _plan(self, X, sources, select=None):
        from .._native import core
        frame = self._read(X, reset=False, select=select)
        cols = [np.ascontiguousarray(c.values, dtype=np.float64) for c in frame.columns]
        out = core._tf_udf(cols, self._udf().address(len(cols)), frame.n_rows, self._threads)
        src = sources.add(eng.SRC_FLOAT, out)
        return [eng.Prog(eng.SRC_FLOAT, src, self._udf().name)], frame.n_rows

    def _names_out(self, names):
        return [self._udf().name]
