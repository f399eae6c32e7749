"""User-defined drift metrics compiled with Numba, run beside the built-in tests.

>>> from forgeline.drift import metric                      # doctest: +SKIP
>>> @metric(kind="numeric", threshold=0.2)                  # doctest: +SKIP
... def median_shift(ref, cur):
...     return abs(ref[ref.size // 2] - cur[cur.size // 2])
>>> fl.compare(ref, cur, tests=["ks", "median_shift"])     # doctest: +SKIP

A numeric metric receives the two samples as ascending float64 arrays without NaN (exact
values for raw frames and small profiles; for a sketched profile, 2048 evenly spaced
quantiles of the sketch stand in for the reference). A categorical metric receives the two
proportion vectors over the union of categories. The result is a float; the column drifts
when it is >= ``threshold``. Numba is imported only when a metric is defined.
"""

from __future__ import annotations

import math

from ..errors import DriftError

_REGISTRY: dict[str, Metric] = {}


class Metric:
    """A compiled user metric (see :func:`metric`)."""

    def __init__(self, name: str, kind: str, fn, threshold: float, python_fn):
        self.name = name
        self.kind = kind
        self.fn = fn
        self.threshold = threshold
        self.python_fn = python_fn

    def __call__(self, ref, cur) -> float:
        try:
            return float(self.fn(ref, cur))
        except Exception as exc:  # numba typing errors surface at the first call
            raise DriftError(f"drift metric {self.name!r} failed: {exc}") from exc

    def __repr__(self) -> str:
        return f"Metric({self.name!r}, kind={self.kind!r}, threshold={self.threshold})"


def metric(fn=None, *, name: str | None = None, kind: str = "numeric", threshold: float = 0.1):
    """Register a user-defined drift metric compiled with ``numba.njit``.

    Parameters
    ----------
    fn : callable
        ``fn(reference, current) -> float`` (see the module docstring for the inputs).
    name : str, optional
        Test name used in ``compare(tests=...)``; defaults to the function name.
    kind : {"numeric", "categorical"}
    threshold : float
        The column drifts when the metric is >= threshold.

    Raises
    ------
    DriftError
        If numba is not installed, or the name clashes with a built-in test.
    """
    if kind not in ("numeric", "categorical"):
        raise DriftError(f"metric kind must be 'numeric' or 'categorical', not {kind!r}")
    if not isinstance(threshold, (int, float)) or math.isnan(threshold):
        raise DriftError(f"metric threshold must be a number, got {threshold!r}")

    def register(f):
        from .compare import CATEGORICAL_TESTS, NUMERIC_TESTS
        mname = name or f.__name__
        if mname in NUMERIC_TESTS or mname in CATEGORICAL_TESTS:
            raise DriftError(f"metric name {mname!r} clashes with a built-in test")
        try:
            import numba
        except ImportError as exc:
            raise DriftError("forgeline.drift.metric needs numba (pip install 'forgeline[jit]')") from exc
        m = Metric(mname, kind, numba.njit(cache=False, nogil=True)(f), float(threshold), f)
        _REGISTRY[mname] = m
        return m

    return register(fn) if fn is not None else register


def registered() -> dict[str, Metric]:
    """The registered user metrics by name."""
    return dict(_REGISTRY)


def unregister(name: str) -> None:
    """Remove a user metric (mainly for tests)."""
    _REGISTRY.pop(name, None)
