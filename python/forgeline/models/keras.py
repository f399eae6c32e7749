"""Importer for Keras 3 ``Sequential`` dense networks (inference, ``training=False``).

Supported layers: ``Dense`` (with any supported activation), ``Activation``, ``ReLU``
(default arguments), ``LeakyReLU``, ``Softmax`` over the last axis, ``Dropout`` (the
identity at inference), ``BatchNormalization`` over the last axis (moving statistics,
applied as the per-feature affine ``x * alpha + beta``) and ``LayerNormalization`` over the
last axis. Activations: linear, relu, leaky_relu, gelu (exact or tanh approximation),
tanh, sigmoid, silu/swish, softmax. Anything else raises
:class:`~forgeline.UnsupportedModelError` naming the layer.

Keras is imported only when ``obj`` comes from it (any backend; the tests use
``KERAS_BACKEND=torch``). The input is cast to the layers' dtype; NaN and infinity
propagate as in Keras. Keras 3 computes float64 layers in float32 on every backend except
TensorFlow (its type promotion maps 64-bit to 32-bit), so such models import as float32
models there, which is what Keras computes.
"""

from __future__ import annotations

import functools

import numpy as np

from ..errors import UnsupportedModelError
from .mlp import MLPModel


def _activation(fn, where):
    """Map a Keras activation callable to (op dict or None)."""
    kwargs = {}
    if isinstance(fn, functools.partial):
        fn, kwargs = fn.func, dict(fn.keywords)
    name = getattr(fn, "__name__", repr(fn))
    mod = getattr(fn, "__module__", "") or ""
    if not mod.startswith("keras"):
        raise UnsupportedModelError(f"{where}: unsupported activation {name!r}")
    if name == "linear" and not kwargs:
        return None
    if name == "relu" and not any(kwargs.get(k) for k in ("negative_slope", "max_value", "threshold")):
        return {"op": "activation", "act": "relu"}
    if name == "leaky_relu" and set(kwargs) <= {"negative_slope"}:
        return {"op": "activation", "act": "leaky_relu", "alpha": float(kwargs.get("negative_slope", 0.2))}
    if name == "gelu" and set(kwargs) <= {"approximate"}:
        return {"op": "activation", "act": "gelu_tanh" if kwargs.get("approximate") else "gelu"}
    if name in ("tanh", "sigmoid", "silu") and not kwargs:
        return {"op": "activation", "act": name}
    if name == "softmax" and kwargs.get("axis", -1) == -1:
        return {"op": "softmax"}
    raise UnsupportedModelError(f"{where}: unsupported activation {name!r} {kwargs or ''}".rstrip())


def _last_axis(layer, where):
    axis = layer.axis
    if isinstance(axis, (list, tuple)):
        axis = axis[0] if len(axis) == 1 else None
    if axis not in (-1, 1):
        raise UnsupportedModelError(f"{where}: only normalisation over the last axis is supported")


