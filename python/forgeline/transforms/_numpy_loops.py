"""Hand numpy's own float64 ``log1p``/``expm1`` inner loops to the native kernels.

numpy dispatches these ufuncs to SIMD code (SVML on AVX-512) whose results differ from the C
library's in the last bit on some inputs. scikit-learn pipelines call numpy, so to stay
bit-identical forgeline's kernels call the very same loop functions (by address, no
Python involved). The addresses are read from the ufunc object (numpy's public
``PyUFuncObject`` layout) and then *verified*: the native kernel must reproduce numpy's
results bit for bit on a probe vector, otherwise the kernels keep using libm.
"""

from __future__ import annotations

import ctypes

import numpy as np

from .._native import core

_NPY_DOUBLE = np.dtype(np.float64).num


class _UFuncHead(ctypes.Structure):
    # PyUFuncObject's leading fields (numpy/ufuncobject.h), stable since numpy 1.x.
    _fields_ = [("ob_refcnt", ctypes.c_ssize_t), ("ob_type", ctypes.c_void_p),
                ("nin", ctypes.c_int), ("nout", ctypes.c_int), ("nargs", ctypes.c_int),
                ("identity", ctypes.c_int), ("functions", ctypes.POINTER(ctypes.c_void_p)),
                ("data", ctypes.POINTER(ctypes.c_void_p)), ("ntypes", ctypes.c_int),
                ("reserved1", ctypes.c_int), ("name", ctypes.c_char_p),
                ("types", ctypes.POINTER(ctypes.c_char))]


def _loop(ufunc) -> tuple[int, int]:
    head = _UFuncHead.from_address(id(ufunc))
    # Plain integer fields first: only dereference pointers once the layout looks right.
    if (head.nin, head.nout, head.nargs, head.ntypes) != (1, 1, 2, ufunc.ntypes):
        raise RuntimeError("unexpected ufunc layout")
    if head.name != ufunc.__name__.encode():
        raise RuntimeError("unexpected ufunc layout")
    for i in range(head.ntypes):
        t_in, t_out = head.types[2 * i], head.types[2 * i + 1]
        if ord(t_in) == _NPY_DOUBLE and ord(t_out) == _NPY_DOUBLE:
            fn, data = head.functions[i], head.data[i]
            if not fn:
                break
            return int(fn), int(data or 0)
    raise RuntimeError(f"no float64 loop found for {ufunc.__name__}")


def _probe() -> np.ndarray:
    rng = np.random.default_rng(12345)
    vals = np.concatenate([rng.lognormal(0, 2, 3000), -rng.random(500), rng.normal(0, 1e-3, 500),
                           [0.0, -0.0, np.inf, -np.inf, np.nan, 1e300, 5e-324, -1.0, -2.0]])
    return vals


def register() -> bool:
    """Register numpy's loops with the kernels; returns whether they verified bit-exactly."""
    try:
        log1p, log1p_data = _loop(np.log1p)
        expm1, expm1_data = _loop(np.expm1)
    except Exception:  # noqa: BLE001 - any layout surprise: keep libm
        core._tf_set_numpy_loops(0, 0, 0, 0)
        return False
    core._tf_set_numpy_loops(log1p, log1p_data, expm1, expm1_data)
    if not _verify():
        core._tf_set_numpy_loops(0, 0, 0, 0)
        return False
    return True


def _verify() -> bool:
    from . import _engine as eng
    x = _probe()
    src = eng.Sources()
    i = src.add(eng.SRC_FLOAT, x)
    progs = [eng.Prog(eng.SRC_FLOAT, i, "probe", (eng.Op(eng.OP_LOG1P),)),
             eng.Prog(eng.SRC_FLOAT, i, "probe", (eng.Op(eng.OP_YEOJOHNSON, 0.7),))]
    out, _ = eng.run(src, progs, x.size, 1)
    with np.errstate(all="ignore"):
        want_log = np.log1p(x)
        pos = x >= 0
        want_yj = np.zeros_like(x)
        want_yj[pos] = np.expm1(0.7 * np.log1p(x[pos])) / 0.7
        want_yj[~pos] = -np.expm1((2 - 0.7) * np.log1p(-x[~pos])) / (2 - 0.7)
    same = lambda a, b: bool(np.array_equal(a, b, equal_nan=True))  # noqa: E731
    return same(out[:, 0], want_log) and same(out[:, 1], want_yj)
