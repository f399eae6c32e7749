"""Folding per-column monotone maps into tree thresholds.

A tree that reads ``x = f(u)`` (``u`` an input column after its kept ops, ``f`` a chain of
imputing, affine, log1p/expm1/log/exp/sqrt, clip and binning ops) only ever asks "does this
row go left at this node". For a monotone ``f`` the rows going left are the raw values on
one side of a single raw threshold ``t'``, so the plan can drop ``f`` and the node can compare
``u`` with ``t'`` directly: the expensive ops (log1p, scaling) are gone from the scoring pass.

How ``t'`` is found. Never by inverting ``f``: we evaluate ``f`` exactly as the source does
(numpy's own ufuncs, scikit-learn's order of operations, in float64) followed by the tree
engine's own split rule (LightGBM's zero window and ``<=`` in float64, XGBoost's float32
cast and ``<``, scikit-learn's float32 cast and ``<=``, the per-node NaN direction), and we
bisect over the total order of doubles (their int64 bit patterns, ``-inf`` .. ``+inf``) for
the last raw value that goes left. A decreasing ``f`` (a negative scale) turns "goes left"
into an up-set, so the node's children are swapped; a node where no raw value goes left
gets its children swapped and ``t' = +inf``.

Why that is exact. Bisection is right when "goes left" is a down-set of raw doubles, which
holds when ``f`` is monotone *as computed*:

* affine ops, clip, sqrt and searchsorted are monotone as computed (one correctly rounded
  monotone operation each, and rounding is monotone);
* numpy's log1p/expm1/log/exp are only faithfully rounded, so their monotonicity is not a
  theorem. A non-monotone glitch can only move a decision within a few ulps of the
  threshold, so every threshold found is checked on a dense window of raw doubles around it
  (every double within ``DENSE_ULPS`` either side) and at geometric distances further out;
* ops that turn a number into NaN (log1p below -1, log and sqrt below 0) do so on a
  half-line of raw values. Such values go the node's NaN direction, which may not agree
  with the comparison. When it does not, the plan keeps a cheap *domain guard*: the folded
  column is ``u * g(u)`` where ``g`` is exactly 1.0 on the domain and NaN outside it
  (``sqrt(u - d)`` clipped to 0, plus 1), so those values stay NaN.

Every rewritten node is then verified on probes (the threshold and its neighbours, the
domain boundary, +-0, +-inf, NaN, LightGBM's zero window), target rule against source
rule; any disagreement, and anything not covered above (LightGBM zero-as-missing nodes,
categorical splits on a mapped column), leaves that column unfolded. Never a silent wrong
answer: compile's self-verification then still compares the folded scorer to the source.

One-hot blocks go the same way: a node on a one-hot column is a categorical split on the
code (members: the slot's categories), so the plan emits one code per column instead of its
block of mostly-zero columns (see ``_onehots_to_codes``).

Models that cast to float32 (XGBoost, scikit-learn trees) cannot read the raw column in
float32 (two raw values with the same float32 may map to different sides), so a folded
ensemble of theirs is re-expressed in float64 mode: every numeric threshold, on folded and
unfolded columns alike, becomes the float64 threshold found the same way (``f`` = identity).
"""

from __future__ import annotations

import numpy as np

from .errors import BundleError
from .models.trees import (CATEGORICAL, INVALID_LEFT, MEMBER_LEFT, NAN_LEFT, ZERO_MISSING,
                           TreeEnsemble, bits_from_ints)
from .plan import ONEHOT_RAISE, ONEHOT_ZEROS, FeaturePlan, Group, OpSpec, Sym

FOLD_KIND = "trees"
#: Every double this many steps either side of a threshold is checked when the map uses a
#: function numpy only rounds faithfully (log1p, expm1, log, exp).
DENSE_ULPS = 512
_KZ = float(np.float32(1e-35))  # LightGBM's kZeroThreshold: a float literal widened to double
_MASK = np.int64(0x7FFFFFFFFFFFFFFF)
_NAN_MAKERS = ("log1p", "log", "sqrt")
_FAITHFUL = ("log1p", "expm1", "log", "exp")
_UFUNC = {"log1p": np.log1p, "expm1": np.expm1, "log": np.log, "exp": np.exp, "sqrt": np.sqrt}


def _key(d) -> np.ndarray:
    """int64 keys ordered like the doubles (-0.0 just below +0.0)."""
    b = np.ascontiguousarray(d, dtype=np.float64).view(np.int64)
    return b ^ ((b >> 63) & _MASK)


