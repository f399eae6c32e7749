"""Importer for scikit-learn ``MLPClassifier`` and ``MLPRegressor``.

scikit-learn's forward pass (``_forward_pass_fast``): ``a = a @ coefs_[i] + intercepts_[i]``
then the hidden activation (identity, logistic, tanh, relu) on every layer but the last,
and the output activation on the last. forgeline runs the hidden layers natively and
applies the output activation in :meth:`~forgeline.models.linear.DenseModel.predict_proba`
exactly as scikit-learn does; ``predict`` thresholds the probabilities (binary, at 0.5) or
takes their argmax, like scikit-learn's label binarizer.
"""

from __future__ import annotations

import numpy as np

from ..errors import NotFittedError, UnsupportedModelError
from .mlp import MLPModel
from .sklearn_linear import _feature_names, _source

_ACT = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}


def try_import(obj, **options):
    """Return an :class:`~forgeline.models.mlp.MLPModel` for a fitted scikit-learn MLP, or
    None when ``obj`` is not one.

    Raises
    ------
    NotFittedError
        The estimator is not fitted.
    UnsupportedModelError
        Multilabel classifiers or an unknown activation.
    """
    name = type(obj).__name__
    if not (type(obj).__module__ or "").startswith("sklearn.neural_network") or \
            name not in ("MLPClassifier", "MLPRegressor"):
        return None
    if options:
        raise TypeError(f"unexpected importer options for {name}: {sorted(options)}")
    if not hasattr(obj, "coefs_"):
        raise NotFittedError(f"{name} is not fitted")
    if obj.activation not in _ACT:
        raise UnsupportedModelError(f"{name}: unsupported activation {obj.activation!r}")
    coefs, intercepts = obj.coefs_, obj.intercepts_
    dtype = np.result_type(*coefs, *intercepts)
    layers, arrays = [], {}
    for i, (W, b) in enumerate(zip(coefs, intercepts)):
        last = i == len(coefs) - 1
        layers.append({"op": "dense", "out": int(W.shape[1]),
                       "act": "identity" if last else _ACT[obj.activation], "alpha": 0.0})
        arrays[f"l{i}.weight"] = np.ascontiguousarray(W, dtype=dtype)
        arrays[f"l{i}.bias"] = np.ascontiguousarray(b, dtype=dtype)
    common = {"feature_names": _feature_names(obj, coefs[0].shape[0]), "source": _source(obj),
              "dtype": dtype, "input_cast": "promote", "finite_only": True}
    if name == "MLPRegressor":
        link = {"identity": "identity", "exp": "exp"}.get(obj.out_activation_)
        if link is None:
            raise UnsupportedModelError(f"{name}: unexpected output activation {obj.out_activation_!r}")
        return MLPModel.from_layers(layers, arrays, task="regression", link=link,
                                    output_2d=obj.n_outputs_ > 1, **common)
    classes = np.asarray(obj.classes_)
    if obj.out_activation_ == "softmax":
        proba = "softmax"
    elif obj.out_activation_ == "logistic" and obj.n_outputs_ == 1:
        proba = "logistic"
    else:
        raise UnsupportedModelError(f"{name}: multilabel classifiers are not supported")
    return MLPModel.from_layers(layers, arrays, task="binary" if classes.size == 2 else "multiclass",
                                classes=classes, proba=proba, predict_from="proba", **common)
