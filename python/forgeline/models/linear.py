"""Native linear models, and the dense-network machinery they share with MLPs.

A linear model is a one-layer network: ``raw = X @ W + b`` followed by the source library's
link (identity, exp, logistic, softmax, one-vs-rest normalisation, modified Huber). Both
:class:`LinearModel` and :class:`~forgeline.models.mlp.MLPModel` store their layers as plain
data (a list of op dicts plus named arrays) and run them with the native blocked kernels
(``forgeline._core._Network32/_Network64``).

Compute precision follows the source framework:

* ``input_cast="promote"`` (scikit-learn): numpy promotion of input and weights, so a
  float32 input with float64 weights computes in float64, and float32 with float32 in
  float32;
* ``input_cast="cast"`` (torch, Keras): the input is cast to the parameter dtype.

Kernels. Each dense layer runs forgeline's own blocked kernel (packed weight panels, a
6-row register tile with FMA, bias / BatchNorm affine / ReLU fused into the store, row blocks
on all threads), never numpy's BLAS. Rule, from measuring both per layer shape and dtype
(bench/peers_linear.py "dense layer" rows; cpp/include/forgeline/linear.hpp has the numbers):
the own kernel is faster at every shape measured, batch 64 to 100k, float32 and float64,
and it keeps the bits independent of thread count and batch size, which BLAS does not.

Latency. A one-row float32/float64 ndarray skips the frame conversion and the thread pool:
:meth:`DenseModel.predict_raw` goes straight to the native one-row call, which checks the
width and (for sources that reject them) NaN/inf itself; any problem falls back to the
general path, so errors are the same typed errors.

Exactness: raw outputs agree with the source to within 1e-12 (float64) / 1e-6 (float32)
relative to the magnitude of the summed terms; neither side is correctly rounded, so that
is the only meaningful yardstick for a dot product that cancels.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from .._native import core, resolve_threads
from ..errors import BundleError, DataError, SchemaError
from .base import TASKS, NativeModel

#: Activation names and the native codes (cpp/include/forgeline/linear.hpp, ``Act``).
ACTIVATIONS = {
    "identity": 0, "relu": 1, "leaky_relu": 2, "tanh": 3, "sigmoid": 4, "silu": 5,
    "gelu": 6, "gelu_tanh": 7,
}
OPS = ("dense", "activation", "affine", "layernorm", "softmax")
LINKS = ("identity", "exp")
PROBAS = ("none", "logistic", "softmax", "modified_huber")

# Safety limits for bundles (untrusted input): generous for any real dense model.
MAX_LAYERS = 1000
MAX_WIDTH = 1 << 20
MAX_PARAMS = 1 << 28


# ---- links, as the sources compute them -------------------------------------------------

def expit(z: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-z))`` in z's dtype, as scipy.special.expit computes it."""
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-z))


def softmax_rows(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax with the row max subtracted first (sklearn.utils.extmath.softmax)."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    e /= e.sum(axis=1, keepdims=True)
    return e


def _normalise_rows(p: np.ndarray) -> np.ndarray:
    # One-vs-rest normalisation; rows summing to 0 become uniform, as in sklearn/liblinear.
    s = p.sum(axis=1)
    zero = s == 0
    if zero.any():
        p[zero, :] = 1
        s[zero] = p.shape[1]
    p /= s.reshape(-1, 1)
    return p


def _np_activation(act: str, h: np.ndarray, alpha: float = 0.0) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        if act == "relu":
            return np.where(h < 0, 0.0, h)
        if act == "leaky_relu":
            return np.where(h < 0, h * alpha, h)
        if act == "tanh":
            return np.tanh(h)
        if act == "sigmoid":
            return 1 / (1 + np.exp(-h))
        if act == "silu":
            return h / (1 + np.exp(-h))
        if act in ("gelu", "gelu_tanh"):
            if act == "gelu":
                erf = np.vectorize(math.erf, otypes=[np.float64])
                return h * 0.5 * (1 + erf(h / math.sqrt(2)))
            return 0.5 * h * (1 + np.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h ** 3)))
    return h