def _dbl(k) -> np.ndarray:
    k = np.ascontiguousarray(k, dtype=np.int64)
    return (k ^ ((k >> 63) & _MASK)).view(np.float64)


def _step(d: float, n: int) -> float:
    """The double ``n`` steps above ``d`` in the total order."""
    return float(_dbl(np.array([int(_key(np.array([d]))[0]) + n]))[0])


KEY_NEG_INF = int(_key(np.array([-np.inf]))[0])
KEY_POS_INF = int(_key(np.array([np.inf]))[0])


# ------------------------------------------------------------------ the maps

def _op_ok(op: OpSpec) -> bool:
    n, a, b = op.name, op.a, op.b
    if n in ("add", "sub"):
        return bool(np.isfinite(a))
    if n in ("mul", "div"):
        return bool(np.isfinite(a)) and a != 0
    if n in _UFUNC:
        return True
    if n == "clip":
        return not (np.isnan(a) or np.isnan(b)) and a <= b
    if n == "searchsorted_right":
        t = np.asarray(op.table, dtype=np.float64)
        return not np.isnan(t).any() and bool(np.all(t[1:] >= t[:-1]))
    if n == "impute":
        return not np.isnan(a)
    return False


def split_chain(ops: list[OpSpec]) -> int:
    """Index where the foldable trailing chain of ``ops`` starts (``len(ops)``: none).

    An op that turns NaN into a number (impute, searchsorted) may not follow one that makes
    NaN (log1p, log, sqrt): the NaN half-line would then land in the middle of the order.
    An impute can only be the chain's first op (it is the identity on numbers).
    """
    k = len(ops)
    nan_to_number = False
    while k > 0:
        op = ops[k - 1]
        if not _op_ok(op) or (op.name in _NAN_MAKERS and nan_to_number):
            break
        k -= 1
        if op.name == "impute":
            break
        if op.name == "searchsorted_right":
            nan_to_number = True
    return k


_BIG = 1e300  # interval ends within +-_BIG stay finite through a faithfully rounded op


def drop_redundant_checks(ops: list[OpSpec]) -> list[OpSpec]:
    """``ops`` without the ``check_finite`` ops whose input can never be infinite.

    forgeline's own transformers re-check finiteness after each step (Winsorizer -> Log1p
    -> check_finite); after a clip to finite bounds above -1 that check can never fire, and
    keeping it would stop the fold. Bounds are propagated through the chain as an interval
    of the non-NaN values, widened to infinity whenever an op could overflow.
    """
    lo, hi = -np.inf, np.inf
    out = []
    with np.errstate(all="ignore"):
        for op in ops:
            n, a, b = op.name, op.a, op.b
            if n == "check_finite":
                if -_BIG < lo and hi < _BIG:
                    continue
                lo, hi = max(lo, -np.finfo(np.float64).max), min(hi, np.finfo(np.float64).max)
            elif n == "clip" and not (np.isnan(a) or np.isnan(b)):
                lo, hi = min(max(lo, a), b), min(max(hi, a), b)
            elif n in ("add", "sub", "mul", "div") and np.isfinite(a) and a != 0:
                ends = np.array([lo, hi])
                ends = {"add": ends + a, "sub": ends - a, "mul": ends * a, "div": ends / a}[n]
                lo, hi = float(np.nanmin(ends)), float(np.nanmax(ends))
            elif n == "log1p":
                lo = float(np.log1p(lo)) if lo > -1 else -np.inf
                hi = float(np.log1p(hi)) if hi > -1 else -np.inf
            elif n == "impute" and not np.isnan(a):
                lo, hi = min(lo, a), max(hi, a)
            elif n == "searchsorted_right" and op.table is not None:
                lo, hi = 0.0, float(len(op.table))
            elif n == "check_nan":
                pass
            else:
                lo, hi = -np.inf, np.inf
            if not (abs(lo) < _BIG):
                lo = -np.inf if lo < 0 or np.isnan(lo) else lo
            if not (abs(hi) < _BIG):
                hi = np.inf if hi > 0 or np.isnan(hi) else hi
            out.append(op)
    return out


def _direction(chain: list[OpSpec]) -> int:
    sign = 1
    for op in chain:
        if op.name in ("mul", "div") and op.a < 0:
            sign = -sign
    return sign


