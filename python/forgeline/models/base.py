"""The protocol every native model follows, so compile, Scorer and bundle treat them alike."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from .. import _frame
from ..errors import BundleError, SchemaError

TASKS = ("regression", "binary", "multiclass", "ranking")


class NativeModel:
    """Base class of native models (tree ensembles, linear models, MLPs).

    Subclasses set ``kind`` (a unique string stored in bundles) and implement
    :meth:`predict_raw`, :meth:`to_parts` and :meth:`from_parts`. Attributes every model has:

    ``feature_names`` (list of str), ``n_features``, ``task`` (one of ``TASKS``),
    ``classes_`` (ndarray or None), ``n_outputs`` (columns of the raw output; 1 for
    regression and binary), ``source`` (dict: library, version, estimator class).
    """

    kind: ClassVar[str] = ""
    _registry: ClassVar[dict[str, type[NativeModel]]] = {}

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if cls.kind:
            NativeModel._registry[cls.kind] = cls

    feature_names: list[str]
    task: str
    classes_: np.ndarray | None = None
    n_outputs: int = 1
    source: dict

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    # -- scoring ---------------------------------------------------------------------
    def as_matrix(self, X, dtype=np.float64) -> np.ndarray:
        """Validate and convert any supported input to a C-contiguous (n, n_features) array."""
        if isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype.kind in "fiub":
            if X.shape[1] != self.n_features:
                raise SchemaError(f"expected {self.n_features} feature columns, got {X.shape[1]}",
                                  problems={"<shape>": f"{X.shape[1]} != {self.n_features}"})
            return np.ascontiguousarray(X, dtype=dtype)
        frame = X if isinstance(X, _frame.Frame) else _frame.to_frame(X, columns=self.feature_names)
        return frame.numeric_matrix(self.feature_names, dtype=dtype)

    def predict_raw(self, X, n_threads: int | None = None) -> np.ndarray:
        """Raw margins / decision values: shape (n,) when n_outputs == 1, else (n, n_outputs)."""
        raise NotImplementedError

    def predict_proba(self, X, n_threads: int | None = None) -> np.ndarray:
        """Class probabilities (n, n_classes) for classifiers."""
        raise NotImplementedError(f"{type(self).__name__} is not a classifier")

    def predict(self, X, n_threads: int | None = None) -> np.ndarray:
        """Labels for classifiers (from ``classes_``), link-transformed values for regressors."""
        raise NotImplementedError

    # -- persistence -----------------------------------------------------------------
    def to_parts(self) -> tuple[dict, dict[str, np.ndarray]]:
        """A JSON-safe dict and named numeric arrays (no objects) that rebuild the model."""
        raise NotImplementedError

    @classmethod
    def from_parts(cls, meta: dict, arrays: dict[str, np.ndarray]) -> NativeModel:
        """Rebuild from :meth:`to_parts` output. Must validate everything (indices in
        range, shapes, counts) and raise :class:`~forgeline.BundleError` on bad content:
        bundles come from untrusted files."""
        raise NotImplementedError


_MODEL_MODULES = ("forgeline.models.trees", "forgeline.models.linear", "forgeline.models.mlp")


def model_from_parts(meta: dict, arrays: dict[str, np.ndarray]) -> NativeModel:
    """Rebuild any native model from its parts, dispatching on ``meta["kind"]``."""
    import importlib

    # The model classes live in modules that import no training library; load them so
    # they register their kinds.
    for mod in _MODEL_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:
                raise
    kind = meta.get("kind") if isinstance(meta, dict) else None
    cls = NativeModel._registry.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise BundleError(f"unknown model kind {kind!r} in bundle")
    return cls.from_parts(meta, arrays)
