"""Translate fitted scikit-learn preprocessing (and forgeline's mirrored transformers) into
:mod:`forgeline.plan` groups.

Each handler reads the fitted attributes of one transformer (``mean_``, ``scale_``,
``statistics_``, ``categories_``, ``bin_edges_``, ...) and appends ops that repeat the
transformer's own arithmetic in the same order. forgeline's transformers mirror sklearn's
names and attributes, so one handler serves both. Nothing here imports sklearn: objects are
recognised by class name and attributes.
"""

from __future__ import annotations

import math

import numpy as np

from ._frame import CATEGORICAL, DATETIME
from .errors import UnsupportedModelError
from .plan import ONEHOT_RAISE, ONEHOT_ZEROS, Group, OpSpec, Sym

_UFUNCS = {"log1p": "log1p", "expm1": "expm1", "sqrt": "sqrt", "absolute": "abs", "abs": "abs",
           "log": "log", "exp": "exp"}


class Builder:
    """Holds the groups and the growing vocabularies while a pipeline is translated."""

    def __init__(self, inputs: list[tuple[str, str]], vocabularies: dict[str, list]):
        self.inputs = inputs
        self.kinds = dict(inputs)
        self.vocab = {k: list(v) for k, v in vocabularies.items()}
        self.groups: list[Group] = []
        # per group: True when its register holds a code into vocab[source]
        self.is_code: list[bool] = []
        self.udfs: dict = {}  # plan key -> forgeline.jit.UDF (see _udf)

    def base_syms(self) -> list[Sym]:
        out = []
        for name, kind in self.inputs:
            self.groups.append(Group(name, origin="input"))
            self.is_code.append(kind == CATEGORICAL)
            out.append(Sym(len(self.groups) - 1))
        return out

    def code_for(self, column: str, value) -> int:
        """The code of ``value`` in the column's vocabulary, appending it when new."""
        voc = self.vocab.setdefault(column, [])
        key = _vocab_key(value)
        for i, v in enumerate(voc):
            if _vocab_key(v) == key:
                return i
        voc.append(value.item() if isinstance(value, np.generic) else value)
        return len(voc) - 1

    def derive(self, sym: Sym, op: OpSpec | None, origin: str, *, is_code: bool | None = None) -> Sym:
        """A new scalar group: ``sym``'s chain plus ``op`` (copy-on-write)."""
        g = self.groups[sym.group]
        if g.emit != "scalar":
            raise UnsupportedModelError(
                f"{origin} after a one-hot or look-up output is not supported yet", op=origin)
        ng = g.clone()
        if op is not None:
            ng.ops.append(op)
        ng.origin = origin
        self.groups.append(ng)
        self.is_code.append(self.is_code[sym.group] if is_code is None else is_code)
        return Sym(len(self.groups) - 1)

    def require_numeric(self, sym: Sym, origin: str) -> None:
        if self.is_code[sym.group]:
            raise UnsupportedModelError(
                f"{origin} applied to categorical column {self.groups[sym.group].source!r} "
                "(strings) is not supported; encode it first", op=origin,
                column=self.groups[sym.group].source)