def apply_chain(chain: list[OpSpec], u: np.ndarray) -> np.ndarray:
    """``chain`` on float64 ``u`` exactly as scikit-learn / numpy compute it."""
    x = np.array(u, dtype=np.float64, copy=True)
    with np.errstate(all="ignore"):
        for op in chain:
            n = op.name
            if n == "impute":
                x = np.where(np.isnan(x), op.a, x)
            elif n == "add":
                x = x + op.a
            elif n == "sub":
                x = x - op.a
            elif n == "mul":
                x = x * op.a
            elif n == "div":
                x = x / op.a
            elif n == "clip":
                x = np.clip(x, op.a, op.b)
            elif n == "searchsorted_right":
                x = np.searchsorted(np.asarray(op.table, dtype=np.float64), x,
                                    side="right").astype(np.float64)
            else:
                x = _UFUNC[n](x)
    return x


# ------------------------------------------------------------------ split rules

def _source_left(x, thr_e, nan_left, mode: str) -> np.ndarray:
    """The source engine's decision for value ``x`` (after the maps) at nodes with effective
    threshold ``thr_e`` (``<=``; NaN: nothing goes left) and NaN direction ``nan_left``."""
    with np.errstate(all="ignore"):
        if mode == "float32":
            v = x.astype(np.float32).astype(np.float64)
        elif mode == "lightgbm":
            v = np.where(np.abs(x) <= _KZ, 0.0, x)
        else:
            v = x
        return np.where(np.isnan(v), nan_left, v <= thr_e)


def _target_left(w, thr, nan_left, mode: str) -> np.ndarray:
    with np.errstate(all="ignore"):
        v = np.where(np.abs(w) <= _KZ, 0.0, w) if mode == "lightgbm" else w
        return np.where(np.isnan(v), nan_left, v <= thr)


def _effective(thr: np.ndarray, xgb_less_than: bool) -> np.ndarray:
    """Thresholds as ``<=`` thresholds: XGBoost's float32 ``x < t`` is ``x <= prev_f32(t)``."""
    if not xgb_less_than:
        return thr.astype(np.float64)
    tf = thr.astype(np.float32)
    with np.errstate(all="ignore"):
        down = np.nextafter(tf, np.float32(-np.inf)).astype(np.float64)
    return np.where(np.isneginf(tf), np.nan, down)


