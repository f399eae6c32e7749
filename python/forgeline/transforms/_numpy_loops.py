"""Kept for import compatibility: the numpy log1p/expm1 loop registration lives in
:func:`forgeline.plan.register_numpy_loops` (the plan executor is the one that calls them)."""

from __future__ import annotations

from ..plan import register_numpy_loops


def register() -> bool:
    """Register numpy's loops with the plan executor; returns whether they verified bit-exactly."""
    return register_numpy_loops()