def _check_arrays(meta_layers, arrays, dtype, n_in):
    """Validate a layer list against its arrays; returns the output width."""
    if not isinstance(meta_layers, list) or not meta_layers or len(meta_layers) > MAX_LAYERS:
        raise BundleError("model layers must be a non-empty list of at most "
                          f"{MAX_LAYERS} ops")
    width = n_in
    params = 0

    def arr(name, shape):
        a = arrays.get(name)
        if not isinstance(a, np.ndarray) or a.dtype != dtype or a.shape != shape:
            got = None if not isinstance(a, np.ndarray) else f"{a.dtype}{a.shape}"
            raise BundleError(f"array {name!r} must be {np.dtype(dtype).name}{shape}, got {got}")
        return a

    for i, L in enumerate(meta_layers):
        if not isinstance(L, dict) or L.get("op") not in OPS:
            raise BundleError(f"layer {i}: unknown op {L.get('op') if isinstance(L, dict) else L!r}")
        op = L["op"]
        if op in ("dense", "activation"):
            act = L.get("act", "identity")
            if act not in ACTIVATIONS:
                raise BundleError(f"layer {i}: unknown activation {act!r}")
            alpha = L.get("alpha", 0.0)
            if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not math.isfinite(alpha):
                raise BundleError(f"layer {i}: alpha must be a finite number")
        if op == "dense":
            out = L.get("out")
            if not isinstance(out, int) or isinstance(out, bool) or not 0 < out <= MAX_WIDTH:
                raise BundleError(f"layer {i}: dense 'out' must be an int in [1, {MAX_WIDTH}]")
            params += width * out
            if params > MAX_PARAMS:
                raise BundleError(f"model exceeds {MAX_PARAMS} parameters")
            arr(f"l{i}.weight", (width, out))
            arr(f"l{i}.bias", (out,))
            if L.get("affine", False) is not False:
                if L["affine"] is not True:
                    raise BundleError(f"layer {i}: 'affine' must be a bool")
                arr(f"l{i}.scale", (out,))
                arr(f"l{i}.shift", (out,))
            width = out
        elif op == "affine":
            arr(f"l{i}.scale", (width,))
            arr(f"l{i}.shift", (width,))
        elif op == "layernorm":
            eps = L.get("eps")
            if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not (math.isfinite(eps) and eps >= 0):
                raise BundleError(f"layer {i}: layernorm eps must be a finite number >= 0")
            for flag, name in (("has_weight", "weight"), ("has_bias", "bias")):
                if L.get(flag) not in (True, False):
                    raise BundleError(f"layer {i}: {flag!r} must be a bool")
                if L[flag]:
                    arr(f"l{i}.{name}", (width,))
    return width


def build_network(layers, arrays, dtype, n_in):
    """Construct the native network for ``layers`` in ``dtype`` (float32/float64)."""
    dtype = np.dtype(dtype)
    net = (core._Network32 if dtype == np.float32 else core._Network64)(n_in)
    for i, L in enumerate(layers):
        op = L["op"]
        get = lambda name: np.ascontiguousarray(arrays[f"l{i}.{name}"], dtype=dtype)  # noqa: E731
        if op == "dense":
            aff = L.get("affine", False)
            net.add_dense(get("weight"), get("bias"), ACTIVATIONS[L.get("act", "identity")],
                          float(L.get("alpha", 0.0)), get("scale") if aff else None,
                          get("shift") if aff else None)
        elif op == "activation":
            net.add_activation(ACTIVATIONS[L["act"]], float(L.get("alpha", 0.0)))
        elif op == "affine":
            net.add_affine(get("scale"), get("shift"))
        elif op == "layernorm":
            net.add_layernorm(get("weight") if L["has_weight"] else None,
                              get("bias") if L["has_bias"] else None, float(L["eps"]))
        else:
            net.add_softmax()
    return net


def fuse_layers(layers: list[dict], arrays: dict) -> tuple[list[dict], dict]:
    """Fold an affine op and then an activation into the dense op before them.

    The dense kernel computes ``act((x @ W + b) * scale + shift)`` in its epilogue with the
    same operations, in the same order, as the unfused ops, so fusing changes no bits.
    """
    out_layers: list[dict] = []
    out_arrays: dict = {}
    for i, L in enumerate(layers):
        prev = out_layers[-1] if out_layers else None
        j = len(out_layers) - 1
        if (prev is not None and prev["op"] == "dense" and L["op"] == "affine"
                and not prev.get("affine") and prev.get("act", "identity") == "identity"):
            prev["affine"] = True
            out_arrays[f"l{j}.scale"] = arrays[f"l{i}.scale"]
            out_arrays[f"l{j}.shift"] = arrays[f"l{i}.shift"]
            continue
        if (prev is not None and prev["op"] == "dense" and L["op"] == "activation"
                and prev.get("act", "identity") == "identity"):
            prev["act"] = L["act"]
            prev["alpha"] = float(L.get("alpha", 0.0))
            continue
        k = len(out_layers)
        out_layers.append(dict(L))
        for key, val in arrays.items():
            if key.startswith(f"l{i}."):
                out_arrays[f"l{k}." + key.split(".", 1)[1]] = val
    return out_layers, out_arrays


