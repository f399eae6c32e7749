"""Folding a linear model into its feature plan: one fused native pass from input columns to
margins, with no feature matrix in between.

The folded plan has one output per group. Each group adds its contribution to the margins
of its rows (``cpp/src/plan_fused.cpp``):

* a scalar group (a numeric column's op chain) adds ``w' * u``. The trailing affine ops of its
  chain (the scalers' ``sub``/``div``/``mul``/``add``) are removed: ``w * (alpha * u + beta)``
  becomes ``(w * alpha) * u`` plus ``w * beta`` folded into the intercept;
* a one-hot group (OneHotEncoder, one-hot KBinsDiscretizer) adds one row of a table indexed
  by the category code: the weights of its one-hot columns, so the hundreds of mostly-zero
  columns are never materialised;
* a look-up group (OrdinalEncoder, TargetEncoder, count encoders) adds one row of its table
  multiplied by the weights.

Exactness. The folded sum adds the same terms in another order and rounds the scalers'
affine maps differently, so it agrees with the source to within a few ulps of the sum of the
magnitudes of the terms, counting a scaler's shift as a term of its own: exactly the yardstick
:meth:`forgeline.models.linear.DenseModel.error_scale` uses for an affine op in a network
(``m -> m * |scale| + |shift|``). :attr:`FoldedLinear.shift_magnitude` is that extra term,
and compile's self-verification adds it to the error scale while it scores the sample through
this folded path.
"""

from __future__ import annotations

import numpy as np

from . import _frame
from ._native import core, resolve_threads
from .errors import BundleError
from .plan import FeaturePlan, Sym

_AFFINE = ("sub", "add", "mul", "div")
FOLD_KIND = "linear"