def _vocab_key(v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ("missing",)
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        return ("num", int(v))
    if isinstance(v, (int, float)):
        return ("num", v)
    return ("str", str(v))


def _is_missing(v) -> bool:
    return v is None or (isinstance(v, (float, np.floating)) and math.isnan(v)) or \
        type(v).__name__ in ("NAType", "NaTType")


def _name(obj) -> str:
    return type(obj).__name__


# ------------------------------------------------------------------------- dispatch

def apply(b: Builder, est, syms: list[Sym], path: str) -> list[Sym]:
    """Translate fitted transformer ``est`` applied to ``syms``; returns its output syms."""
    if est == "passthrough" or est is None:
        return list(syms)
    if est == "drop":
        return []
    name = _name(est)
    origin = f"{name}[{path}]" if path else name
    handler = _HANDLERS.get(name)
    if _is_forgeline(est):
        if name == "ColumnTransformer":
            return _forgeline_column_transformer(b, est, syms, path)
        if name != "Pipeline":
            handler = _forgeline
    if handler is None:
        raise UnsupportedModelError(f"cannot compile transformer {name} at {path or 'top level'}",
                                    op=origin)
    n_in = getattr(est, "n_features_in_", None)
    if n_in is not None and name not in ("Pipeline", "ColumnTransformer") and n_in != len(syms):
        raise UnsupportedModelError(f"{origin} expects {n_in} inputs but receives {len(syms)}",
                                    op=origin)
    if name in ("Pipeline", "ColumnTransformer"):
        return handler(b, est, syms, path)  # containers pass their path on, not a label
    return handler(b, est, syms, origin)


def _pipeline(b, est, syms, path):
    for step_name, step in est.steps:
        syms = apply(b, step, syms, f"{path}/{step_name}" if path else step_name)
    return syms


def _column_transformer(b, est, syms, path):
    indices = getattr(est, "_transformer_to_input_indices", None)
    if indices is None:
        raise UnsupportedModelError("ColumnTransformer is not fitted", op=path)
    out: list[Sym] = []
    for tname, trans, _cols in est.transformers_:
        idx = indices.get(tname, [])
        if trans == "drop" or len(idx) == 0:
            continue
        sub = [syms[int(i)] for i in idx]
        out.extend(apply(b, trans, sub, f"{path}/{tname}" if path else tname))
    return out


def _per_column(b, syms, origin, make_ops, numeric=True):
    out = []
    for j, s in enumerate(syms):
        if numeric:
            b.require_numeric(s, origin)
        ops = make_ops(j)
        cur = s
        for op in ops:
            cur = b.derive(cur, op, origin)
        if not ops:
            cur = b.derive(cur, None, origin)
        out.append(cur)
    return out


def _standard_scaler(b, est, syms, origin):
    mean = getattr(est, "mean_", None)
    scale = getattr(est, "scale_", None)

    def ops(j):
        r = []
        if est.with_mean and mean is not None:
            r.append(OpSpec("sub", float(mean[j])))
        if est.with_std and scale is not None:
            r.append(OpSpec("div", float(scale[j])))
        return r
    return _per_column(b, syms, origin, ops)


def _minmax(b, est, syms, origin):
    lo, hi = est.feature_range

    def ops(j):
        r = [OpSpec("mul", float(est.scale_[j])), OpSpec("add", float(est.min_[j]))]
        if getattr(est, "clip", False):
            r.append(OpSpec("clip", float(lo), float(hi)))
        return r
    return _per_column(b, syms, origin, ops)


def _robust(b, est, syms, origin):
    def ops(j):
        r = []
        if est.with_centering:
            r.append(OpSpec("sub", float(est.center_[j])))
        if est.with_scaling:
            r.append(OpSpec("div", float(est.scale_[j])))
        return r
    return _per_column(b, syms, origin, ops)


def _maxabs(b, est, syms, origin):
    return _per_column(b, syms, origin, lambda j: [OpSpec("div", float(est.scale_[j]))])


def _function_transformer(b, est, syms, origin):
    func = est.func
    if getattr(est, "kw_args", None):
        raise UnsupportedModelError(f"{origin}: kw_args are not supported", op=origin)
    if _name(func) == "UDF" and type(func).__module__ == "forgeline.jit":
        return _udf(b, func, syms, origin)
    if func is None:
        return _per_column(b, syms, origin, lambda j: [])
    fname = getattr(func, "__name__", "")
    if not isinstance(func, np.ufunc) or fname not in _UFUNCS:
        raise UnsupportedModelError(
            f"{origin}: only the numpy ufuncs {sorted(_UFUNCS)} (or forgeline.udf) can be compiled, "
            f"not {fname or func!r}", op=origin)
    return _per_column(b, syms, origin, lambda j: [OpSpec(_UFUNCS[fname])])


def _simple_imputer(b, est, syms, origin):
    mv = est.missing_values
    if not (isinstance(mv, float) and math.isnan(mv)) and mv is not None and \
            type(mv).__name__ != "NAType":
        raise UnsupportedModelError(f"{origin}: missing_values={mv!r} is not supported (only NaN/None)",
                                    op=origin)
    stats = est.statistics_
    keep_empty = getattr(est, "keep_empty_features", False)
    out, indicators = [], []
    ind = getattr(est, "indicator_", None)
    ind_features = set(int(i) for i in ind.features_) if ind is not None else set()
    for j, s in enumerate(syms):
        if j in ind_features:
            indicators.append(b.derive(s, OpSpec("isnan"), origin, is_code=False))
        v = stats[j]
        if _is_missing(v) and not keep_empty:
            continue  # sklearn drops all-missing columns
        if b.is_code[s.group]:
            code = b.code_for(b.groups[s.group].source, v)
            out.append(b.derive(s, OpSpec("impute", float(code)), origin))
        else:
            fill = 0.0 if _is_missing(v) else float(v)
            out.append(b.derive(s, OpSpec("impute", fill), origin))
    # sklearn appends the indicator columns after the imputed ones, in feature order
    return out + indicators


def _category_codes(b, s: Sym, cats, origin) -> tuple[Sym, dict[int, int], int | None]:
    """Make ``s`` hold a code and return (sym, {table index: category index}, missing cat idx)."""
    cats = list(cats)
    missing_idx = None
    if cats and _is_missing(cats[-1]):
        missing_idx = len(cats) - 1
    real = cats if missing_idx is None else cats[:-1]
    table: dict[int, int] = {}
    if b.is_code[s.group]:
        col = b.groups[s.group].source
        for k, c in enumerate(real):
            table[b.code_for(col, c)] = k
        return b.derive(s, None, origin), table, missing_idx
    try:
        values = np.asarray(real, dtype=np.float64)
    except (TypeError, ValueError):
        raise UnsupportedModelError(
            f"{origin}: string categories on a numeric column", op=origin,
            column=b.groups[s.group].source) from None
    order = np.argsort(values, kind="stable")
    sym = b.derive(s, OpSpec("code_of", table=tuple(values[order].tolist())), origin, is_code=True)
    for pos, k in enumerate(order):
        table[pos] = int(k)
    return sym, table, missing_idx


def _onehot(b, est, syms, origin):
    if getattr(est, "sparse_output", False):
        # the numbers are the same; forgeline always produces dense features
        pass
    hu = est.handle_unknown
    infrequent_enabled = getattr(est, "_infrequent_enabled", False)
    drop_after = getattr(est, "_drop_idx_after_grouping", None)
    out = []
    for j, s in enumerate(syms):
        cats = est.categories_[j]
        mapping = est._default_to_infrequent_mappings[j] if infrequent_enabled else None
        sym, table, missing_idx = _category_codes(b, s, cats, origin)
        if mapping is not None and len(mapping) != len(cats):
            raise UnsupportedModelError(f"{origin}: infrequent-category mapping of unexpected "
                                        "length (sklearn version?)", op=origin)
        n_cats = len(cats)

        def grouped(k):
            return int(mapping[k]) if mapping is not None else k

        n_grouped = (int(mapping.max()) + 1) if mapping is not None else n_cats
        drop = None if drop_after is None else drop_after[j]
        drop = None if drop is None else int(drop)

        def slot_of(m):
            if drop is not None:
                if m == drop:
                    return ONEHOT_ZEROS
                return m - 1 if m > drop else m
            return m

        width = n_grouped - (1 if drop is not None else 0)
        infrequent_slot = slot_of(n_grouped - 1) if mapping is not None else None
        if hu == "error":
            unknown = ONEHOT_RAISE
        elif hu in ("infrequent_if_exist", "warn") and infrequent_slot is not None:
            unknown = infrequent_slot
        else:
            unknown = ONEHOT_ZEROS
        size = 2 + (max(table) + 1 if table else 0)
        omap = [unknown] * size
        omap[1] = slot_of(grouped(missing_idx)) if missing_idx is not None else unknown
        for code, k in table.items():
            omap[2 + code] = slot_of(grouped(k))
        g = b.groups[sym.group]
        g.emit, g.width, g.onehot_map = "onehot", width, omap
        out.extend(Sym(sym.group, i) for i in range(width))
        del n_cats
    return out


def _ordinal(b, est, syms, origin):
    hu = est.handle_unknown
    unknown_value = getattr(est, "unknown_value", None)
    enc_missing = getattr(est, "encoded_missing_value", np.nan)
    if getattr(est, "_infrequent_enabled", False):
        raise UnsupportedModelError(f"{origin}: infrequent categories are not supported yet", op=origin)
    out = []
    for j, s in enumerate(syms):
        sym, table, missing_idx = _category_codes(b, s, est.categories_[j], origin)
        unseen = float(unknown_value) if hu == "use_encoded_value" else np.nan
        bits = 0 if hu == "use_encoded_value" else 1
        if missing_idx is not None:
            missing = float(enc_missing)
        else:
            missing, bits = unseen, bits | (2 if hu != "use_encoded_value" else 0)
        size = 2 + (max(table) + 1 if table else 0)
        lookup = [unseen] * size
        lookup[1] = missing
        for code, k in table.items():
            lookup[2 + code] = float(k)
        g = b.groups[sym.group]
        g.emit, g.lookup, g.unseen_error = "lookup", lookup, bits
        out.append(sym)
    return out


def _target_encoder(b, est, syms, origin):
    """sklearn's fitted TargetEncoder as ``transform`` applies it (``fit_transform``'s
    cross-fitted values are a training-time matter): each category's encoding, the missing
    category's own encoding when NaN was seen in fit, and ``target_mean_`` for unseen and
    (otherwise) missing values. Multiclass targets give one column per class, feature-major."""
    multi = est.target_type_ == "multiclass"
    width = len(est.classes_) if multi else 1
    mean = np.atleast_1d(np.asarray(est.target_mean_, dtype=np.float64))
    out = []
    for j, s in enumerate(syms):
        sym, table, missing_idx = _category_codes(b, s, est.categories_[j], origin)
        if multi:
            enc = np.stack([np.asarray(est.encodings_[j * width + c], dtype=np.float64)
                            for c in range(width)], axis=1)
        else:
            enc = np.asarray(est.encodings_[j], dtype=np.float64).reshape(-1, 1)
        size = 2 + (max(table) + 1 if table else 0)
        lookup = np.tile(mean, (size, 1))
        if missing_idx is not None:
            lookup[1] = enc[missing_idx]
        for code, k in table.items():
            lookup[2 + code] = enc[k]
        g = b.groups[sym.group]
        g.emit, g.width, g.lookup, g.unseen_error = "lookup", width, lookup.ravel().tolist(), 0
        out.extend(Sym(sym.group, i) for i in range(width))
    return out


def _kbins(b, est, syms, origin):
    encode = est.encode
    out = []
    for j, s in enumerate(syms):
        b.require_numeric(s, origin)
        edges = np.asarray(est.bin_edges_[j], dtype=np.float64)[1:-1]
        sym = b.derive(s, OpSpec("searchsorted_right", table=tuple(edges.tolist())), origin,
                       is_code=encode != "ordinal")
        if encode == "ordinal":
            out.append(sym)
            continue
        n = int(est.n_bins_[j])
        g = b.groups[sym.group]
        g.emit, g.width = "onehot", n
        g.onehot_map = [ONEHOT_ZEROS, ONEHOT_ZEROS] + list(range(n))
        out.extend(Sym(sym.group, i) for i in range(n))
    return out


# --------------------------------------------------------------- forgeline's own transformers
#
# A fitted forgeline transformer already describes its output as column programs whose ops
# *are* plan ops (forgeline.transforms._engine), so one handler serves all of them: it asks
# the transformer for its programs over the incoming groups. Only categorical inputs need
# work: the transformer's tables are indexed by codes into its own vocabulary, the plan's by
# codes into the schema's, so tables are re-indexed through the category values.

def _is_forgeline(est) -> bool:
    return type(est).__module__.startswith("forgeline.transforms")


def _forgeline(b, est, syms, origin):
    from ._frame import CATEGORICAL as CAT, DATETIME, NUMERIC
    from .transforms import _engine as eng  # lazy: only forgeline pipelines need it
    kind = getattr(est, "_input_kind", NUMERIC)
    if _name(est) == "UDFTransformer":
        return _udf(b, est._udf(), syms, origin)
    if _name(est) == "HashEncoder" or not hasattr(est, "_programs"):
        # HashEncoder's buckets are computed per batch vocabulary, outside its programs
        raise UnsupportedModelError(f"cannot compile forgeline transformer {_name(est)}", op=origin)
    ups, base, rows = [], [], []
    for j, s in enumerate(syms):
        src = b.groups[s.group].source
        if kind == CAT:
            s, table, _ = _category_codes(b, s, list(est._vocabularies()[j]), origin)
            # plan table index -> the transformer's: 0 unseen, 1 missing, 2 + code
            r = np.zeros(2 + (max(table) + 1 if table else 0), dtype=np.int64)
            r[1] = 1
            for code, k in table.items():
                r[2 + code] = 2 + k
            rows.append(r)
            ups.append(eng.Prog(eng.SRC_CODE, j, src))
        elif kind == DATETIME:
            if b.kinds.get(src) != DATETIME or b.groups[s.group].ops:
                raise UnsupportedModelError(f"{origin} needs a datetime input column", op=origin,
                                            column=src)
            ups.append(eng.Prog(eng.SRC_DATETIME, j, src))
        else:
            b.require_numeric(s, origin)
            ups.append(eng.Prog(eng.SRC_FLOAT, j, src))
        base.append(s)
    # handle_unknown="error": the transformer checks codes in Python before running its
    # programs; the plan raises from the table instead (unseen, and missing when not fitted)
    strict = getattr(est, "handle_unknown", None) == "error" and hasattr(est, "_missing_seen")
    out: list[Sym] = []
    for p in est._programs(ups, None):
        j = p.src
        if kind == CAT:
            p = p.emitting(p.emit, p.width, np.asarray(p.table)[rows[j]])
        gp = eng.to_group(p, ups[j].name, origin)
        sym = b.derive(base[j], None, origin, is_code=False)
        g = b.groups[sym.group]
        g.ops = gp.ops if kind == DATETIME else g.ops + gp.ops
        g.emit, g.width, g.onehot_map, g.lookup = gp.emit, gp.width, gp.onehot_map, gp.lookup
        if strict and kind == CAT:
            bad = rows[j] == 0
            bad[1] = not est._missing_seen(j)
            if g.emit == "onehot":
                g.onehot_map = [ONEHOT_RAISE if x else v for v, x in zip(g.onehot_map, bad)]
            elif g.emit == "lookup":
                g.unseen_error = 1 | (2 if bad[1] else 0)
        out.extend(Sym(sym.group, i) for i in range(g.width if g.emit != "scalar" else 1))
    return out


def _udf(b, fn, syms, origin):
    """A forgeline.udf over ``syms``: one group whose register is the udf of theirs; the
    executor calls the compiled function by address on each tile."""
    if not syms:
        raise UnsupportedModelError(f"{origin}: a udf needs at least one input column", op=origin)
    for s in syms:
        b.require_numeric(s, origin)
        if b.groups[s.group].emit != "scalar":
            raise UnsupportedModelError(f"{origin}: a udf after a one-hot or look-up output is "
                                        "not supported", op=origin)
    key = next((k for k, (u, n) in b.udfs.items() if u is fn and n == len(syms)), None)
    if key is None:
        key, i = fn.name, 1
        while key in b.udfs:
            i += 1
            key = f"{fn.name}_{i}"
        b.udfs[key] = (fn, len(syms))
    b.groups.append(Group(b.groups[syms[0].group].source, origin=origin, udf=key,
                          args=tuple(s.group for s in syms)))
    b.is_code.append(False)
    return [Sym(len(b.groups) - 1)]


def _polynomial(b, est, syms, origin):
    """PolynomialFeatures up to degree 2, in sklearn's ``powers_`` column order: the bias is
    a constant group, degree-1 terms the inputs, degree-2 terms product groups (x_i * x_j, or
    x_i * x_i for squares) read from the inputs' registers."""
    powers = np.asarray(getattr(est, "powers_", None), dtype=np.int64)
    if powers.ndim != 2 or powers.shape[1] != len(syms):
        raise UnsupportedModelError(f"{origin} is not fitted", op=origin)
    if powers.size and int(powers.sum(axis=1).max()) > 2:
        raise UnsupportedModelError(
            f"{origin}: PolynomialFeatures of degree {est.degree!r} is not supported (at most 2)",
            op=origin)
    # sklearn's transform refuses NaN and infinity, so the plan checks them too
    checked = []
    for s in syms:
        b.require_numeric(s, origin)
        if b.groups[s.group].emit != "scalar":
            raise UnsupportedModelError(f"{origin} after a one-hot or look-up output is not "
                                        "supported", op=origin)
        s = b.derive(s, OpSpec("check_nan"), origin)
        checked.append(b.derive(s, OpSpec("check_finite"), origin))
    out = []
    for row in powers:
        idx = [int(i) for i in np.flatnonzero(row) for _ in range(int(row[i]))]
        if not idx:
            out.append(_constant_one(b, origin))
        elif len(idx) == 1:
            out.append(checked[idx[0]])
        else:
            a, c = checked[idx[0]], checked[idx[1]]
            b.groups.append(Group(b.groups[a.group].source, origin=origin, args=(a.group, c.group),
                                  product=True))
            b.is_code.append(False)
            out.append(Sym(len(b.groups) - 1))
    return out


def _constant_one(b, origin) -> Sym:
    """A group that is 1.0 on every row: any input read, isnan (0 or 1), times 0, plus 1."""
    name, kind = next(((n, k) for n, k in b.inputs if k != DATETIME), b.inputs[0])
    ops = [OpSpec("date_part", 0.0)] if kind == DATETIME else []
    ops += [OpSpec("isnan"), OpSpec("mul", 0.0), OpSpec("add", 1.0)]
    b.groups.append(Group(name, ops, origin=origin))
    b.is_code.append(False)
    return Sym(len(b.groups) - 1)


def _forgeline_column_transformer(b, est, syms, path):
    names = [str(n) for n in getattr(est, "feature_names_in_", [])]
    out: list[Sym] = []
    for tname, trans, cols in est.transformers_:
        try:
            idx = [c if isinstance(c, (int, np.integer)) else names.index(str(c)) for c in cols]
        except ValueError:
            raise UnsupportedModelError(f"ColumnTransformer branch {tname!r} reads a column the "
                                        "compiled inputs lack", op=path) from None
        sub = [syms[int(i)] for i in idx]
        out.extend(apply(b, trans, sub, f"{path}/{tname}" if path else tname))
    return out


_HANDLERS = {
    "Pipeline": _pipeline,
    "ColumnTransformer": _column_transformer,
    "StandardScaler": _standard_scaler,
    "MinMaxScaler": _minmax,
    "RobustScaler": _robust,
    "MaxAbsScaler": _maxabs,
    "FunctionTransformer": _function_transformer,
    "SimpleImputer": _simple_imputer,
    "OneHotEncoder": _onehot,
    "OrdinalEncoder": _ordinal,
    "KBinsDiscretizer": _kbins,
    "TargetEncoder": _target_encoder,
    "PolynomialFeatures": _polynomial,
}

# sklearn-named handlers, plus every fitted forgeline transformer except HashEncoder
SUPPORTED_TRANSFORMERS = sorted(_HANDLERS)