def _json_scalar(v):
    v = v.item() if isinstance(v, np.generic) else v
    if not isinstance(v, (str, int, float, bool)):
        raise BundleError(f"class label {v!r} is not a string or number")
    return v


class DenseModel(NativeModel):
    """Shared implementation of linear models and MLPs (see the module docstring).

    Attributes beyond :class:`~forgeline.models.base.NativeModel`: ``layers`` (list of op
    dicts), ``arrays`` (their parameters), ``dtype`` (parameter dtype), ``input_cast``,
    ``finite_only`` (reject NaN/inf inputs as scikit-learn does), ``link``, ``proba``,
    ``predict_from`` ("raw" or "proba") and ``output_2d`` (raw output keeps a 2-D shape).
    """

    kind: ClassVar[str] = ""

    def __init__(self, *, layers, arrays, feature_names, task, dtype="float64",
                 input_cast="promote", finite_only=True, classes=None, link="identity",
                 proba="none", predict_from="raw", output_2d=False, source=None):
        self.layers = layers
        self.arrays = arrays
        self.feature_names = list(feature_names)
        self.task = task
        self.dtype = np.dtype(dtype)
        self.input_cast = input_cast
        self.finite_only = bool(finite_only)
        self.classes_ = None if classes is None else np.asarray(classes)
        self.link = link
        self.proba = proba
        self.predict_from = predict_from
        self.output_2d = bool(output_2d)
        self.source = dict(source or {})
        self.n_outputs = _check_arrays(layers, arrays, self.dtype, len(self.feature_names))
        self._nets: dict = {}
        self._one_nets: dict = {}

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_nets"] = {}
        state["_one_nets"] = {}
        return state

    def __setstate__(self, state):
        state.setdefault("_one_nets", {})
        self.__dict__.update(state)

    # -- execution ---------------------------------------------------------------------
    def _net(self, dtype):
        net = self._nets.get(dtype)
        if net is None:
            net = self._nets[dtype] = build_network(self.layers, self.arrays, dtype, self.n_features)
        return net

    def _matrix(self, X):
        if isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype in (np.float32, np.float64):
            if X.shape[1] != self.n_features:
                raise SchemaError(f"expected {self.n_features} feature columns, got {X.shape[1]}",
                                  problems={"<shape>": f"{X.shape[1]} != {self.n_features}"})
            return X
        want = self.dtype if self.input_cast == "cast" else np.float64
        return self.as_matrix(X, dtype=want)

    def _compute_dtype(self, X):
        if self.input_cast == "cast" or X.dtype == self.dtype:
            return self.dtype
        return np.dtype(np.float64)

    def _raise_nonfinite(self, X, row):
        vals = np.asarray(X[row])
        bad = np.flatnonzero(~np.isfinite(vals))
        col = self.feature_names[bad[0]] if bad.size else None
        what = "NaN" if bad.size and np.isnan(vals[bad[0]]) else "infinity"
        raise DataError(f"Input X contains {what} (row {row}, column {col!r}); "
                        f"{self.source.get('estimator', 'the source model')} rejects non-finite "
                        "inputs, so forgeline does too", column=col)

    def _one_row(self, X, squeeze):
        """The latency path for one row in a float32/float64 ndarray, or None.

        No frame, no validation pass, no thread pool: the native call checks the width and
        (for sources that reject them) non-finite values, and on any problem this returns
        None so that the general path raises the typed error.
        """
        net = self._one_nets.get(X.dtype)
        if net is None:
            if X.dtype != np.float32 and X.dtype != np.float64:
                return None
            net = self._one_nets[X.dtype] = self._net(self._compute_dtype(X))
        try:
            return net.predict_one(X, self.finite_only, squeeze)
        except ValueError:
            return None

    def _forward(self, X, n_threads):
        if type(X) is np.ndarray and X.ndim == 2 and X.shape[0] == 1:
            out = self._one_row(X, False)
            if out is not None:
                return out
        X = self._matrix(X)
        net = self._net(self._compute_dtype(X))
        out, bad = net.predict(X, resolve_threads(n_threads), self.finite_only)
        if bad >= 0:
            self._raise_nonfinite(X, bad)
        return out

    def predict_raw(self, X, n_threads: int | None = None) -> np.ndarray:
        """Raw outputs before the link: decision values, margins, or the network output.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Any input :func:`forgeline._frame.to_frame` accepts.
        n_threads : int or None
            Threads to use; None means all cores. Results do not depend on it.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs)

        Raises
        ------
        SchemaError
            Wrong number of columns.
        DataError
            NaN or infinity in the input of a model whose source rejects them.
        """
        if type(X) is np.ndarray and X.ndim == 2 and X.shape[0] == 1:
            out = self._one_row(X, not self.output_2d)
            if out is not None:
                return out
        return self.finish(self._forward(X, n_threads), "predict_raw")

    def finish(self, z: np.ndarray, method: str) -> np.ndarray:
        """``method``'s output ("predict_raw", "predict_proba" or "predict") from the raw
        outputs ``z`` of shape (n_samples, n_outputs): the part after the network, shared
        with the fused scoring path (:mod:`forgeline._fold`)."""
        if method == "predict_raw":
            return z if (self.output_2d or z.shape[1] != 1) else z[:, 0]
        if method == "predict_proba":
            if self.proba == "none":
                raise NotImplementedError(
                    f"{self.source.get('estimator', type(self).__name__)} has no predict_proba")
            return self._proba(z)
        if self.task == "regression":
            if self.link == "exp":
                with np.errstate(over="ignore"):
                    z = np.exp(z)
            return z if (self.output_2d or z.shape[1] != 1) else z[:, 0]
        if self.predict_from == "proba":
            p = self._proba(z)
            idx = (p[:, 1] > 0.5).astype(np.intp) if z.shape[1] == 1 else p.argmax(axis=1)
        else:
            idx = (z[:, 0] > 0).astype(np.intp) if z.shape[1] == 1 else z.argmax(axis=1)
        return self.classes_.take(idx)

    def predict_proba(self, X, n_threads: int | None = None) -> np.ndarray:
        """Class probabilities, computed from the raw outputs as the source library does.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        if self.proba == "none":
            raise NotImplementedError(
                f"{self.source.get('estimator', type(self).__name__)} has no predict_proba")
        return self.finish(self._forward(X, n_threads), "predict_proba")

    def _proba(self, z):
        if self.proba == "logistic":
            if z.shape[1] == 1:
                p = expit(z[:, 0])
                out = np.empty((p.shape[0], 2), dtype=p.dtype)
                out[:, 0] = 1 - p
                out[:, 1] = p
                return out
            return _normalise_rows(expit(z))
        if self.proba == "softmax":
            return softmax_rows(z)
        # modified Huber: (clip(z, -1, 1) + 1) / 2, then as sklearn's SGDClassifier.
        p = (np.clip(z, -1, 1) + 1.0) / 2.0
        if z.shape[1] == 1:
            out = np.ones((z.shape[0], 2))
            out[:, 1] = p[:, 0]
            out[:, 0] -= out[:, 1]
            return out
        return _normalise_rows(p)

    def predict(self, X, n_threads: int | None = None) -> np.ndarray:
        """Labels (classifiers) or link-transformed predictions (regressors).

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        return self.finish(self._forward(X, n_threads), "predict")

    def error_scale(self, X) -> np.ndarray:
        """The magnitude the exactness contract is relative to, per raw output.

        Computed in float64 numpy by pushing ``|x|`` through the network: a dense layer maps
        a magnitude ``m`` to ``m @ |W| + |b|`` (the sum of the absolute values of the
        terms), activations scale it by their Lipschitz constant, LayerNorm divides it by
        the row's standard deviation, softmax bounds it by twice the row maximum. Both
        forgeline and the source framework round each output to within a small multiple of
        machine epsilon times this value, in whatever order they sum; the contract is
        ``|forgeline - source| <= rtol * (|source| + error_scale)`` with rtol 1e-12
        (float64) or 1e-6 (float32). :func:`forgeline.compile`'s self-check can use it.

        Returns
        -------
        ndarray of the raw output's shape, float64.
        """
        X = self._matrix(X)
        h = np.asarray(X, dtype=np.float64)
        m = np.abs(h)
        lip = {"identity": 1.0, "relu": 1.0, "tanh": 1.0, "sigmoid": 1.0, "silu": 1.2,
               "gelu": 1.2, "gelu_tanh": 1.2}
        for i, L in enumerate(self.layers):
            a = {k.split(".", 1)[1]: v.astype(np.float64) for k, v in self.arrays.items()
                 if k.startswith(f"l{i}.")}
            op = L["op"]
            if op == "dense":
                h = h @ a["weight"] + a["bias"]
                m = m @ np.abs(a["weight"]) + np.abs(a["bias"])
            if op == "affine" or (op == "dense" and L.get("affine")):
                h = h * a["scale"] + a["shift"]
                m = m * np.abs(a["scale"]) + np.abs(a["shift"])
            if op in ("dense", "activation"):
                act = L.get("act", "identity")
                h = _np_activation(act, h, L.get("alpha", 0.0))
                m = m * (max(1.0, abs(L.get("alpha", 0.0))) if act == "leaky_relu" else lip[act])
            elif op == "layernorm":
                mu = h.mean(axis=1, keepdims=True)
                sd = np.sqrt(h.var(axis=1, keepdims=True) + L["eps"])
                g = np.abs(a["weight"]) if L["has_weight"] else 1.0
                m = g * (m.max(axis=1, keepdims=True) + np.abs(h - mu)) / sd + (np.abs(a["bias"]) if L["has_bias"] else 0.0)
                h = (h - mu) / sd * (a["weight"] if L["has_weight"] else 1.0) + (a["bias"] if L["has_bias"] else 0.0)
            elif op == "softmax":
                h = softmax_rows(h)
                m = np.broadcast_to(2 * m.max(axis=1, keepdims=True), h.shape).copy()
        return m if (self.output_2d or m.shape[1] != 1) else m[:, 0]

    # -- persistence -------------------------------------------------------------------
    def to_parts(self) -> tuple[dict, dict[str, np.ndarray]]:
        """Plain parts: a JSON-safe dict and the named parameter arrays."""
        classes = None
        if self.classes_ is not None:
            classes = {"values": [_json_scalar(v) for v in self.classes_.tolist()],
                       "dtype": "object" if self.classes_.dtype == object else self.classes_.dtype.str}
        meta = {
            "kind": self.kind, "feature_names": list(self.feature_names), "task": self.task,
            "dtype": self.dtype.name, "input_cast": self.input_cast,
            "finite_only": self.finite_only, "classes": classes, "link": self.link,
            "proba": self.proba, "predict_from": self.predict_from,
            "output_2d": self.output_2d, "source": dict(self.source),
            "layers": [dict(L) for L in self.layers],
        }
        return meta, {k: np.ascontiguousarray(v) for k, v in self.arrays.items()}

    @classmethod
    def from_parts(cls, meta: dict, arrays: dict[str, np.ndarray]) -> DenseModel:
        """Rebuild from :meth:`to_parts` output, validating everything.

        Raises
        ------
        BundleError
            Any missing, mistyped, inconsistent or out-of-range content.
        """
        if not isinstance(meta, dict) or meta.get("kind") != cls.kind:
            raise BundleError(f"not a {cls.kind!r} model")
        if not isinstance(arrays, dict):
            raise BundleError("model arrays must be a dict")
        names = meta.get("feature_names")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise BundleError("feature_names must be a non-empty list of strings")
        checks = {
            "task": TASKS, "dtype": ("float32", "float64"), "input_cast": ("promote", "cast"),
            "link": LINKS, "proba": PROBAS, "predict_from": ("raw", "proba"),
        }
        for key, allowed in checks.items():
            if meta.get(key) not in allowed:
                raise BundleError(f"model {key!r} must be one of {allowed}, got {meta.get(key)!r}")
        for key in ("finite_only", "output_2d"):
            if not isinstance(meta.get(key), bool):
                raise BundleError(f"model {key!r} must be a bool")
        source = meta.get("source", {})
        if not isinstance(source, dict):
            raise BundleError("model 'source' must be a dict")
        classes = meta.get("classes")
        cls_arr = None
        if classes is not None:
            if not isinstance(classes, dict) or not isinstance(classes.get("values"), list):
                raise BundleError("model 'classes' must be a dict with a 'values' list")
            vals = classes["values"]
            if not all(isinstance(v, (str, int, float, bool)) for v in vals):
                raise BundleError("class labels must be strings or numbers")
            try:
                dt = np.dtype(classes.get("dtype", "object"))
                if dt.kind not in "biufUO":
                    raise TypeError(dt)
                cls_arr = np.array(vals, dtype=dt)
            except (TypeError, ValueError) as exc:
                raise BundleError(f"bad class labels: {exc}") from None
        if meta["task"] in ("binary", "multiclass") and cls_arr is None:
            raise BundleError("a classifier needs its classes")
        for k, v in arrays.items():
            if not isinstance(v, np.ndarray) or v.dtype.kind != "f":
                raise BundleError(f"array {k!r} must be a float ndarray")
        try:
            layers = meta.get("layers")
            if isinstance(layers, list):
                layers = [dict(L) if isinstance(L, dict) else L for L in layers]
            model = cls(layers=layers, arrays=dict(arrays), feature_names=names, task=meta["task"],
                        dtype=meta["dtype"], input_cast=meta["input_cast"],
                        finite_only=meta["finite_only"], classes=cls_arr, link=meta["link"],
                        proba=meta["proba"], predict_from=meta["predict_from"],
                        output_2d=meta["output_2d"], source=source)
        except BundleError:
            raise
        except (TypeError, ValueError, KeyError) as exc:
            raise BundleError(f"invalid {cls.kind} model: {exc}") from None
        if cls_arr is not None:
            need = 2 if model.n_outputs == 1 else model.n_outputs
            if cls_arr.shape != (need,):
                raise BundleError(f"{cls_arr.size} classes do not match {model.n_outputs} outputs")
        elif model.proba != "none":
            raise BundleError("probabilities need classes")
        try:
            model._net(model.dtype)  # the native side re-checks every shape
        except (ValueError, RuntimeError) as exc:
            raise BundleError(f"invalid {cls.kind} model: {exc}") from None
        return model


