"""Column programs: how fitted transformers describe their output to the plan executor.

Every fitted transformer describes its output as a list of :class:`Prog` -- one per output
column group: a source column, a short list of elementwise ops and an emitter (a value, a
one-hot block, a code one-hot block or a code lookup). Chained transformers fuse by
appending ops, so ``SimpleImputer -> Log1p -> StandardScaler`` becomes one pass over each
column. The ops *are* :mod:`forgeline.plan` ops (same codes): :func:`run` lowers the programs
to one native plan program (``core.FeatureProgram``) and runs it once, and :func:`to_group`
turns a program into a :class:`forgeline.plan.Group` for ``forgeline.compile``. There is no
second executor.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .. import plan as _plan
from .._native import core

SRC_FLOAT, SRC_CODE, SRC_DATETIME = 0, 1, 2
# the plan's source kinds for the three transform source kinds
_PLAN_SOURCE = (_plan.SOURCE_FLOAT64, _plan.SOURCE_CODES, _plan.SOURCE_DATETIME)

_C = _plan.OP_CODES
OP_IMPUTE, OP_LOG1P, OP_SUB, OP_DIV = _C["impute"], _C["log1p"], _C["sub"], _C["div"]
OP_MUL, OP_ADD, OP_CLIP, OP_ISNAN = _C["mul"], _C["add"], _C["clip"], _C["isnan"]
OP_YEOJOHNSON, OP_CHECK_FINITE, OP_BIN = _C["yeo_johnson"], _C["check_finite"], _C["searchsorted_right"]
OP_SIN, OP_COS, OP_DATEPART = _C["sin_cycle"], _C["cos_cycle"], _C["date_part"]
OP_CHECK_NAN, OP_ISNANFLIP = _C["check_nan"], _C["isnan_flip"]
_OP_NAMES = {v: k for k, v in _C.items()}

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


def onehot_map(p: Prog) -> np.ndarray:
    """The plan one-hot map (table index -> local slot or ONEHOT_ZEROS) of a one-hot Prog."""
    if p.emit == EMIT_ONEHOT:  # the register is the slot itself; NaN / out of range: zeros
        return np.concatenate([[_plan.ONEHOT_ZEROS] * 2, np.arange(p.width)]).astype(np.int32)
    m = np.asarray(p.table, dtype=np.int32)
    return np.where(m >= 0, m, _plan.ONEHOT_ZEROS).astype(np.int32)


def to_group(p: Prog, source: str | None = None, origin: str = "input") -> _plan.Group:
    """The :class:`forgeline.plan.Group` computing ``p`` from input column ``source``."""
    ops = [_plan.OpSpec(_OP_NAMES[o.code], float(o.a), float(o.b),
                        None if o.table is None else tuple(np.asarray(o.table, np.float64).tolist()))
           for o in p.ops]
    g = _plan.Group(p.name if source is None else source, ops, origin=origin)
    if p.emit in (EMIT_ONEHOT, EMIT_CODE_ONEHOT):
        g.emit, g.width, g.onehot_map = "onehot", int(p.width), onehot_map(p).tolist()
    elif p.emit == EMIT_CODE_LOOKUP:
        g.emit, g.width = "lookup", int(p.width)
        g.lookup = np.asarray(p.table, dtype=np.float64).ravel().tolist()
    return g


def run(sources: Sources, progs, n_rows: int, n_threads: int = 0, out: np.ndarray | None = None,
        dst: int = 0) -> tuple[np.ndarray, list]:
    """Execute ``progs`` into ``out[:, dst:dst+width]`` with the plan executor.

    Returns ``(out, fired)``; ``fired`` lists ``(prog, op_code)`` for a check op that found a
    bad value (the executor stops at the first one).
    """
    width = width_of(progs)
    if out is None:
        out = np.empty((n_rows, width), dtype=np.float64)
    target = out[:, dst:dst + width]
    if width == 0 or n_rows == 0:
        return out, []
    prog, columns, kinds, owner = lower(sources, progs)
    try:
        prog.run(columns, kinds, n_rows, n_threads, target)
    except ValueError as exc:
        return out, _fired(exc, owner)
    return out, []


def run_csr(sources: Sources, progs, n_rows: int, n_threads: int = 0):
    """Execute ``progs`` straight into a scipy CSR matrix (no dense intermediate).

    The result equals ``scipy.sparse.csr_matrix(dense)``: sorted column indices, explicit
    zeros dropped, int32 indices while they fit. Returns ``(matrix, fired)`` like :func:`run`.
    """
    from scipy import sparse
    width = width_of(progs)
    if width == 0 or n_rows == 0:
        return sparse.csr_matrix((n_rows, width), dtype=np.float64), []
    prog, columns, kinds, owner = lower(sources, progs)
    try:
        data, indices, indptr, nnz = core._tf_run_csr(prog, columns, kinds, n_rows, n_threads)
    except ValueError as exc:
        return None, _fired(exc, owner)
    if nnz < 0.75 * data.size:  # give back the over-allocation when it is large
        data, indices = data[:nnz].copy(), indices[:nnz].copy()
    else:
        data, indices = data[:nnz], indices[:nnz]
    m = sparse.csr_matrix((data, indices, indptr), shape=(n_rows, width), copy=False)
    m.has_sorted_indices = True
    return m, []


def _fired(exc: ValueError, owner) -> list:
    msg = str(exc)
    if not msg.startswith("check failed in plan group "):
        raise exc
    gi = int(msg[len("check failed in plan group "):].split(":", 1)[0])
    return [(owner[gi], OP_CHECK_FINITE if msg.endswith("infinity") else OP_CHECK_NAN)]


def lower(sources: Sources, progs):
    """The native plan program for ``progs``: ``(FeatureProgram, columns, kinds, owner)``;
    ``owner[g]`` is the Prog behind native group ``g`` (for check errors)."""
    width = width_of(progs)
    base = (0, len(sources.floats), len(sources.floats) + len(sources.codes))
    columns = sources.floats + sources.codes + sources.datetimes
    kinds = np.asarray([_plan.SOURCE_FLOAT64] * len(sources.floats)
                       + [_plan.SOURCE_CODES] * len(sources.codes)
                       + [_plan.SOURCE_DATETIME] * len(sources.datetimes), dtype=np.int32)
    g_src, g_kind, g_ob, g_oe, g_emit, g_slot, g_toff, g_tlen = ([] for _ in range(8))
    op_code, op_off, op_len, op_a, op_b = [], [], [], [], []
    dtabs: list[np.ndarray] = []
    itabs: list[np.ndarray] = []
    n_d = n_i = 0
    owner: list[Prog] = []  # native group -> Prog, for check errors
    col = 0
    for p in progs:
        begin = len(op_code)
        for o in p.ops:
            op_code.append(o.code)
            op_a.append(o.a)
            op_b.append(o.b)
            if o.table is not None:
                t = np.ascontiguousarray(o.table, dtype=np.float64).ravel()
                op_off.append(n_d)
                op_len.append(t.size)
                dtabs.append(t)
                n_d += t.size
            else:
                op_off.append(0)
                op_len.append(0)
        end = len(op_code)
        src = base[p.source] + p.src
        kind = _PLAN_SOURCE[p.source]

        def group(emit, slot, toff, tlen):
            g_src.append(src); g_kind.append(kind); g_ob.append(begin); g_oe.append(end)  # noqa: E702
            g_emit.append(emit); g_slot.append(slot); g_toff.append(toff); g_tlen.append(tlen)  # noqa: E702
            owner.append(p)

        if p.emit == EMIT_VALUE:
            group(0, col, 0, 0)
        elif p.emit in (EMIT_ONEHOT, EMIT_CODE_ONEHOT):
            m = onehot_map(p)
            m = np.where(m >= 0, m + col, m).astype(np.int32)
            group(1, 0, n_i, m.size)
            itabs.append(m)
            n_i += m.size
        else:  # a width-k look-up runs as k width-1 plan look-ups, one table column each
            tb = np.asarray(p.table, dtype=np.float64).reshape(-1, p.width)
            for t in range(p.width):
                c = np.ascontiguousarray(tb[:, t])
                group(2, col + t, n_d, c.size)
                dtabs.append(c)
                n_d += c.size
        col += p.width
    _plan.register_numpy_loops()
    i32 = lambda v: np.asarray(v, dtype=np.int32)  # noqa: E731
    prog = core.FeatureProgram(
        width, i32(g_src), i32(g_kind), i32(g_ob), i32(g_oe), i32(g_emit), i32(g_slot),
        i32(g_toff), i32(g_tlen), np.zeros(len(g_src), np.int32), i32(op_code), i32(op_off),
        i32(op_len), np.asarray(op_a, np.float64), np.asarray(op_b, np.float64),
        np.concatenate(dtabs) if dtabs else np.zeros(0),
        np.concatenate(itabs) if itabs else np.zeros(0, np.int32))
    return prog, columns, kinds, owner


# ------------------------------------------------------------------ deferred columns

class Deferred:
    """The outputs of value programs over ``sources``, not materialised.

    A :class:`~forgeline.transforms.Pipeline` hands this to a later step's fit instead of the
    previous step's output matrix: :func:`moments`, :func:`quantiles` and :func:`medians`
    accept it and take their statistics natively from each program's register (built one
    column at a time in a per-worker buffer by the plan executor's own reader), so the fitted
    state is exactly what fitting on the materialised output gives.
    """

    def __init__(self, sources: Sources, progs, n_rows: int, names):
        self.sources = sources
        self.progs = list(progs)
        self.n_rows = int(n_rows)
        self.names = [str(n) for n in names]
        self._lowered = None

    def __len__(self) -> int:
        return len(self.progs)

    def take(self, idx) -> "Deferred":
        return Deferred(self.sources, [self.progs[int(j)] for j in idx], self.n_rows,
                        [self.names[int(j)] for j in idx])

    def then(self, progs, names) -> "Deferred":
        return Deferred(self.sources, progs, self.n_rows, names)

    def lowered(self):
        if self._lowered is None:
            self._lowered = lower(self.sources, self.progs)
        return self._lowered

    def columns(self, n_threads: int) -> dict:
        """The materialised outputs, by name (contiguous columns)."""
        out = np.empty((width_of(self.progs), self.n_rows)).T
        out, fired = run(self.sources, self.progs, self.n_rows, n_threads, out=out)
        _raise_fit_fired(fired)
        return dict(zip(self.names, out.T))

    def native(self, fn, *args):
        prog, columns, kinds, owner = self.lowered()
        try:
            return fn(prog, columns, kinds, self.n_rows, list(range(len(self.progs))), *args)
        except ValueError as exc:
            _raise_fit_fired(_fired(exc, owner))
            raise  # pragma: no cover - _fired re-raises anything that is not a check


def _raise_fit_fired(fired) -> None:
    if fired:
        from ..errors import DataError
        name = fired[0][0].name
        raise DataError(f"Input contains invalid values in column {name!r}", column=name)


class DeferredFrame:
    """What a transformer's ``_fit_frame`` sees for :class:`Deferred` input: names and the
    row count; ``_float_cols`` returns the :class:`Deferred` itself."""

    def __init__(self, deferred: Deferred):
        self.deferred = deferred
        self.names = deferred.names
        self.n_rows = deferred.n_rows

    @property
    def columns(self):  # pragma: no cover - a transformer without deferred support
        raise TypeError("internal: this transformer cannot fit on deferred columns")


def take(cols, idx):
    """``[cols[j] for j in idx]`` for a list of columns or a :class:`Deferred`."""
    if isinstance(cols, Deferred):
        return cols.take(idx)
    return [cols[int(j)] for j in idx]


# ------------------------------------------------------------------ statistics helpers

MOMENT_FIELDS = ("count", "sum", "m2", "min", "max", "absmax", "n_nan", "n_posinf", "n_neginf")


def moments(cols, n_threads: int = 0, pairwise: bool = True, sums: bool = True) -> dict[str, np.ndarray]:
    """Per-column statistics (see ``transforms.hpp``), one array per field; ``sums=False``
    skips the sum and m2 passes (left 0)."""
    if isinstance(cols, Deferred):
        m = cols.native(core._tf_program_moments, n_threads, pairwise, sums)
        return {f: m[:, i].copy() for i, f in enumerate(MOMENT_FIELDS)}
    m = core._tf_moments([np.ascontiguousarray(c, dtype=np.float64) for c in cols], n_threads,
                         pairwise, sums)
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
    if not isinstance(cols, Deferred):
        cols = [np.ascontiguousarray(c, dtype=np.float64) for c in cols]
    if n_valid is None:
        n_valid = moments(cols, n_threads)["count"]
    lo, hi, gamma = quantile_plan(n_valid, np.atleast_1d(q), method)
    return _quantiles(cols, lo, hi, gamma, n_threads)


def _quantiles(cols, lo, hi, gamma, n_threads):
    if isinstance(cols, Deferred):
        return cols.native(core._tf_program_quantiles, lo, hi, gamma, n_threads)
    return core._tf_quantiles(cols, lo, hi, gamma, n_threads)


def medians(cols, n_valid=None, n_threads: int = 0) -> np.ndarray:
    """``np.ma.median`` per column (mean of the two middle values for an even count)."""
    if not isinstance(cols, Deferred):
        cols = [np.ascontiguousarray(c, dtype=np.float64) for c in cols]
    if n_valid is None:
        n_valid = moments(cols, n_threads)["count"]
    n = np.asarray(n_valid, dtype=np.int64)
    lo = np.stack([(n - 1) // 2, n // 2], axis=1)
    lo = np.where(n[:, None] > 0, lo, -1).astype(np.int64)
    gamma = np.zeros(lo.shape)
    both = _quantiles(cols, lo, lo, gamma, n_threads)
    with np.errstate(invalid="ignore"):
        return (both[:, 0] + both[:, 1]) / 2.0


def moments_medians(cols, n_threads: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``moments(cols, sums=False)`` and :func:`medians` together (one data pass per column
    for both, plus a gather of the middle buckets)."""
    if isinstance(cols, Deferred):
        m = moments(cols, n_threads, sums=False)
        return m, medians(cols, m["count"], n_threads)
    m, med = core._tf_medians([np.ascontiguousarray(c, dtype=np.float64) for c in cols], n_threads)
    return {f: m[:, i].copy() for i, f in enumerate(MOMENT_FIELDS)}, med
