"""Native model objects and their importers.

:func:`import_model` turns a fitted model from a supported library into a native model
(see :class:`~forgeline.models.base.NativeModel`). Each importer module exposes
``try_import(obj, **options)`` that returns a native model, or None when ``obj`` is not a
type it handles; importers for libraries that are not installed are simply skipped.
"""

from __future__ import annotations

import importlib

from ..errors import UnsupportedModelError
from .base import NativeModel, model_from_parts

# Order matters only where two importers could claim the same object.
_IMPORTERS = [
    "forgeline.models.lightgbm",
    "forgeline.models.xgboost",
    "forgeline.models.sklearn_trees",
    "forgeline.models.sklearn_linear",
    "forgeline.models.sklearn_mlp",
    "forgeline.models.torch",
    "forgeline.models.keras",
]


def import_model(obj, **options) -> NativeModel:
    """Convert a fitted model to a native model.

    Parameters
    ----------
    obj
        A fitted LightGBM/XGBoost booster or sklearn wrapper, a fitted scikit-learn
        estimator, a torch ``nn.Sequential`` or a Keras ``Sequential``.
    **options
        Importer options, e.g. ``num_iteration`` for LightGBM or ``iteration_range`` for
        XGBoost.

    Raises
    ------
    UnsupportedModelError
        When no importer handles ``obj``, naming its type.
    """
    if isinstance(obj, NativeModel):
        return obj
    for path in _IMPORTERS:
        try:
            mod = importlib.import_module(path)
        except ModuleNotFoundError as exc:
            if exc.name == path:
                continue  # importer not written yet / not shipped
            raise
        model = mod.try_import(obj, **options)
        if model is not None:
            return model
    t = type(obj)
    raise UnsupportedModelError(f"unsupported model type {t.__module__}.{t.__qualname__}")


__all__ = ["NativeModel", "import_model", "model_from_parts"]