def _last_true(pred, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Per element, the largest key in [lo, hi] where ``pred`` holds, given it holds at
    ``lo``, fails at ``hi`` and is a down-set in between."""
    lo, hi = lo.copy(), hi.copy()
    while True:
        gap = (hi >> 1) - (lo >> 1) + ((hi & 1) - (lo & 1)) // 2  # (hi - lo) // 2, overflow-free
        todo = gap > 0
        if not todo.any():
            return lo
        mid = lo + np.maximum(gap, 0)
        ok = pred(_dbl(mid))
        lo = np.where(todo & ok, mid, lo)
        hi = np.where(todo & ~ok, mid, hi)


# ------------------------------------------------------------------ one column

def fold_column(chain: list[OpSpec], thr_e: np.ndarray, nan_left: np.ndarray, source_mode: str,
                target_mode: str, prefix_can_nan: bool):
    """New (threshold, nan_left, swap) per node and the guard, or None when not provably exact.

    ``thr_e`` / ``nan_left``: the nodes' effective ``<=`` thresholds and NaN directions in
    the source engine, which reads ``apply_chain(chain, u)`` in ``source_mode``; the folded
    node reads ``u`` in ``target_mode``.
    """
    sign = _direction(chain)
    faithful = any(op.name in _FAITHFUL for op in chain)
    n = thr_e.size
    neg_inf = np.full(n, KEY_NEG_INF, dtype=np.int64)
    pos_inf = np.full(n, KEY_POS_INF, dtype=np.int64)

    def f(u):
        return apply_chain(chain, u)

    # The half-line of numbers f turns into NaN (R) and the domain D = [d_lo, d_hi].
    ends = np.isnan(f(np.array([-np.inf, np.inf])))
    d_lo, d_hi, side = -np.inf, np.inf, None
    if ends.all():
        return None
    if ends.any():
        side = "lower" if ends[0] else "upper"
        isnan_below = (lambda u: np.isnan(f(u))) if side == "lower" else (lambda u: ~np.isnan(f(u)))
        k = int(_last_true(isnan_below, neg_inf[:1], pos_inf[:1])[0])
        if side == "lower":
            d_lo = float(_dbl(np.array([k + 1]))[0])
        else:
            d_hi = float(_dbl(np.array([k]))[0])
        if not np.isfinite(d_lo if side == "lower" else d_hi):
            return None  # R is everything but an infinity: no finite guard boundary
    k_lo = np.full(n, int(_key(np.array([d_lo]))[0]), dtype=np.int64)
    k_hi = np.full(n, int(_key(np.array([d_hi]))[0]), dtype=np.int64)
    swap = np.full(n, sign < 0)

    def q(u, idx=slice(None)):
        """Source decision at raw u, as "goes to the new left child" (swap applied)."""
        u = np.asarray(u, dtype=np.float64)
        te, nl, sw = thr_e[idx], nan_left[idx], swap[idx]
        if u.ndim == 2:
            te, nl, sw = te[:, None], nl[:, None], sw[:, None]
        return _source_left(f(u), te, nl, source_mode) != sw

    at_lo, at_hi = q(_dbl(k_lo)), q(_dbl(k_hi))
    empty = ~at_lo
    swap = np.where(empty, ~swap, swap)
    at_hi = np.where(empty, ~at_hi, at_hi)
    key = k_hi.copy()
    mid = ~at_hi
    if mid.any():
        idx = np.flatnonzero(mid)
        key[idx] = _last_true(lambda u: q(u, idx), k_lo[idx], k_hi[idx])
    thr = _dbl(key)

    # Probes: around each threshold, the domain ends, the special values.
    span = DENSE_ULPS if faithful else 4
    steps = np.arange(-span, span + 1, dtype=np.int64)
    powers = 2 ** np.arange(4, 63, dtype=np.int64)
    far = np.concatenate([powers, -powers])  # geometric distances out to the whole range
    specials = np.array([-np.inf, np.inf, 0.0, -0.0, _KZ, -_KZ, 1.0, -1.0, np.nan])
    specials = np.concatenate([specials, np.nextafter(specials[:7], np.inf),
                               np.nextafter(specials[:7], -np.inf)])
    # a value of R next to the domain (R is one half-line, so one value speaks for all)
    r_probe = _step(d_lo, -1) if side == "lower" else _step(d_hi, 1) if side == "upper" else np.nan
    edge = [d_lo, d_hi, r_probe]
    off = np.concatenate([steps, far])[None, :]
    k2 = key[:, None]
    with np.errstate(over="ignore"):  # saturate at the infinities instead of wrapping
        near = np.where(off > 0, np.where(k2 > KEY_POS_INF - off, KEY_POS_INF, k2 + off),
                        np.where(k2 < KEY_NEG_INF - off, KEY_NEG_INF, k2 + off))
    probes = np.concatenate([_dbl(near), np.broadcast_to(np.concatenate([specials, edge]),
                                                         (n, specials.size + len(edge)))], axis=1)
    want = q(probes)
    in_r = ((probes < d_lo) | (probes > d_hi)) if side is not None else np.zeros(probes.shape, bool)
    for guard in (False, True):
        if guard:
            if side is None:
                return None
            nl_new = q(np.full(n, r_probe))
            if prefix_can_nan and not np.array_equal(nl_new, q(np.full(n, np.nan))):
                return None
            w = np.where(in_r, np.nan, probes)
        else:
            nl_new = q(np.full(n, np.nan))
            w = probes
        got = _target_left(w, thr[:, None], nl_new[:, None], target_mode)
        ok = (got == want) | (np.isnan(probes) & guard & ~prefix_can_nan)
        if ok.all():
            return thr, nl_new, swap, (("lower", d_lo) if side == "lower" else ("upper", d_hi)) \
                if guard else None
    return None


# ------------------------------------------------------------------ the ensemble

class FoldedTrees:
    """A tree ensemble whose thresholds read raw columns, and the shorter feature plan that
    feeds it. Scoring runs ``model`` on ``features`` (the Scorer's ``transform`` keeps the
    unfolded plan, which is what the source's preprocessing produces).

    Attributes
    ----------
    features : FeaturePlan
        The plan with the folded chains removed (same inputs and feature count).
    model : TreeEnsemble
        The ensemble with rewritten thresholds.
    folds : list of dict
        Per folded feature: ``feature``, ``column``, ``before``, ``after``, ``nodes``,
        ``swapped``, ``guard`` and ``kind`` (``"map"``: a monotone chain folded into
        thresholds; ``"onehot"``: a one-hot block read as one code by category splits).
        Explain and the manifest use them.
    """

    def __init__(self, features: FeaturePlan, model: TreeEnsemble, folds: list[dict],
                 converted: int = 0):
        self.features = features
        self.model = model
        self.folds = list(folds)
        self.converted = int(converted)

    @property
    def n_out(self) -> int:
        return self.model.n_outputs

    def describe(self) -> list[str]:
        lines = []
        for d in self.folds:
            if d.get("kind") == "onehot":
                lines.append(f"{d['column']}: {d['before']} -> category splits on the code "
                             f"({d['nodes']} nodes read {d['feature']})")
                continue
            extra = (", decreasing: children swapped" if d["swapped"] else "") + \
                (f", domain guard ({d['guard']})" if d["guard"] else "")
            lines.append(f"{d['feature']}: {d['before']} -> tree thresholds on "
                         f"{d['column']}: {d['after'] or 'raw'} ({d['nodes']} nodes{extra})")
        if self.converted:
            lines.append(f"float32 split rule re-expressed as float64 thresholds on "
                         f"{self.converted} nodes of unmapped features")
        return lines

    def to_parts(self) -> tuple[dict, dict[str, np.ndarray]]:
        fmeta, _ = self.features.to_parts()
        mmeta, marrays = self.model.to_parts()
        meta = {"kind": FOLD_KIND, "features": fmeta, "model": mmeta, "folds": self.folds,
                "converted": self.converted}
        return meta, {f"model.{k}": v for k, v in marrays.items()}

    @classmethod
    def from_parts(cls, meta: dict, arrays: dict, *, allow_code: bool = False) -> FoldedTrees:
        """Rebuild from :meth:`to_parts`, validating every field (bundles are untrusted)."""
        if not isinstance(meta, dict) or meta.get("kind") != FOLD_KIND:
            raise BundleError("folded tree plan: unknown kind")
        folds = meta.get("folds")
        if not isinstance(folds, list) or not all(isinstance(d, dict) for d in folds):
            raise BundleError("folded tree plan: folds must be a list of mappings")
        conv = meta.get("converted", 0)
        if isinstance(conv, bool) or not isinstance(conv, int) or conv < 0:
            raise BundleError("folded tree plan: converted must be a non-negative int")
        features = FeaturePlan.from_parts(meta.get("features"), {}, allow_code=allow_code)
        model = TreeEnsemble.from_parts(meta.get("model"), {
            k[len("model."):]: v for k, v in arrays.items() if k.startswith("model.")})
        if model.n_features != features.n_features:
            raise BundleError("folded tree plan: the model and its feature plan disagree")
        clean = []
        for d in folds:
            nodes, guard, kind = d.get("nodes"), d.get("guard"), d.get("kind", "map")
            texts = [d.get(k) for k in ("feature", "column", "before", "after")]
            if not all(isinstance(t, str) for t in texts) or isinstance(nodes, bool) or \
                    not isinstance(nodes, int) or nodes < 0 or \
                    not isinstance(d.get("swapped"), bool) or \
                    not (guard is None or isinstance(guard, str)) or kind not in ("map", "onehot"):
                raise BundleError("folded tree plan: malformed fold description")
            clean.append({"feature": texts[0], "column": texts[1], "before": texts[2],
                          "after": texts[3], "nodes": nodes, "swapped": d["swapped"],
                          "guard": guard, "kind": kind})
        return cls(features, model, clean, conv)


def foldable_model(model) -> bool:
    return isinstance(model, TreeEnsemble)


#: When one-hot blocks become category splits: "auto" (only when the SIMD kernel takes none
#: of the model's trees, see :func:`fold`), "always" or "never".
FOLD_ONEHOT = "auto"


def fold(features: FeaturePlan, model) -> FoldedTrees | None:
    """Fold the monotone chains in front of ``model`` (a tree ensemble) into its
    thresholds; None when no feature folds (or the model is not a tree ensemble)."""
    if not isinstance(model, TreeEnsemble) or model.n_features != features.n_features:
        return None
    a = model._arrays
    st = model.settings
    source_mode = st["input_mode"]
    convert = source_mode == "float32"
    target_mode = "float64" if convert else source_mode
    feat, flags = a["feature"], a["flags"]
    inner = feat >= 0
    if convert and np.any(inner & ((flags & CATEGORICAL) != 0)):
        return None  # float64 mode would read categorical codes unrounded
    thr_e = _effective(a["threshold"], bool(st["xgb_less_than"]))
    nan_left = (flags & NAN_LEFT) != 0
    groups = [g.clone() for g in features.groups]
    outputs = list(features.outputs)
    plans: dict[int, tuple] = {}  # model feature -> (chain start, its nodes, its group)
    for j, s in enumerate(features.outputs):
        g = features.groups[s.group]
        if g.emit != "scalar" or g.udf is not None or g.product or \
                dict(features.inputs).get(g.source) != "numeric":
            continue
        ops = drop_redundant_checks(g.ops)
        start = split_chain(ops)
        if not any(op.name != "impute" for op in ops[start:]):
            continue
        if len(ops) != len(g.ops):
            g = g.clone()
            g.ops = ops
        nodes = np.flatnonzero(inner & (feat == j))
        if nodes.size and np.any(flags[nodes] & (CATEGORICAL | ZERO_MISSING)):
            continue  # a categorical split or LightGBM's zero-as-missing on a mapped value
        plans[j] = (start, nodes, g)
    # Category splits keep a tree off the SIMD (QuickScorer) kernel, whose trees are about 4x
    # cheaper than walked ones; reading one-hot blocks as codes saves far less than that, so
    # it is done only when no tree of the model is on the kernel anyway.
    onehot_ok = FOLD_ONEHOT == "always" or (FOLD_ONEHOT == "auto" and _qs_trees(model) == 0)
    onehots = _plan_onehots(features, feat, flags) if onehot_ok else {}
    if not plans and not onehots:
        return None
    thr = a["threshold"].astype(np.float64).copy()
    new_flags = flags.copy()
    left, right = a["left"].copy(), a["right"].copy()
    folds, converted = [], 0
    # Node rewrite per model feature: mapped ones by their chain, the rest (float32 models
    # only) by the identity, so that the whole ensemble reads float64.
    todo = list(range(model.n_features)) if convert else sorted(plans)
    for j in todo:
        orig = g = features.groups[features.outputs[j].group]
        res = None
        if j in plans:
            start, nodes, g = plans[j]
            kept_impute = start > 0 and g.ops[start - 1].name == "impute"
            res = _fold_nodes(list(g.ops[start:]), thr_e[nodes], nan_left[nodes], source_mode,
                              target_mode, not kept_impute, g.ops[start].name == "impute")
        else:
            nodes = np.flatnonzero(inner & (feat == j))
        mapped = res is not None
        if not mapped:
            if not convert:
                continue  # this column keeps its ops and its nodes their thresholds
            # float32 -> float64 mode: the node reads the mapped value as before
            res = _fold_nodes([], thr_e[nodes], nan_left[nodes], source_mode, target_mode,
                              True, False)
            if res is None:
                return None
        t_new, nl_new, sw, guard, moved = res
        thr[nodes] = t_new
        new_flags[nodes] = np.where(nl_new, new_flags[nodes] | np.uint32(NAN_LEFT),
                                    new_flags[nodes] & ~np.uint32(NAN_LEFT))
        left[nodes], right[nodes] = (np.where(sw, right[nodes], left[nodes]),
                                     np.where(sw, left[nodes], right[nodes]))
        if not mapped:
            converted += int(nodes.size)
            continue
        keep = start + (1 if moved else 0)
        vg = g.clone()
        vg.ops = list(g.ops[:keep])
        vg.origin = f"{g.origin} (folded into trees)"
        groups.append(vg)
        out_group = len(groups) - 1
        if guard is not None:
            gg = g.clone()
            gg.ops = list(g.ops[:keep]) + _guard_ops(guard)
            gg.origin = f"{g.origin} (domain guard)"
            groups.append(gg)
            groups.append(Group(g.source, [], origin=f"{g.origin} (guarded)", product=True,
                                args=(out_group, len(groups) - 1)))
            out_group = len(groups) - 1
        outputs[j] = Sym(out_group, 0)
        folds.append({
            "feature": features.feature_names[j] if j < len(features.feature_names) else f"f{j}",
            "column": g.source,
            "before": " -> ".join(op.describe() for op in orig.ops) or "identity",
            "after": " -> ".join(op.describe() for op in vg.ops),
            "nodes": int(nodes.size), "swapped": bool(np.any(sw)),
            "guard": None if guard is None else f"{guard[0]} {guard[1]:.17g}", "kind": "map"})
    if not folds and not onehots:
        return None
    arrays = {k: v.copy() for k, v in a.items()}
    arrays.update(threshold=thr, flags=new_flags, left=left, right=right)
    names, plan_names = list(model.feature_names), list(features.feature_names)
    if onehots:
        outputs, names, plan_names = _onehots_to_codes(onehots, groups, outputs, arrays, a, thr_e,
                                                       source_mode, names, plan_names, folds)
    settings = dict(st)
    if convert:
        settings.update(input_mode="float64", xgb_less_than=False)
    new_model = TreeEnsemble(feature_names=names, task=model.task,
                             settings=settings, arrays=arrays, classes=model.classes_,
                             source=model.source, extra=model.extra)
    plan = FeaturePlan(features.inputs, groups, outputs, plan_names, features.udfs).pruned()
    plan.inputs = list(features.inputs)  # same input list as the unfolded plan
    return FoldedTrees(plan, new_model, folds, converted)


def _qs_trees(model) -> int:
    """How many of ``model``'s trees the SIMD kernel takes (0 where it is unavailable)."""
    core_ = getattr(model, "_core", None)
    return int(core_.n_qs_trees) if core_ is not None and core_.simd else 0


def _fold_nodes(chain, thr_e, nan_left, source_mode, target_mode, prefix_can_nan, starts_impute):
    """fold_column over the distinct (threshold, NaN direction) pairs of some nodes, mapped
    back to the nodes: (thr, nan_left, swap, guard, impute moved to the kept ops) or None."""
    if thr_e.size == 0:
        return np.zeros(0), np.zeros(0, bool), np.zeros(0, bool), None, False
    pairs = np.stack([_key(np.nan_to_num(thr_e, nan=np.inf)), np.isnan(thr_e).astype(np.int64),
                      nan_left.astype(np.int64)], axis=1)
    uniq, inv = np.unique(pairs, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    first = np.zeros(len(uniq), dtype=np.int64)
    first[inv[::-1]] = np.arange(thr_e.size)[::-1]
    ut, un = thr_e[first], nan_left[first]
    res = fold_column(chain, ut, un, source_mode, target_mode, prefix_can_nan)
    moved = False
    if res is None and starts_impute:
        # with the impute kept in the plan the folded column is never NaN from a missing
        # input, so the domain guard's NaN need not agree with the missing direction
        res = fold_column(chain[1:], ut, un, source_mode, target_mode, False)
        moved = res is not None
    if res is None:
        return None
    t, nl, sw, guard = res
    return t[inv], nl[inv], sw[inv], guard, moved


def _guard_ops(guard) -> list[OpSpec]:
    """Ops mapping the domain to exactly 1.0 and the NaN half-line to NaN: the sign of
    ``u - d`` is exact (a non-zero difference of doubles never rounds to zero), sqrt makes
    negatives NaN, clip(0, 0) sends every other value (inf included) to 0."""
    side, d = guard
    head = [OpSpec("sub", float(d))] + ([OpSpec("mul", -1.0)] if side == "upper" else [])
    return head + [OpSpec("sqrt"), OpSpec("clip", 0.0, 0.0), OpSpec("add", 1.0)]


# ------------------------------------------------------------------ one-hot -> category splits
#
# A node on a one-hot column asks "is this row's code one of the slot's codes": exactly a
# categorical split on the code. The plan then emits one code per categorical column instead
# of its whole block of mostly-zero one-hot columns (T2: 300 columns become 10).

_CODE_OPS = ("impute", "code_of", "searchsorted_right", "check_nan", "check_finite")


def _plan_onehots(features: FeaturePlan, feat, flags) -> dict[int, list[tuple[int, int]]]:
    """{one-hot group: [(model feature, slot)]} for the groups whose every node can become a
    categorical split: unseen codes emit zeros (never raise), missing is told apart from
    unseen in the register (NaN; ``code_of`` writes -1, which the engine reads as invalid,
    so there missing must emit zeros too), and no node is already special."""
    by_group: dict[int, list[tuple[int, int]]] = {}
    for j, s in enumerate(features.outputs):
        if features.groups[s.group].emit == "onehot":
            by_group.setdefault(s.group, []).append((j, s.slot))
    inner = feat >= 0
    out = {}
    for gi, slots in by_group.items():
        g = features.groups[gi]
        m = g.onehot_map
        if g.udf is not None or g.product or m is None or len(m) < 2 or m[0] != ONEHOT_ZEROS \
                or ONEHOT_RAISE in m or any(op.name not in _CODE_OPS for op in g.ops):
            continue
        if any(op.name == "code_of" for op in g.ops) and m[1] != ONEHOT_ZEROS:
            continue
        nodes = inner & np.isin(feat, [j for j, _ in slots])
        if np.any(flags[nodes] & (CATEGORICAL | ZERO_MISSING)):
            continue
        out[gi] = slots
    return out


def _onehots_to_codes(onehots, groups, outputs, arrays, orig, thr_e, source_mode, names,
                      plan_names, folds):
    """Rewrite the nodes on the planned one-hot columns into categorical splits on one code
    feature per group; returns the new outputs and feature names (arrays are updated)."""
    feat = orig["feature"]
    slot_of = {j: (gi, k) for gi, slots in onehots.items() for j, k in slots}
    new_outputs, new_names, new_plan_names, pos, code_pos = [], [], [], {}, {}
    for j, s in enumerate(outputs):
        if j not in slot_of:
            pos[j] = len(new_outputs)
            new_outputs.append(s)
            new_names.append(names[j])
            new_plan_names.append(plan_names[j])
            continue
        gi = slot_of[j][0]
        if gi not in code_pos:
            g = groups[gi].clone()
            g.emit, g.width, g.onehot_map = "scalar", 1, None
            g.origin = f"{g.origin} (codes for category splits)"
            groups.append(g)
            code_pos[gi] = len(new_outputs)
            new_outputs.append(Sym(len(groups) - 1, 0))
            new_names.append(f"{g.source} (code)")
            new_plan_names.append(f"{g.source} (code)")
        pos[j] = code_pos[gi]
    bits = [arrays["cat_bits"]]
    n_words = arrays["cat_bits"].size
    thr, fl, cat_off, cat_nw = (arrays[k] for k in ("threshold", "flags", "cat_offset", "cat_nwords"))
    left, right = arrays["left"], arrays["right"]
    for gi, slots in onehots.items():
        m = groups[gi].onehot_map
        n_nodes = 0
        for j, k in slots:
            nodes = np.flatnonzero(feat == j)
            if not nodes.size:
                continue
            n_nodes += nodes.size
            members = [c for c in range(len(m) - 2) if m[2 + c] == k]
            words = bits_from_ints(members, max(members) // 32 + 1 if members else 0)
            nan_left = (orig["flags"][nodes] & NAN_LEFT) != 0
            l0 = _source_left(np.zeros(nodes.size), thr_e[nodes], nan_left, source_mode)
            l1 = _source_left(np.ones(nodes.size), thr_e[nodes], nan_left, source_mode)
            lmiss = l1 if m[1] == k else l0
            const = l0 == l1
            # A member goes left iff MEMBER_LEFT; a non-member, an unseen (negative) or a code
            # past the bitset goes the other way / the INVALID_LEFT way: both must be l0.
            # A constant node gets an empty bitset (every code is then "past" it).
            off = np.where(const, 0, n_words)
            nw = np.where(const, 0, words.size)
            new = np.uint32(CATEGORICAL) | np.where(l1 & ~const, MEMBER_LEFT, 0).astype(np.uint32) \
                | np.where(l0, INVALID_LEFT, 0).astype(np.uint32) \
                | np.where(lmiss, NAN_LEFT, 0).astype(np.uint32)
            if not const.all():
                bits.append(words)
                n_words += words.size
            fl[nodes] = new
            thr[nodes] = 0.0
            cat_off[nodes], cat_nw[nodes] = off, nw
            left[nodes], right[nodes] = orig["left"][nodes], orig["right"][nodes]
        g = groups[gi]
        folds.append({"feature": f"{len(slots)} one-hot columns", "column": g.source,
                      "before": (" -> ".join(op.describe() for op in g.ops) or "code")
                      + f" -> onehot[{g.width}]",
                      "after": "code", "nodes": int(n_nodes), "swapped": False,
                      "guard": None, "kind": "onehot"})
    arrays["cat_bits"] = np.concatenate(bits).astype(np.uint32)
    mapping = np.array([pos[j] for j in range(len(outputs))], dtype=np.int32)
    arrays["feature"] = np.where(feat >= 0, mapping[np.maximum(feat, 0)], feat).astype(np.int32)
    return new_outputs, new_names, new_plan_names