def try_import(obj, feature_names=None, **options):
    """Return an :class:`~forgeline.models.mlp.MLPModel` for a Keras ``Sequential``, or None
    when ``obj`` is not a Keras model.

    Parameters
    ----------
    obj : keras.Sequential
        Built (its input shape known), with float32 or float64 layers.
    feature_names : list of str, optional
        Input column names; default ``x0 .. x{n-1}``.

    Raises
    ------
    UnsupportedModelError
        An unsupported layer or activation (named with its position), a model that is not
        built, or non-float / mixed dtypes.
    """
    if not (type(obj).__module__ or "").startswith("keras"):
        return None
    import keras

    if not isinstance(obj, keras.Model):
        return None
    if not isinstance(obj, keras.Sequential):
        raise UnsupportedModelError(f"only keras.Sequential models are supported, got {type(obj).__name__}")
    if options:
        raise TypeError(f"unexpected importer options for Keras models: {sorted(options)}")
    L_ = keras.layers
    to_np = keras.ops.convert_to_numpy
    dtypes = {str(lay.dtype) for lay in obj.layers}
    if len(dtypes) > 1:
        raise UnsupportedModelError(f"mixed layer dtypes {sorted(dtypes)}")
    dname = dtypes.pop() if dtypes else "float32"
    if dname not in ("float32", "float64"):
        raise UnsupportedModelError(f"layer dtype {dname} is not supported (float32/float64 only)")
    dtype = np.dtype(dname)
    if dtype == np.float64 and keras.backend.backend() != "tensorflow":
        # Keras 3 promotes 64-bit types to 32-bit on every backend but TensorFlow (to match
        # JAX), so ops.matmul/add of a float64 layer compute in float32. The source's
        # forward pass is a float32 one, and forgeline follows it.
        dtype = np.dtype(np.float32)
    layers: list[dict] = []
    arrays: dict[str, np.ndarray] = {}
    n_in = None

    def get(v):
        val = getattr(v, "value", v)
        if hasattr(val, "detach") and hasattr(val, "numpy"):
            # torch backend: keras.ops.convert_to_numpy goes through np.array(tensor), whose
            # __array__ lacks numpy 2's copy keyword and warns; .numpy() does not.
            return np.ascontiguousarray(val.detach().cpu().numpy(), dtype=dtype)
        return np.ascontiguousarray(to_np(val), dtype=dtype)

    for pos, lay in enumerate(obj.layers):
        where = f"layer {pos} ({type(lay).__name__} {lay.name!r})"
        i = len(layers)
        if type(lay) is L_.Dense:
            if getattr(lay, "lora_enabled", False) or getattr(lay, "quantization_mode", None):
                raise UnsupportedModelError(f"{where}: LoRA/quantized Dense layers are not supported")
            W = get(lay.kernel)
            if W.ndim != 2:
                raise UnsupportedModelError(f"{where}: kernel must be 2-D")
            n_in = W.shape[0] if n_in is None else n_in
            layers.append({"op": "dense", "out": int(W.shape[1]), "act": "identity", "alpha": 0.0})
            arrays[f"l{i}.weight"] = W
            arrays[f"l{i}.bias"] = get(lay.bias) if lay.use_bias else np.zeros(W.shape[1], dtype=dtype)
            act = _activation(lay.activation, where)
            if act is not None:
                layers.append(act)
        elif type(lay) is L_.Activation:
            act = _activation(lay.activation, where)
            if act is not None:
                layers.append(act)
        elif type(lay) is L_.ReLU:
            if lay.max_value is not None or lay.negative_slope or lay.threshold:
                raise UnsupportedModelError(f"{where}: only ReLU() with default arguments")
            layers.append({"op": "activation", "act": "relu"})
        elif type(lay) is L_.LeakyReLU:
            layers.append({"op": "activation", "act": "leaky_relu", "alpha": float(lay.negative_slope)})
        elif type(lay) is L_.Softmax:
            _last_axis(lay, where)
            layers.append({"op": "softmax"})
        elif type(lay) is L_.Dropout:
            continue
        elif type(lay) is L_.BatchNormalization:
            _last_axis(lay, where)
            mean, var = get(lay.moving_mean), get(lay.moving_variance)
            gamma = get(lay.gamma) if lay.scale else np.ones_like(mean)
            beta = get(lay.beta) if lay.center else np.zeros_like(mean)
            alpha = (dtype.type(1) / np.sqrt(var + dtype.type(lay.epsilon))) * gamma
            n_in = mean.shape[0] if n_in is None else n_in
            layers.append({"op": "affine"})
            arrays[f"l{i}.scale"] = alpha
            arrays[f"l{i}.shift"] = beta - mean * alpha
        elif type(lay) is L_.LayerNormalization:
            _last_axis(lay, where)
            if getattr(lay, "rms_scaling", False):
                raise UnsupportedModelError(f"{where}: rms_scaling is not supported")
            layers.append({"op": "layernorm", "eps": float(lay.epsilon), "has_weight": bool(lay.scale),
                           "has_bias": bool(lay.center)})
            if lay.scale:
                arrays[f"l{i}.weight"] = get(lay.gamma)
                n_in = arrays[f"l{i}.weight"].shape[0] if n_in is None else n_in
            if lay.center:
                arrays[f"l{i}.bias"] = get(lay.beta)
        else:
            t = type(lay)
            raise UnsupportedModelError(f"unsupported Keras {where}: {t.__module__}.{t.__qualname__}")
    if n_in is None:
        shape = getattr(obj, "input_shape", None)
        if not shape or shape[-1] is None:
            raise UnsupportedModelError("cannot infer the input width of the Keras model")
        n_in = int(shape[-1])
    if not layers:
        raise UnsupportedModelError("the Keras model has no layers forgeline can run")
    names = list(feature_names) if feature_names is not None else [f"x{k}" for k in range(n_in)]
    if len(names) != n_in:
        raise UnsupportedModelError(f"{len(names)} feature names for {n_in} inputs")
    source = {"library": "keras", "version": keras.__version__, "estimator": type(obj).__name__,
              "backend": keras.backend.backend()}
    return MLPModel.from_layers(layers, arrays, feature_names=names, task="regression",
                                dtype=dtype, input_cast="cast", finite_only=False, source=source)
