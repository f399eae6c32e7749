"""forgeline: fitted ML models to fast, exact, safe native scorers.

The public surface is re-exported here; see DESIGN.md for the contract.
"""

from __future__ import annotations

from ._native import core as _core_module  # noqa: F401  (fails early with a clear error)
from ._version import __version__
from .errors import (
    BundleError,
    CompileError,
    DataError,
    DriftError,
    ExtensionNotBuiltError,
    ForgelineError,
    InputError,
    LimitError,
    NotFittedError,
    SchemaError,
    UnsupportedModelError,
)
from .schema import ColumnSpec, Schema
from .scorer import Scorer, load
from .compile import compile  # noqa: A004  (the public entry point shadows the builtin here)

__all__ = [
    "__version__",
    "BundleError", "CompileError", "DataError", "DriftError", "ExtensionNotBuiltError",
    "ForgelineError", "InputError", "LimitError", "NotFittedError", "SchemaError",
    "UnsupportedModelError",
    "ColumnSpec", "Schema", "Scorer", "compile", "load",
]
