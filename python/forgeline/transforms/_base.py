"""Base classes: scikit-learn's when it is importable, a small stand-in otherwise.

scikit-learn is an optional extra. With it, every transformer is a real sklearn estimator
(``BaseEstimator`` + ``TransformerMixin``: ``get_params``/``set_params``, cloning, tags,
``set_output``). Without it, :class:`_FallbackEstimator` provides the same surface
(``get_params``, ``set_params``, ``fit_transform``, ``set_output``), so the package works on
numpy + pyarrow alone.
"""

from __future__ import annotations

import inspect

import numpy as np

from ..errors import InputError, NotFittedError

try:  # pragma: no branch - which branch runs depends on the environment
    from sklearn.base import BaseEstimator as _SkBaseEstimator
    from sklearn.base import TransformerMixin as _SkTransformerMixin
    HAVE_SKLEARN = True
except ImportError:  # pragma: no cover - exercised by test_transforms_base in a subprocess
    _SkBaseEstimator = _SkTransformerMixin = None
    HAVE_SKLEARN = False


class _FallbackEstimator:
    """The parts of sklearn's BaseEstimator/TransformerMixin forgeline relies on."""

    @classmethod
    def _get_param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return sorted(p.name for p in sig.parameters.values()
                      if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL))

    def get_params(self, deep: bool = True) -> dict:
        """Parameters of this estimator, by name (as sklearn's ``get_params``)."""
        return {k: getattr(self, k) for k in self._get_param_names()}

    def set_params(self, **params):
        """Set parameters by name (as sklearn's ``set_params``)."""
        valid = self._get_param_names()
        for k, v in params.items():
            if k not in valid:
                raise InputError(f"invalid parameter {k!r} for {type(self).__name__}; "
                                 f"valid parameters are {valid}")
            setattr(self, k, v)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def fit_transform(self, X, y=None, **fit_params):
        """Fit to ``X`` (and ``y``), then transform ``X``."""
        return self.fit(X, y, **fit_params).transform(X)

    def set_output(self, *, transform=None):
        """Choose the container of ``transform``'s output: "default", "pandas" or "polars"."""
        if transform is not None:
            if transform not in ("default", "pandas", "polars"):
                raise InputError(f"set_output(transform=...) must be 'default', 'pandas' or "
                                 f"'polars', got {transform!r}")
            self._fl_output = transform
        return self


if HAVE_SKLEARN:
    class _Base(_SkTransformerMixin, _SkBaseEstimator):
        """forgeline transformer base on top of scikit-learn's."""
else:  # pragma: no cover
    class _Base(_FallbackEstimator):
        """forgeline transformer base (scikit-learn is not installed)."""


def wrap_output(est, out: np.ndarray, names, index=None):
    """Apply ``set_output`` when sklearn is absent (sklearn's mixin wraps otherwise)."""
    if HAVE_SKLEARN:
        return out
    how = getattr(est, "_fl_output", "default")  # pragma: no cover
    if how == "pandas":  # pragma: no cover
        import pandas as pd
        return pd.DataFrame(out, columns=list(names), index=index)
    if how == "polars":  # pragma: no cover
        import polars as pl
        return pl.DataFrame({n: out[:, j] for j, n in enumerate(names)})
    return out  # pragma: no cover


def check_is_fitted(est, attr: str = "n_features_in_") -> None:
    """Raise :class:`~forgeline.NotFittedError` when ``est`` has not been fitted."""
    if not hasattr(est, attr):
        raise NotFittedError(
            f"This {type(est).__name__} instance is not fitted yet. Call 'fit' with appropriate "
            "arguments before using this estimator.")
