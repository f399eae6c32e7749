"""Column programs: the fused, native execution of fitted transformers.

Every fitted transformer describes its output as a list of :class:`Prog` -- one per output
column group: a source column, a short list of elementwise ops and an emitter (a value, a
one-hot block, a code one-hot block or a code lookup). Chained transformers fuse by
appending ops, so ``SimpleImputer -> Log1p -> StandardScaler`` becomes one pass over each
column. :func:`run` lowers the programs to flat arrays and calls the C++ kernel once.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .._native import core

SRC_FLOAT, SRC_CODE, SRC_DATETIME = 0, 1, 2

OP_IMPUTE, OP_LOG1P, OP_SUB, OP_DIV, OP_MUL, OP_ADD, OP_CLIP, OP_ISNAN = 1, 2, 3, 4, 5, 6, 7, 8
OP_YEOJOHNSON, OP_CHECK_FINITE, OP_BIN, OP_SIN, OP_COS, OP_DATEPART = 9, 10, 11, 12, 13, 14
OP_CHECK_NAN = 15

EMIT_VALUE, EMIT_ONEHOT, EMIT_CODE_ONEHOT, EMIT_CODE_LOOKUP = 0, 1, 2, 3

FLAG_MESSAGES = {OP_CHECK_FINITE: "infinity", OP_CHECK_NAN: "NaN"}


@dataclass(frozen=True)
class Op:
    code: int
    a: float = 0.0
    b: float = 0.0
    table: np.ndarray | None = None  # float64 table (bin edges)


@dataclass(frozen=True)
class Prog:
    """How one output column group is computed from one source column."""

    source: int
    src: int
    name: str  # the input column's name (for error messages)
    ops: tuple = ()
    emit: int = EMIT_VALUE
    width: int = 1
    table: np.ndarray | None = field(default=None, compare=False)  # lookup (f64) or map (i32)

    def then(self, *ops: Op) -> "Prog":
        if self.emit != EMIT_VALUE or self.source == SRC_CODE:
            raise TypeError("internal: cannot append ops after a non-value emitter")
        return replace(self, ops=self.ops + tuple(ops))

    def emitting(self, emit: int, width: int = 1, table=None) -> "Prog":
        return replace(self, emit=emit, width=int(width), table=table)

    @property
    def is_plain(self) -> bool:
        return not self.ops and self.emit == EMIT_VALUE


class Sources:
    """The source columns a program list reads, by kind."""

    def __init__(self):
        self.floats: list[np.ndarray] = []
        self.codes: list[np.ndarray] = []
        self.datetimes: list[np.ndarray] = []

    def add(self, kind: int, values: np.ndarray) -> int:
        lst = (self.floats, self.codes, self.datetimes)[kind]
        dtype = (np.float64, np.int32, np.int64)[kind]
        lst.append(np.ascontiguousarray(values, dtype=dtype))
        return len(lst) - 1


def width_of(progs) -> int:
    return int(sum(p.width for p in progs))


def run(sources: Sources, progs, n_rows: int, n_threads: int = 0, out: np.ndarray | None = None,
        dst: int = 0) -> tuple[np.ndarray, list]:
    """Execute ``progs`` into ``out[:, dst:dst+width]``; returns ``(out, fired)``.

    ``fired`` lists ``(prog, op_code)`` for every check op that found a bad value.
    """
    width = width_of(progs)
    if out is None:
        out = np.empty((n_rows, width), dtype=np.float64)
    n_ops = sum(len(p.ops) for p in progs)
    prog_arr = np.zeros((len(progs), 9), dtype=np.int64)
    op_codes = np.zeros(n_ops, dtype=np.int32)
    op_params = np.zeros((n_ops, 2), dtype=np.float64)
    op_tabs = np.zeros((n_ops, 2), dtype=np.int64)
    tables: list[np.ndarray] = []
    maps: list[np.ndarray] = []
    t_len = m_len = 0
    o = 0
    col = dst
    for i, p in enumerate(progs):
        begin = o
        for op in p.ops:
            op_codes[o] = op.code
            op_params[o] = (op.a, op.b)
            if op.table is not None:
                t = np.ascontiguousarray(op.table, dtype=np.float64)
                op_tabs[o] = (t_len, t.size)
                tables.append(t)
                t_len += t.size
            o += 1
        toff = tlen = 0
        if p.emit == EMIT_CODE_ONEHOT:
            mp = np.ascontiguousarray(p.table, dtype=np.int32)
            toff, tlen = m_len, mp.size
            maps.append(mp)
            m_len += mp.size
        elif p.emit == EMIT_CODE_LOOKUP:
            tb = np.ascontiguousarray(p.table, dtype=np.float64).ravel()
            toff, tlen = t_len, tb.size
            tables.append(tb)
            t_len += tb.size
        prog_arr[i] = (p.source, p.src, begin, o, p.emit, col, p.width, toff, tlen)
        col += p.width
    tab = np.concatenate(tables) if tables else np.zeros(0)
    mp_all = np.concatenate(maps) if maps else np.zeros(0, dtype=np.int32)
    flags = core._tf_run(sources.floats, sources.codes, sources.datetimes, prog_arr, op_codes,
                         op_params, op_tabs, tab, mp_all, out, n_threads)
    fired = []
    for i in np.flatnonzero(flags):
        fired.append((progs[int(i)], int(flags[i])))
    return out, fired


# ------------------------------------------------------------------ statistics helpers

MOMENT_FIELDS = ("count", "sum", "m2", "min", "max", "absmax", "n_nan", "n_posinf", "n_neginf")


def moments(cols, n_threads: int = 0, pairwise: bool = True) -> dict[str, np.ndarray]:
    """Per-column statistics (see ``transforms.hpp``), one array per field."""
    m = core._tf_moments([np.ascontiguousarray(c, dtype=np.float64) for c in cols], n_threads,
                         pairwise)
    return {f: m[:, i].copy() for i, f in enumerate(MOMENT_FIELDS)}


def quantile_plan(n: np.ndarray, q: np.ndarray, method: str = "linear"):
    """numpy's quantile index arithmetic, vectorised over columns.

    ``n`` holds the number of non-NaN values per column and ``q`` the quantiles in [0, 1]
    (already divided by 100 like ``np.percentile`` does). Returns ``(lo, hi, gamma)`` of
    shape ``(len(n), len(q))`` as ``numpy.lib._function_base_impl._quantile`` computes them.
    """
    n = np.asarray(n, dtype=np.float64)[:, None]
    q = np.asarray(q, dtype=np.float64)[None, :]
    if method == "linear":
        vi = (n - 1) * q
    elif method == "averaged_inverted_cdf":
        vi = (n * q) - 1
    else:
        raise ValueError(f"unsupported quantile method {method!r}")
    prev = np.floor(vi)
    gamma = vi - prev
    if method == "averaged_inverted_cdf":
        gamma = np.where(gamma == 0, 0.5, 1.0)
    nxt = prev + 1
    above = vi >= n - 1
    prev = np.where(above, n - 1, prev)
    nxt = np.where(above, n - 1, nxt)
    below = vi < 0
    prev = np.where(below, 0, prev)
    nxt = np.where(below, 0, nxt)
    empty = np.broadcast_to(n <= 0, prev.shape)
    lo = np.where(empty, -1, prev).astype(np.int64)
    hi = np.where(empty, -1, nxt).astype(np.int64)
    return lo, hi, np.ascontiguousarray(gamma, dtype=np.float64)


def quantiles(cols, q, method: str = "linear", n_valid=None, n_threads: int = 0) -> np.ndarray:
    """``np.nanpercentile(col, 100*q, method=method)`` per column, shape (n_cols, len(q))."""
    cols = [np.ascontiguousarray(c, dtype=np.float64) for c in cols]
    if n_valid is None:
        n_valid = moments(cols, n_threads)["count"]
    lo, hi, gamma = quantile_plan(n_valid, np.atleast_1d(q), method)
    return core._tf_quantiles(cols, lo, hi, gamma, n_threads)


def medians(cols, n_valid=None, n_threads: int = 0) -> np.ndarray:
    """``np.ma.median`` per column (mean of the two middle values for an even count)."""
    cols = [np.ascontiguousarray(c, dtype=np.float64) for c in cols]
    if n_valid is None:
        n_valid = moments(cols, n_threads)["count"]
    n = np.asarray(n_valid, dtype=np.int64)
    lo = np.stack([(n - 1) // 2, n // 2], axis=1)
    lo = np.where(n[:, None] > 0, lo, -1).astype(np.int64)
    gamma = np.zeros(lo.shape)
    both = core._tf_quantiles(cols, lo, lo, gamma, n_threads)
    with np.errstate(invalid="ignore"):
        return (both[:, 0] + both[:, 1]) / 2.0
