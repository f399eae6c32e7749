"""Plan: the compiled form of a fitted pipeline, as plain data.

The preprocessing half is a :class:`FeaturePlan`: a list of *groups*. A group reads one
input column into a register, applies a chain of unary ops (each replicating one elementwise
step of the source library, in the same order, so results are bit-identical), then emits the
register into one output slot (``scalar``), sets one of several one-hot slots (``onehot``) or
writes a table value (``lookup``). The native executor runs all groups over row blocks.

The model half is any :class:`~forgeline.models.base.NativeModel`; :class:`Plan` ties the two
together with the schema. Everything round-trips through ``to_parts`` / ``from_parts``
(JSON-safe dict + numeric arrays), which is what a bundle stores.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field

import numpy as np

from . import _frame
from ._native import core, resolve_threads
from .errors import BundleError, DataError

OP_CODES = {
    "impute": 1, "add": 2, "sub": 3, "mul": 4, "div": 5, "log1p": 6, "clip": 7,
    "searchsorted_right": 8, "code_of": 9, "expm1": 10, "sqrt": 11, "abs": 12, "log": 13,
    "exp": 14, "isnan": 15, "replace_inf": 16, "yeo_johnson": 17, "check_finite": 18,
    "check_nan": 19, "sin_cycle": 20, "cos_cycle": 21, "date_part": 22, "isnan_flip": 23,
}
# ops whose describe() shows no parameter
_BARE = ("log1p", "expm1", "sqrt", "abs", "log", "exp", "isnan", "replace_inf", "check_finite",
         "check_nan", "isnan_flip")
EMITS = {"scalar": 0, "onehot": 1, "lookup": 2}
SOURCE_FLOAT64, SOURCE_CODES, SOURCE_DATETIME = 0, 2, 3
ONEHOT_ZEROS, ONEHOT_RAISE = -1, -2
MAX_GROUPS = 1_000_000
MAX_TABLE = 50_000_000


@dataclass
class OpSpec:
    """One unary op: ``name`` from ``OP_CODES``; ``a``/``b`` scalars; ``table`` for
    ``searchsorted_right`` and ``code_of``."""

    name: str
    a: float = 0.0
    b: float = 0.0
    table: tuple | None = None

    def describe(self) -> str:
        if self.table is not None:
            return f"{self.name}[{len(self.table)}]"
        if self.name in _BARE:
            return self.name
        if self.name == "clip":
            return f"clip({self.a:.6g}, {self.b:.6g})"
        return f"{self.name}({self.a:.6g})"


@dataclass
class Group:
    """One input column's chain of ops and how its result is emitted.

    ``onehot_map``: table index (0 unseen, 1 missing, 2+code) -> local slot, ``ONEHOT_ZEROS``
    or ``ONEHOT_RAISE``; local slots are 0..width-1. ``lookup``: values by the same index,
    ``width`` values per index (row-major) for a multi-output look-up (multiclass target
    encoding). A datetime input column's group starts with a ``date_part`` op.
    ``origin`` names the transformer that produced the group (for errors and explain_plan).
    """

    source: str
    ops: list[OpSpec] = field(default_factory=list)
    emit: str = "scalar"
    width: int = 1
    onehot_map: list[int] | None = None
    lookup: list[float] | None = None
    unseen_error: int = 0  # lookup only: bit 0 unseen raises, bit 1 missing raises
    origin: str = "input"
    # A udf group reads no column: its register is udf ``udf`` (a key of FeaturePlan.udfs)
    # of the scalar values of groups ``args`` (all earlier in the list); ``source`` is then
    # the first argument's column, for error messages.
    udf: str | None = None
    args: tuple[int, ...] = ()
    # A product group (PolynomialFeatures) likewise reads no column: its register is the
    # float64 product of the scalar values of the two earlier groups ``args``.
    product: bool = False

    def clone(self) -> Group:
        return Group(self.source, list(self.ops), self.emit, self.width,
                     None if self.onehot_map is None else list(self.onehot_map),
                     None if self.lookup is None else list(self.lookup), self.unseen_error,
                     self.origin, self.udf, tuple(self.args), self.product)


@dataclass(frozen=True)
class Sym:
    """One output column of the preprocessing: slot ``slot`` of group ``group``."""

    group: int
    slot: int = 0


class FeaturePlan:
    """Groups over the schema's input columns, producing ``len(outputs)`` feature columns."""

    def __init__(self, inputs: list[tuple[str, str]], groups: list[Group], outputs: list[Sym],
                 feature_names: list[str], udfs: dict | None = None):
        self.inputs = list(inputs)  # (name, kind) of each input column the program reads
        self.groups = groups
        self.outputs = outputs
        self.feature_names = list(feature_names)
        self.udfs = dict(udfs or {})  # key -> forgeline.jit.UDF, for the udf groups
        self._program = None

    @property
    def n_features(self) -> int:
        return len(self.outputs)

    def pruned(self) -> FeaturePlan:
        """The same plan with only the groups and inputs that some output uses."""
        used = used_groups(self.groups, self.outputs)
        remap = {g: i for i, g in enumerate(used)}
        groups = [self.groups[g] for g in used]
        for i, g in enumerate(groups):
            if g.args:
                groups[i] = g.clone()
                groups[i].args = tuple(remap[a] for a in g.args)
        sources = {g.source for g in groups}
        inputs = [(n, k) for n, k in self.inputs if n in sources]
        outputs = [Sym(remap[s.group], s.slot) for s in self.outputs]
        keys = {g.udf for g in groups if g.udf is not None}
        return FeaturePlan(inputs, groups, outputs, self.feature_names,
                           {k: v for k, v in self.udfs.items() if k in keys})

    # ------------------------------------------------------------------ native program
    def _pack(self) -> dict[str, np.ndarray]:
        """Prune unused groups, resolve output positions, and flatten into arrays."""
        col_index = {name: i for i, (name, _) in enumerate(self.inputs)}
        kinds = {name: k for name, k in self.inputs}
        # positions of each (group, local slot) in the output
        where: dict[tuple[int, int], list[int]] = {}
        for pos, s in enumerate(self.outputs):
            where.setdefault((s.group, s.slot), []).append(pos)
        arr: dict[str, list] = {k: [] for k in (
            "src", "src_kind", "op_begin", "op_end", "emit", "slot", "tab_off", "tab_len",
            "unseen_error", "op_code", "op_off", "op_len", "op_a", "op_b",
            "udf_fn", "reg_off", "reg_len")}
        dtab: list[float] = []
        itab: list[int] = []
        owner: list[int] = []  # native group -> plan group index (for error messages)
        udf_state: dict = {"addr": [], "index": {}, "n_regs": 0}
        used = sorted({s.group for s in self.outputs})
        for gi in used:
            g = self.groups[gi]
            # a scalar/lookup group used at several positions is emitted once per position;
            # a width-k look-up runs as k width-1 native look-ups (one table column each)
            if g.emit == "onehot":
                natives = [(None, 0)]
            else:
                natives = [(pos, t) for t in range(g.width if g.emit == "lookup" else 1)
                           for pos in where.get((gi, t), [])]
            for pos, lcol in natives:
                udf_regs = self._pack_udf_args(gi, arr, dtab, owner, col_index, kinds, udf_state)
                owner.append(gi)
                _append_source(arr, g, col_index, kinds, udf_regs)
                arr["op_begin"].append(len(arr["op_code"]))
                _append_ops(arr, dtab, g.ops)
                arr["op_end"].append(len(arr["op_code"]))
                arr["emit"].append(EMITS[g.emit])
                arr["unseen_error"].append(int(g.unseen_error))
                if g.emit == "onehot":
                    arr["slot"].append(0)
                    arr["tab_off"].append(len(itab))
                    arr["tab_len"].append(len(g.onehot_map))
                    for local in g.onehot_map:
                        if local < 0:
                            itab.append(local)
                        else:
                            ps = where.get((gi, local), [])
                            # a one-hot slot used twice is rare (duplicated columns); the
                            # first position gets it and later ones are refused at compile
                            itab.append(ps[0] if ps else ONEHOT_ZEROS)
                elif g.emit == "lookup":
                    arr["slot"].append(pos)
                    arr["tab_off"].append(len(dtab))
                    column = g.lookup[lcol::g.width]
                    arr["tab_len"].append(len(column))
                    dtab.extend(float(v) for v in column)
                else:
                    arr["slot"].append(pos)
                    arr["tab_off"].append(0)
                    arr["tab_len"].append(0)
        out = {k: np.asarray(v, dtype=np.float64 if k in ("op_a", "op_b") else np.int32)
               for k, v in arr.items()}
        out["udf_addr"] = udf_state["addr"]
        out["n_regs"] = udf_state["n_regs"]
        out["dtab"] = np.asarray(dtab, dtype=np.float64)
        out["itab"] = np.asarray(itab, dtype=np.int32)
        self._owner = owner
        return out

    def _pack_udf_args(self, gi, arr, dtab, owner, col_index, kinds, st):
        """For a udf or product group: emit its arguments as register groups (their own
        arguments first) and return (udf index or -1, first register, count); None for other
        groups."""
        g = self.groups[gi]
        if g.udf is None and not g.product:
            return None
        nested = {a: self._pack_udf_args(a, arr, dtab, owner, col_index, kinds, st) for a in g.args}
        r0 = st["n_regs"]
        st["n_regs"] += len(g.args)
        for j, a in enumerate(g.args):
            ag = self.groups[a]
            if ag.emit != "scalar":
                raise ValueError("plan: a udf or product argument must be a scalar group")
            owner.append(a)
            _append_source(arr, ag, col_index, kinds, nested[a])
            arr["op_begin"].append(len(arr["op_code"]))
            _append_ops(arr, dtab, ag.ops)
            arr["op_end"].append(len(arr["op_code"]))
            arr["emit"].append(EMIT_REGISTER)
            arr["unseen_error"].append(0)
            arr["slot"].append(r0 + j)
            arr["tab_off"].append(0)
            arr["tab_len"].append(0)
        if g.product:
            return -1, r0, len(g.args)
        key = (g.udf, len(g.args))
        if key not in st["index"]:
            st["index"][key] = len(st["addr"])
            st["addr"].append(int(self.udfs[g.udf].address(len(g.args))))
        return st["index"][key], r0, len(g.args)

    def program(self):
        if self._program is None:
            register_numpy_loops()
            packed = self._pack()
            self._program = _Program(core.FeatureProgram(self.n_features, **packed), self)
        return self._program

    def run(self, frame: _frame.Frame, n_threads: int | None = None, start: int = 0,
            stop: int | None = None) -> np.ndarray:
        """Feature matrix (stop - start, n_features) float64 for rows [start, stop) of a
        validated frame."""
        stop = frame.n_rows if stop is None else stop
        cols, kinds = self.columns_of(frame, start, stop)
        try:
            return self.program().run(cols, kinds, stop - start, resolve_threads(n_threads))
        except ValueError as exc:
            if "in plan group " not in str(exc):
                raise
            raise self._group_error(str(exc)) from None

    def columns_of(self, frame: _frame.Frame, start: int = 0, stop: int | None = None):
        """(input columns, source kinds) of rows [start, stop) as the native program reads them."""
        stop = frame.n_rows if stop is None else stop
        cols, kinds = [], []
        for name, kind in self.inputs:
            v = frame[name].values
            if start != 0 or stop != len(v):
                v = v[start:stop]
            if kind == _frame.CATEGORICAL:
                kinds.append(SOURCE_CODES)
            elif kind == _frame.DATETIME:
                kinds.append(SOURCE_DATETIME)
            else:
                if v.dtype != np.float64:
                    v = v.astype(np.float64)
                kinds.append(SOURCE_FLOAT64)
            cols.append(v)
        return cols, np.asarray(kinds, dtype=np.int32)

    def _group_error(self, msg: str) -> DataError:
        """The typed error for a native group failure, naming the input column."""
        head, _, tail = msg.partition("in plan group ")
        idx, _, what = tail.partition(":")
        owner = getattr(self, "_owner", [])
        g = self.groups[owner[int(idx)]] if int(idx) < len(owner) else None
        col = g.source if g else "?"
        origin = g.origin if g else "?"
        if "udf failed" in head:
            return DataError(f"udf {g.udf if g else '?'!r} ({origin}) raised an exception while "
                             "scoring; see stderr for the Python error", column=col)
        if "check failed" in head:
            what = what.strip()
            return DataError(f"Input contains {what}: column {col!r} has {what} values, which "
                             f"{origin} does not allow", column=col)
        return DataError(f"column {col!r} has a category unseen at fit time and {origin} uses "
                         "handle_unknown='error'", column=col)

    def describe(self) -> list[str]:
        """One line per used group: source, ops and emit."""
        lines = []
        used = sorted({s.group for s in self.outputs})
        for gi in used:
            g = self.groups[gi]
            chain = " -> ".join(op.describe() for op in g.ops) or "identity"
            extra = f" -> onehot[{g.width}]" if g.emit == "onehot" else (
                f" -> lookup[{len(g.lookup) // max(g.width, 1)}x{g.width}]" if g.emit == "lookup"
                else "")
            names = ", ".join(self.groups[a].source for a in g.args)
            head = f"product({names})" if g.product else \
                g.source if g.udf is None else f"udf {g.udf}({names})"
            lines.append(f"{head}: {chain}{extra}    ({g.origin})")
        return lines

    # ------------------------------------------------------------------ persistence
    def to_parts(self) -> tuple[dict, dict[str, np.ndarray]]:
        groups = []
        for g in self.groups:
            groups.append({
                "source": g.source, "emit": g.emit, "width": g.width,
                "unseen_error": int(g.unseen_error), "origin": g.origin,
                "ops": [{"name": o.name, "a": o.a, "b": o.b,
                         **({"table": [float(t) for t in o.table]} if o.table is not None else {})}
                        for o in g.ops],
                **({"onehot_map": [int(v) for v in g.onehot_map]} if g.onehot_map is not None else {}),
                **({"lookup": [_json_float(v) for v in g.lookup]} if g.lookup is not None else {}),
                **({"udf": g.udf, "args": [int(a) for a in g.args]} if g.udf is not None else {}),
                **({"product": [int(a) for a in g.args]} if g.product else {}),
            })
        meta = {"inputs": [list(x) for x in self.inputs], "groups": groups,
                "outputs": [[s.group, s.slot] for s in self.outputs],
                "feature_names": self.feature_names}
        if self.udfs:
            from ._udf_plan import udf_specs

            meta["udfs"] = udf_specs(self)
        return meta, {}

    @classmethod
    def from_parts(cls, meta: dict, arrays: dict | None = None, *,
                   allow_code: bool = False) -> FeaturePlan:
        from ._udf_plan import load_udfs

        udfs = load_udfs(meta, allow_code)  # refuses a bundle with code before reading more
        try:
            inputs = [(str(n), str(k)) for n, k in meta["inputs"]]
            if len(meta["groups"]) > MAX_GROUPS:
                raise BundleError(f"plan has {len(meta['groups'])} groups, over the limit {MAX_GROUPS}")
            groups = []
            for g in meta["groups"]:
                ops = []
                for o in g["ops"]:
                    if o["name"] not in OP_CODES:
                        raise BundleError(f"unknown plan op {o['name']!r}")
                    table = tuple(float(t) for t in o["table"]) if "table" in o else None
                    ops.append(OpSpec(o["name"], float(o["a"]), float(o["b"]), table))
                if g["emit"] not in EMITS:
                    raise BundleError(f"unknown plan emit {g['emit']!r}")
                if "product" in g and ("udf" in g or not isinstance(g["product"], list)
                                       or len(g["product"]) != 2):
                    raise BundleError("feature plan product group must name exactly two "
                                      "argument groups and no udf")
                groups.append(Group(
                    str(g["source"]), ops, g["emit"], _int(g["width"], 1, MAX_TABLE),
                    [_int(v, ONEHOT_RAISE, MAX_TABLE) for v in g["onehot_map"]] if "onehot_map" in g else None,
                    [_parse_float(v) for v in g["lookup"]] if "lookup" in g else None,
                    _int(g["unseen_error"], 0, 3), str(g["origin"]),
                    str(g["udf"]) if "udf" in g else None,
                    tuple(_int(a, 0, MAX_GROUPS) for a in g["args"]) if "udf" in g else
                    tuple(_int(a, 0, MAX_GROUPS) for a in g["product"]) if "product" in g else (),
                    "product" in g))
            outputs = [Sym(_int(a, 0, MAX_GROUPS), _int(b, 0, MAX_TABLE)) for a, b in meta["outputs"]]
            names = [str(n) for n in meta["feature_names"]]
        except BundleError:
            raise
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise BundleError(f"malformed feature plan in bundle: {exc!r}") from exc
        known = {n for n, _ in inputs}
        for s in outputs:
            if not 0 <= s.group < len(groups):
                raise BundleError("feature plan output refers to a missing group")
        for s in outputs:
            g = groups[s.group]
            if not 0 <= s.slot < (g.width if g.emit in ("onehot", "lookup") else 1):
                raise BundleError("feature plan output refers to a missing slot")
        used = {s.group for s in outputs}
        for gi, g in enumerate(groups):
            if g.source not in known:
                raise BundleError(f"feature plan reads unknown input column {g.source!r}")
            if g.emit == "onehot" and (g.onehot_map is None or any(
                    not ONEHOT_RAISE <= v < g.width for v in g.onehot_map)):
                raise BundleError("feature plan one-hot map is out of range")
            if g.emit == "lookup" and (not g.lookup or len(g.lookup) % g.width
                                       or len(g.lookup) // g.width < 2):
                raise BundleError("feature plan look-up table is missing or not width-aligned")
            if g.emit == "scalar" and g.width != 1:
                raise BundleError("feature plan scalar group must have width 1")
            is_dt = g.udf is None and not g.product and dict(inputs).get(g.source) == _frame.DATETIME
            starts = bool(g.ops) and g.ops[0].name == "date_part"
            if (starts and not is_dt) or (is_dt and not starts and gi in used) or \
                    any(o.name == "date_part" for o in g.ops[1:]):
                raise BundleError("feature plan date_part must be exactly the first op of a "
                                  "datetime column's group")
            for o in g.ops:
                if (o.table is not None) != (o.name in ("searchsorted_right", "code_of")):
                    raise BundleError(f"feature plan op {o.name!r} has a table mismatch")
                if o.name == "date_part" and o.a not in (0, 1, 2, 3, 4, 5, 6, 7):
                    raise BundleError("feature plan date_part has an unknown part")
        from ._udf_plan import check_udf_groups

        check_udf_groups(groups, udfs)
        _check_product_groups(groups)
        plan = cls(inputs, groups, outputs, names, udfs)
        if allow_code == "describe":
            return plan  # inspection only: the udfs are not compiled, the plan cannot run
        try:
            plan.program()  # the native side re-validates every index
        except ValueError as exc:
            raise BundleError(f"invalid feature plan in bundle: {exc}") from exc
        return plan


class _Program:
    """The native program, with its group failures raised as typed errors naming the column
    (the single-row path calls ``run_rows`` directly)."""

    __slots__ = ("native", "plan")

    def __init__(self, native, plan: FeaturePlan):
        self.native, self.plan = native, plan

    @property
    def n_slots(self) -> int:
        return self.native.n_slots

    def run(self, *args, **kw):
        return self.native.run(*args, **kw)

    def run_rows(self, X, n_threads: int = 0):
        try:
            return self.native.run_rows(X, n_threads)
        except ValueError as exc:
            if "in plan group " not in str(exc):
                raise
            raise self.plan._group_error(str(exc)) from None


_SOURCE_OF_KIND = {_frame.CATEGORICAL: SOURCE_CODES, _frame.DATETIME: SOURCE_DATETIME}
SOURCE_UDF, EMIT_REGISTER, SOURCE_PRODUCT = 4, 3, 5


def _check_product_groups(groups: list[Group]) -> None:
    """Product groups read two scalar groups that come before them (no cycles) and name the
    first one's column (for error messages)."""
    for gi, g in enumerate(groups):
        if not g.product:
            continue
        if len(g.args) != 2 or any(not 0 <= a < gi for a in g.args):
            raise BundleError("feature plan product arguments must be two earlier groups")
        if any(groups[a].emit != "scalar" for a in g.args):
            raise BundleError("feature plan product arguments must be scalar groups")
        if g.source != groups[g.args[0]].source:
            raise BundleError("feature plan product group must name its first argument's column")


def used_groups(groups: list[Group], outputs: list[Sym]) -> list[int]:
    """Indices of the groups some output depends on, directly or as a udf argument."""
    used: set[int] = set()
    stack = [s.group for s in outputs]
    while stack:
        gi = stack.pop()
        if gi not in used:
            used.add(gi)
            stack.extend(groups[gi].args)
    return sorted(used)


def _append_source(arr, g: Group, col_index, kinds, udf_regs) -> None:
    if udf_regs is None:
        arr["src"].append(col_index[g.source])
        arr["src_kind"].append(_SOURCE_OF_KIND.get(kinds[g.source], SOURCE_FLOAT64))
        arr["udf_fn"].append(-1)
        arr["reg_off"].append(0)
        arr["reg_len"].append(0)
    else:
        arr["src"].append(0)
        arr["src_kind"].append(SOURCE_UDF if udf_regs[0] >= 0 else SOURCE_PRODUCT)
        arr["udf_fn"].append(udf_regs[0])
        arr["reg_off"].append(udf_regs[1])
        arr["reg_len"].append(udf_regs[2])


def _append_ops(arr, dtab, ops) -> None:
    for op in ops:
        arr["op_code"].append(OP_CODES[op.name])
        arr["op_a"].append(float(op.a))
        arr["op_b"].append(float(op.b))
        if op.table is not None:
            arr["op_off"].append(len(dtab))
            arr["op_len"].append(len(op.table))
            dtab.extend(float(v) for v in op.table)
        else:
            arr["op_off"].append(0)
            arr["op_len"].append(0)


# ------------------------------------------------------------------ numpy's log1p/expm1 loops
#
# numpy dispatches log1p/expm1 to SIMD code (SVML on AVX-512) whose results differ from the
# C library's in the last bit on some inputs. Pipelines call numpy, so to stay bit-identical
# the executor calls the very same float64 loop functions (by address, no Python involved).
# The addresses are read from the ufunc object (numpy's public ``PyUFuncObject`` layout) and
# then *verified* on a probe vector; on any surprise the executor keeps using libm.

class _UFuncHead(ctypes.Structure):
    # PyUFuncObject's leading fields (numpy/ufuncobject.h), stable since numpy 1.x.
    _fields_ = [("ob_refcnt", ctypes.c_ssize_t), ("ob_type", ctypes.c_void_p),
                ("nin", ctypes.c_int), ("nout", ctypes.c_int), ("nargs", ctypes.c_int),
                ("identity", ctypes.c_int), ("functions", ctypes.POINTER(ctypes.c_void_p)),
                ("data", ctypes.POINTER(ctypes.c_void_p)), ("ntypes", ctypes.c_int),
                ("reserved1", ctypes.c_int), ("name", ctypes.c_char_p),
                ("types", ctypes.POINTER(ctypes.c_char))]


def _ufunc_loop(ufunc) -> tuple[int, int]:
    head = _UFuncHead.from_address(id(ufunc))
    # Plain integer fields first: only dereference pointers once the layout looks right.
    if (head.nin, head.nout, head.nargs, head.ntypes) != (1, 1, 2, ufunc.ntypes):
        raise RuntimeError("unexpected ufunc layout")
    if head.name != ufunc.__name__.encode():
        raise RuntimeError("unexpected ufunc layout")
    dbl = np.dtype(np.float64).num
    for i in range(head.ntypes):
        if ord(head.types[2 * i]) == dbl and ord(head.types[2 * i + 1]) == dbl:
            fn, data = head.functions[i], head.data[i]
            if not fn:
                break
            return int(fn), int(data or 0)
    raise RuntimeError(f"no float64 loop found for {ufunc.__name__}")


_LOOPS_STATE: list[bool] = []


def register_numpy_loops() -> bool:
    """Hand numpy's float64 log1p/expm1 loops to the executor (once); True if bit-exact."""
    if _LOOPS_STATE:
        return _LOOPS_STATE[0]
    _LOOPS_STATE.append(False)  # set before the probe run, which builds a program itself
    try:
        log1p, log1p_data = _ufunc_loop(np.log1p)
        expm1, expm1_data = _ufunc_loop(np.expm1)
    except Exception:  # noqa: BLE001 - any layout surprise: keep libm
        core._set_numpy_loops(0, 0, 0, 0)
        return False
    core._set_numpy_loops(log1p, log1p_data, expm1, expm1_data)
    ok = _verify_loops()
    if not ok:
        core._set_numpy_loops(0, 0, 0, 0)
    _register_exp_loop()
    _LOOPS_STATE[0] = ok
    return ok


def _register_exp_loop() -> None:
    """numpy's float64 exp loop for the fused head's logistic link, verified like the others;
    without it the fused head leaves the link to Python (see ``exp_loop_ok``)."""
    try:
        fn, data = _ufunc_loop(np.exp)
    except Exception:  # noqa: BLE001 - any layout surprise: keep the link in Python
        return
    core._set_numpy_exp_loop(fn, data)
    rng = np.random.default_rng(4321)
    x = np.concatenate([rng.normal(0, 30, 4000), rng.normal(0, 1e-6, 200), np.arange(-760.0, 760.0),
                        [0.0, -0.0, np.inf, -np.inf, np.nan, 709.78, -745.2, 5e-324]])
    with np.errstate(all="ignore"):
        ok = np.array_equal(core._numpy_exp(x), np.exp(x), equal_nan=True)
    if ok:
        _EXP_LOOP.append(True)
    else:
        core._set_numpy_exp_loop(0, 0)


_EXP_LOOP: list[bool] = []


def exp_loop_ok() -> bool:
    """Whether the native executor calls numpy's own exp (so a native logistic link gives
    the very bits of ``1 / (1 + np.exp(-z))``)."""
    register_numpy_loops()
    return bool(_EXP_LOOP)


def _verify_loops() -> bool:
    rng = np.random.default_rng(12345)
    x = np.concatenate([rng.lognormal(0, 2, 3000), -rng.random(500), rng.normal(0, 1e-3, 500),
                        [0.0, -0.0, np.inf, -np.inf, np.nan, 1e300, 5e-324, -1.0, -2.0]])
    groups = [Group("x", [OpSpec("log1p")]), Group("x", [OpSpec("expm1")]),
              Group("x", [OpSpec("yeo_johnson", 0.7)])]
    fp = FeaturePlan([("x", _frame.NUMERIC)], groups, [Sym(0), Sym(1), Sym(2)], ["a", "b", "c"])
    with np.errstate(all="ignore"):
        out = core.FeatureProgram(3, **fp._pack()).run([x], np.zeros(1, np.int32), x.size, 1)
        pos = x >= 0
        yj = np.zeros_like(x)
        yj[pos] = np.expm1(0.7 * np.log1p(x[pos])) / 0.7
        yj[~pos] = -np.expm1((2 - 0.7) * np.log1p(-x[~pos])) / (2 - 0.7)
        want = (np.log1p(x), np.expm1(x), yj)
    return all(np.array_equal(out[:, i], w, equal_nan=True) for i, w in enumerate(want))


def _int(v, lo: int, hi: int) -> int:
    """An integer field of an untrusted plan, range-checked before any native code sees it."""
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise BundleError(f"feature plan field {v!r} is not an integer in [{lo}, {hi}]")
    return v


def _json_float(v: float):
    v = float(v)
    return v if np.isfinite(v) else ("nan" if np.isnan(v) else ("inf" if v > 0 else "-inf"))


def _parse_float(v) -> float:
    return float(v) if not isinstance(v, str) else float(v)