class LinearModel(DenseModel):
    """A fitted linear model: ``link(X @ coef_.T + intercept_)``.

    Use :func:`forgeline.models.import_model` on a fitted scikit-learn linear estimator
    (LinearRegression, Ridge, Lasso, ElasticNet, SGD*, LogisticRegression, LinearSVC,
    Poisson/Gamma/TweedieRegressor, ...) to build one.
    """

    kind: ClassVar[str] = "linear"

    @property
    def coef_(self) -> np.ndarray:
        """Coefficients, shape (n_outputs, n_features)."""
        return self.arrays["l0.weight"].T

    @property
    def intercept_(self) -> np.ndarray:
        """Intercepts, shape (n_outputs,)."""
        return self.arrays["l0.bias"]

    @classmethod
    def from_coef(cls, coef, intercept, *, feature_names=None, **kw) -> LinearModel:
        """Build from a coefficient matrix (n_outputs, n_features) and intercepts.

        Parameters
        ----------
        coef : array-like of shape (n_features,) or (n_outputs, n_features)
        intercept : float or array-like of shape (n_outputs,)
        feature_names : list of str, optional
            Defaults to ``x0 .. x{n-1}``, the names forgeline gives numpy columns.
        **kw
            Other :class:`DenseModel` attributes (task, classes, link, proba, ...).
        """
        coef = np.asarray(coef)
        dtype = np.float32 if coef.dtype == np.float32 else np.float64
        coef2 = np.atleast_2d(coef).astype(dtype)
        n_out, n_in = coef2.shape
        b = np.broadcast_to(np.asarray(intercept, dtype=dtype), (n_out,)).copy()
        names = list(feature_names) if feature_names is not None else [f"x{i}" for i in range(n_in)]
        arrays = {"l0.weight": np.ascontiguousarray(coef2.T), "l0.bias": b}
        kw.setdefault("task", "regression")
        return cls(layers=[{"op": "dense", "out": n_out, "act": "identity"}], arrays=arrays,
                   feature_names=names, dtype=dtype, **kw)