class FoldedLinear:
    """A linear model folded into a :class:`~forgeline.plan.FeaturePlan` (see module doc).

    Attributes
    ----------
    features : FeaturePlan
        One output per group; scalar groups have their trailing affine ops removed.
    weights : list of ndarray
        Per group, shape (1, n_out) for scalar groups and (table length, n_out) for one-hot
        and look-up groups (rows indexed 0 unseen, 1 missing, 2 + code).
    bias : ndarray (n_out,)
        The model's intercepts plus every folded shift.
    shift_magnitude : ndarray (n_out,)
        Sum of the folded shifts' magnitudes (the extra terms of the exactness yardstick).
    finite_only : bool
        A non-finite feature makes the row fall back to the model's own error.
    """

    def __init__(self, features: FeaturePlan, weights: list[np.ndarray], bias, shift_magnitude,
                 finite_only: bool, folded_ops: int = 0):
        self.features = features
        self.weights = [np.ascontiguousarray(w, dtype=np.float64) for w in weights]
        self.bias = np.ascontiguousarray(bias, dtype=np.float64).reshape(-1)
        self.shift_magnitude = np.ascontiguousarray(shift_magnitude, dtype=np.float64).reshape(-1)
        self.finite_only = bool(finite_only)
        self.folded_ops = int(folded_ops)
        self._native = None

    @property
    def n_out(self) -> int:
        return self.bias.size

    def native(self):
        if self._native is None:
            prog = self.features.program().native
            offs = np.zeros(len(self.weights), dtype=np.int64)
            if self.weights:
                offs[1:] = np.cumsum([w.size for w in self.weights])[:-1]
            flat = np.concatenate([w.reshape(-1) for w in self.weights]) if self.weights \
                else np.zeros(0)
            self._native = core.FusedLinear(prog, self.n_out, offs, flat, self.bias,
                                            self.finite_only)
        return self._native

    def margins(self, frame: _frame.Frame, n_threads: int | None = None) -> np.ndarray | None:
        """Raw outputs (n_rows, n_out) of a validated frame, or None when some row has a
        non-finite feature (the caller then takes the model's path, which names it)."""
        cols, kinds = self.features.columns_of(frame)
        return self.margins_columns(cols, kinds, frame.n_rows, n_threads)

    def margins_columns(self, cols, kinds, n_rows: int, n_threads: int | None = None,
                        logistic: bool = False):
        """The same from the program's input columns (see :func:`forgeline._fastinput`).
        ``logistic`` (one output only): binary class probabilities ``[1 - p, p]`` instead,
        ``p = 1 / (1 + exp(-z))`` computed natively with numpy's exp loop."""
        try:
            out, bad = self.native().run(cols, kinds, n_rows, resolve_threads(n_threads),
                                         logistic)
        except ValueError as exc:
            if "in plan group " not in str(exc):
                raise
            raise self.features._group_error(str(exc)) from None
        return None if bad >= 0 else out

    def margins_rows(self, X: np.ndarray) -> np.ndarray | None:
        """The same for a row-major (n, n_inputs) float64 array (the single-row path)."""
        try:
            out, bad = self.native().run_rows(X)
        except ValueError as exc:
            if "in plan group " not in str(exc):
                raise
            raise self.features._group_error(str(exc)) from None
        return None if bad >= 0 else out

    def describe(self) -> list[str]:
        lines = []
        for g, w in zip(self.features.groups, self.weights):
            chain = " -> ".join(op.describe() for op in g.ops) or "identity"
            if g.emit == "scalar":
                tail = f" * w{_fmt_vec(w[0])}"
            else:
                tail = f" -> {g.emit} table[{w.shape[0]}x{w.shape[1]}] of weights"
            lines.append(f"{g.source}: {chain}{tail}    ({g.origin})")
        lines.append(f"intercept{_fmt_vec(self.bias)} (folded shifts' magnitude "
                     f"{_fmt_vec(self.shift_magnitude)})")
        return lines

    # ------------------------------------------------------------------ persistence
    def to_parts(self) -> tuple[dict, dict[str, np.ndarray]]:
        fmeta, _ = self.features.to_parts()
        meta = {"kind": FOLD_KIND, "features": fmeta, "n_out": self.n_out,
                "finite_only": self.finite_only, "folded_ops": self.folded_ops}
        arrays = {"weights": np.concatenate([w.reshape(-1) for w in self.weights])
                  if self.weights else np.zeros(0), "bias": self.bias,
                  "shift_magnitude": self.shift_magnitude}
        return meta, arrays

    @classmethod
    def from_parts(cls, meta: dict, arrays: dict) -> FoldedLinear:
        """Rebuild from :meth:`to_parts`, validating every field and shape (untrusted)."""
        if not isinstance(meta, dict) or meta.get("kind") != FOLD_KIND:
            raise BundleError("folded plan: unknown kind")
        n_out = meta.get("n_out")
        if isinstance(n_out, bool) or not isinstance(n_out, int) or not 1 <= n_out <= 1 << 16:
            raise BundleError("folded plan: n_out must be an int in [1, 65536]")
        if not isinstance(meta.get("finite_only"), bool):
            raise BundleError("folded plan: finite_only must be a bool")
        ops = meta.get("folded_ops", 0)
        if isinstance(ops, bool) or not isinstance(ops, int) or ops < 0:
            raise BundleError("folded plan: folded_ops must be a non-negative int")
        features = FeaturePlan.from_parts(meta.get("features"), {})
        if [(s.group, s.slot) for s in features.outputs] != [(i, 0) for i in range(len(features.groups))]:
            raise BundleError("folded plan: every group must have exactly one output")
        got = {}
        for name in ("weights", "bias", "shift_magnitude"):
            a = arrays.get(name)
            if not isinstance(a, np.ndarray) or a.dtype != np.float64 or a.ndim != 1:
                raise BundleError(f"folded plan: array {name!r} must be 1-D float64")
            got[name] = a
        if got["bias"].size != n_out or got["shift_magnitude"].size != n_out:
            raise BundleError("folded plan: bias / shift_magnitude size differs from n_out")
        weights, pos = [], 0
        for g in features.groups:
            rows = 1 if g.emit == "scalar" else (len(g.onehot_map) if g.emit == "onehot"
                                                 else len(g.lookup) // g.width)
            size = rows * n_out
            if pos + size > got["weights"].size:
                raise BundleError("folded plan: weight array is too short")
            weights.append(got["weights"][pos:pos + size].reshape(rows, n_out))
            pos += size
        if pos != got["weights"].size:
            raise BundleError("folded plan: weight array is too long")
        out = cls(features, weights, got["bias"], got["shift_magnitude"], meta["finite_only"], ops)
        try:
            out.native()  # the native side re-checks every offset
        except ValueError as exc:
            raise BundleError(f"invalid folded plan: {exc}") from exc
        return out


def native_logistic(model, folded, method: str) -> bool:
    """Whether the fused pass can apply ``model``'s link itself: binary logistic
    ``predict_proba``, with numpy's exp loop registered (so the bits are the Python link's)."""
    from .plan import exp_loop_ok
    return (method == "predict_proba" and getattr(model, "proba", None) == "logistic"
            and folded.n_out == 1 and exp_loop_ok())


def finish_row(model, z: np.ndarray, method: str) -> np.ndarray:
    """``model.finish(z, method)`` for one row of a binary logistic model, without the array
    machinery: the same IEEE operations on scalars (numpy's own ``exp``), so the same bits,
    in a fraction of the time. Other cases go to ``model.finish``."""
    if z.shape != (1, 1) or model.proba != "logistic" or method != "predict_proba":
        return model.finish(z, method)
    v = z[0, 0]
    if not -v < 700.0:  # exp(-v) may overflow (or v is NaN): numpy's path and warnings
        return model.finish(z, method)
    p = 1.0 / (1.0 + float(np.exp(-v)))
    return np.array([[1.0 - p, p]])


def _fmt_vec(v) -> str:
    v = np.asarray(v).reshape(-1)
    if v.size == 1:
        return f"={v[0]:.6g}"
    return "=[" + ", ".join(f"{x:.4g}" for x in v[:4]) + (", ...]" if v.size > 4 else "]")


def foldable(model) -> bool:
    """Whether ``model`` is a plain linear model the fused head can run: one dense layer,
    identity activation, float64 parameters (scikit-learn's linear estimators)."""
    layers = getattr(model, "layers", None)
    return (getattr(model, "kind", None) == "linear" and isinstance(layers, list)
            and len(layers) == 1 and layers[0].get("op") == "dense"
            and layers[0].get("act", "identity") == "identity" and not layers[0].get("affine")
            and np.dtype(model.dtype) == np.float64)


def _strip_affine(ops) -> tuple[list, float, float, int]:
    """(remaining ops, alpha, beta, n stripped): the trailing affine ops as alpha * u + beta."""
    k = len(ops)
    while k > 0 and ops[k - 1].name in _AFFINE and np.isfinite(ops[k - 1].a) and \
            not (ops[k - 1].name == "div" and ops[k - 1].a == 0):
        k -= 1
    alpha, beta = 1.0, 0.0
    for op in ops[k:]:
        if op.name == "sub":
            beta -= op.a
        elif op.name == "add":
            beta += op.a
        elif op.name == "mul":
            alpha, beta = alpha * op.a, beta * op.a
        else:
            alpha, beta = alpha / op.a, beta / op.a
    return list(ops[:k]), alpha, beta, len(ops) - k


def fold(features: FeaturePlan, model) -> FoldedLinear | None:
    """Fold ``model`` (a plain linear model, see :func:`foldable`) into ``features``; None
    when the model is not foldable."""
    if model is None or not foldable(model) or model.n_features != features.n_features:
        return None
    if features.udfs or any(g.udf is not None or g.product for g in features.groups):
        # A udf or product group reads registers of other groups by index; the fused head
        # re-indexes groups and has no register read path, so such plans run unfolded.
        return None
    W = np.asarray(model.arrays["l0.weight"], dtype=np.float64)  # (n_features, K)
    K = W.shape[1]
    bias = np.array(model.arrays["l0.bias"], dtype=np.float64)
    shift_mag = np.zeros(K)
    where: dict[tuple[int, int], list[int]] = {}
    for pos, s in enumerate(features.outputs):
        where.setdefault((s.group, s.slot), []).append(pos)
    groups, weights, folded_ops = [], [], 0
    for gi in sorted({s.group for s in features.outputs}):
        g = features.groups[gi].clone()

        def wsum(local: int) -> np.ndarray:
            ps = where.get((gi, local), [])
            return W[ps].sum(axis=0) if ps else np.zeros(K)
        if g.emit == "scalar":
            w = wsum(0)
            g.ops, alpha, beta, n = _strip_affine(g.ops)
            folded_ops += n
            bias += w * beta
            shift_mag += np.abs(w * beta)
            weights.append((w * alpha).reshape(1, K))
        elif g.emit == "onehot":
            tab = np.zeros((len(g.onehot_map), K))
            for idx, local in enumerate(g.onehot_map):
                if local >= 0:
                    tab[idx] = wsum(local)
            weights.append(tab)
        else:
            vals = np.asarray(g.lookup, dtype=np.float64).reshape(-1, g.width)
            tab = np.zeros((vals.shape[0], K))
            with np.errstate(invalid="ignore", over="ignore"):
                for t in range(g.width):
                    for p in where.get((gi, t), []):
                        tab += vals[:, t:t + 1] * W[p]
            weights.append(tab)
        groups.append(g)
    plan = FeaturePlan(features.inputs, groups, [Sym(i, 0) for i in range(len(groups))],
                       [f"group{i}" for i in range(len(groups))])
    return FoldedLinear(plan, weights, bias, shift_mag, model.finite_only, folded_ops)
