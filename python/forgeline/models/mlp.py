"""Native multi-layer perceptrons (dense feed-forward networks).

An :class:`MLPModel` is a flat list of ops run by the native blocked kernels: dense layers
with a fused bias, per-column affine (eval-mode BatchNorm) and activation, stand-alone
activations, LayerNorm and softmax. Importers build it from scikit-learn
``MLPClassifier``/``MLPRegressor``, a torch ``nn.Sequential`` or a Keras ``Sequential``
(see :mod:`forgeline.models.sklearn_mlp`, :mod:`forgeline.models.torch`,
:mod:`forgeline.models.keras`).

The forward pass follows the source framework in inference mode: torch ``eval()``
semantics (Dropout is the identity, BatchNorm uses its running statistics, computed as
torch does: ``x * (weight / sqrt(var + eps)) + (bias - mean * alpha)``), Keras
``training=False``.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from .linear import DenseModel, fuse_layers


class MLPModel(DenseModel):
    """A dense feed-forward network (kind ``"mlp"``).

    Build it with :func:`forgeline.models.import_model`, or directly with
    :meth:`from_layers`. Raw outputs are the network outputs; for scikit-learn classifiers
    the output activation (logistic/softmax) is applied by :meth:`predict_proba`, so
    :meth:`predict_raw` returns the logits.
    """

    kind: ClassVar[str] = "mlp"

    @classmethod
    def from_layers(cls, layers: list[dict], arrays: dict[str, np.ndarray], *, feature_names,
                    **kw) -> MLPModel:
        """Build from an op list, fusing affine ops and activations into dense layers.

        Parameters
        ----------
        layers : list of dict
            Ops: ``{"op": "dense", "out": n, "act": name, "alpha": a}`` (arrays
            ``l{i}.weight`` of shape (in, out) and ``l{i}.bias``), ``{"op": "activation",
            "act": name, "alpha": a}``, ``{"op": "affine"}`` (``l{i}.scale``/``l{i}.shift``),
            ``{"op": "layernorm", "eps": e, "has_weight": b, "has_bias": b}``
            (``l{i}.weight``/``l{i}.bias``), ``{"op": "softmax"}``.
        arrays : dict of str to ndarray
            Parameters, all of the model's dtype.
        feature_names : list of str
        **kw
            Other :class:`~forgeline.models.linear.DenseModel` attributes.
        """
        layers, arrays = fuse_layers(layers, arrays)
        return cls(layers=layers, arrays=arrays, feature_names=feature_names, **kw)
