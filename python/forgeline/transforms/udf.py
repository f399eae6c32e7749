"""The pipeline transformer for user-defined feature functions (``forgeline.udf``).

The UDF itself (Numba compilation, calling convention, bundle source capture) lives in
:mod:`forgeline.jit`, which needs no scikit-learn; this module adds the sklearn-compatible
transformer that applies one natively over row blocks, with the GIL released.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError, InputError
from ..jit import UDF, udf
from . import _engine as eng
from ._common import StatelessTransformer

__all__ = ["UDF", "UDFTransformer", "udf"]


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
            # one wrapper per function, so its Numba compilation is done once
            cached = self.__dict__.get("_udf_wrapper")
            if cached is None or cached.fn is not self.func:
                cached = self.__dict__["_udf_wrapper"] = UDF(self.func)
            return cached
        raise InputError("UDFTransformer needs func=a callable or forgeline.transforms.udf(...)")

    def _fit_frame(self, frame, y):
        self._udf().address(len(frame.names))  # compile now: errors surface in fit
        super()._fit_frame(frame, y)

    def _plan(self, X, sources, select=None):
        from .._native import core
        frame = self._read(X, reset=False, select=select)
        cols = [np.ascontiguousarray(c.values, dtype=np.float64) for c in frame.columns]
        try:
            out = core._tf_udf(cols, self._udf().address(len(cols)), frame.n_rows, self._threads)
        except ValueError as exc:
            raise DataError(f"udf {self._udf().name!r} raised while transforming: {exc}") from None
        src = sources.add(eng.SRC_FLOAT, out)
        return [eng.Prog(eng.SRC_FLOAT, src, self._udf().name)], frame.n_rows

    def _names_out(self, names):
        return [self._udf().name]
