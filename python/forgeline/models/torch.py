"""Importer for PyTorch ``nn.Sequential`` dense networks (inference/eval semantics).

Supported layers: ``Linear``, ``ReLU``, ``LeakyReLU``, ``GELU`` (``approximate="none"`` or
``"tanh"``), ``Tanh``, ``Sigmoid``, ``SiLU``, ``Softmax`` over the feature dimension,
``Dropout`` (the identity at inference), ``Identity``, ``Flatten`` (the identity on 2-D
input), ``BatchNorm1d`` with running statistics and ``LayerNorm`` over the last dimension;
nested ``Sequential`` containers are flattened. Anything else raises
:class:`~forgeline.UnsupportedModelError` naming the layer.

BatchNorm1d is applied as torch applies it in eval mode, as a per-feature affine map
``x * alpha + beta`` with ``alpha = weight / sqrt(running_var + eps)`` and
``beta = bias - running_mean * alpha`` computed in the parameter dtype; after a Linear it
runs in that layer's epilogue, with the same operations in the same order, rather than
being folded into the weights (folding would round every weight a second time).

The input is cast to the parameters' dtype (float32 or float64), as torch requires;
NaN and infinity propagate exactly as in torch. torch is imported only when ``obj`` comes
from it.
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedModelError
from .mlp import MLPModel


def _np(t, dtype):
    return np.ascontiguousarray(t.detach().cpu().numpy(), dtype=dtype)


def _flatten(module, torch, prefix=""):
    for i, m in enumerate(module):
        name = f"{prefix}{i}"
        if isinstance(m, torch.nn.Sequential):
            yield from _flatten(m, torch, prefix=f"{name}.")
        else:
            yield name, m


def try_import(obj, feature_names=None, n_features=None, **options):
    """Return an :class:`~forgeline.models.mlp.MLPModel` for a torch ``nn.Sequential`` (or a
    single supported layer), or None when ``obj`` is not a torch module.

    Parameters
    ----------
    obj : torch.nn.Module
    feature_names : list of str, optional
        Input column names; default ``x0 .. x{n-1}``.
    n_features : int, optional
        Needed only when no layer fixes the input width (e.g. the first layer is an
        activation).

    Raises
    ------
    UnsupportedModelError
        A layer that is not supported (named with its position), mixed or non-float
        parameter dtypes, or a BatchNorm without running statistics.
    """
    if not (type(obj).__module__ or "").startswith("torch."):
        return None
    import torch

    if not isinstance(obj, torch.nn.Module):
        return None
    if options:
        raise TypeError(f"unexpected importer options for torch models: {sorted(options)}")
    modules = list(_flatten(obj, torch)) if isinstance(obj, torch.nn.Sequential) else [("0", obj)]
    dtypes = {p.dtype for p in obj.parameters()} | {b.dtype for b in obj.buffers() if b.is_floating_point()}
    if len(dtypes) > 1:
        raise UnsupportedModelError(f"mixed parameter dtypes {sorted(map(str, dtypes))}")
    tdtype = dtypes.pop() if dtypes else torch.float32
    if tdtype not in (torch.float32, torch.float64):
        raise UnsupportedModelError(f"parameter dtype {tdtype} is not supported (float32/float64 only)")
    dtype = np.float32 if tdtype == torch.float32 else np.float64
    nn = torch.nn
    layers: list[dict] = []
    arrays: dict[str, np.ndarray] = {}
    width = n_in = n_features
    simple = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.SiLU: "silu"}

    def need_width(name, m, w):
        nonlocal width, n_in
        if width is None:
            width = n_in = w
        elif width != w:
            raise UnsupportedModelError(f"layer {name} ({type(m).__name__}) expects {w} inputs but "
                                        f"receives {width}")

    for name, m in modules:
        i = len(layers)
        t = type(m)
        if t in simple:
            layers.append({"op": "activation", "act": simple[t]})
        elif t is nn.LeakyReLU:
            layers.append({"op": "activation", "act": "leaky_relu", "alpha": float(m.negative_slope)})
        elif t is nn.GELU:
            if m.approximate not in ("none", "tanh"):
                raise UnsupportedModelError(f"layer {name} (GELU): approximate={m.approximate!r}")
            layers.append({"op": "activation", "act": "gelu" if m.approximate == "none" else "gelu_tanh"})
        elif t in (nn.Dropout, nn.Identity):
            continue
        elif t is nn.Flatten:
            if m.start_dim != 1 or m.end_dim != -1:
                raise UnsupportedModelError(f"layer {name} (Flatten): only start_dim=1, end_dim=-1")
            continue
        elif t is nn.Softmax:
            if m.dim not in (None, 1, -1):
                raise UnsupportedModelError(f"layer {name} (Softmax): dim={m.dim} is not the feature dim")
            layers.append({"op": "softmax"})
        elif t is nn.Linear:
            need_width(name, m, m.in_features)
            layers.append({"op": "dense", "out": int(m.out_features), "act": "identity", "alpha": 0.0})
            arrays[f"l{i}.weight"] = np.ascontiguousarray(_np(m.weight, dtype).T)
            arrays[f"l{i}.bias"] = (_np(m.bias, dtype) if m.bias is not None
                                    else np.zeros(m.out_features, dtype=dtype))
            width = int(m.out_features)
        elif t is nn.BatchNorm1d:
            if m.running_mean is None or m.running_var is None:
                raise UnsupportedModelError(f"layer {name} (BatchNorm1d): no running statistics "
                                            "(track_running_stats=False)")
            need_width(name, m, m.num_features)
            mean, var = _np(m.running_mean, dtype), _np(m.running_var, dtype)
            w = _np(m.weight, dtype) if m.weight is not None else np.ones_like(mean)
            b = _np(m.bias, dtype) if m.bias is not None else np.zeros_like(mean)
            invstd = dtype(1) / np.sqrt(var + dtype(m.eps))
            alpha = invstd * w
            layers.append({"op": "affine"})
            arrays[f"l{i}.scale"] = alpha
            arrays[f"l{i}.shift"] = b - mean * alpha
        elif t is nn.LayerNorm:
            if len(m.normalized_shape) != 1:
                raise UnsupportedModelError(f"layer {name} (LayerNorm): only a 1-D normalized_shape")
            need_width(name, m, int(m.normalized_shape[0]))
            layers.append({"op": "layernorm", "eps": float(m.eps), "has_weight": m.weight is not None,
                           "has_bias": m.bias is not None})
            if m.weight is not None:
                arrays[f"l{i}.weight"] = _np(m.weight, dtype)
            if m.bias is not None:
                arrays[f"l{i}.bias"] = _np(m.bias, dtype)
        else:
            raise UnsupportedModelError(f"unsupported torch layer {name}: {t.__module__}.{t.__qualname__}")
    if n_in is None or not layers:
        raise UnsupportedModelError("cannot infer the input width: the network has no Linear, "
                                    "BatchNorm1d or LayerNorm layer; pass n_features=")
    names = list(feature_names) if feature_names is not None else [f"x{k}" for k in range(n_in)]
    if len(names) != n_in:
        raise UnsupportedModelError(f"{len(names)} feature names for {n_in} inputs")
    source = {"library": "torch", "version": torch.__version__, "estimator": type(obj).__name__}
    return MLPModel.from_layers(layers, arrays, feature_names=names, task="regression",
                                dtype=dtype, input_cast="cast", finite_only=False, source=source)

