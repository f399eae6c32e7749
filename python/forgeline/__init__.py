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
    ParameterError,
    SchemaError,
    UnsupportedModelError,
)
from .schema import ColumnSpec, Schema
from .scorer import Scorer, load
from .compile import compile  # noqa: A004  (the public entry point shadows the builtin here)
from .drift import DriftReport, Profile, compare

# Submodules that pull in optional libraries (sklearn for the transformers' base classes,
# numba for udfs, optuna/mlflow for tuning) load on first use, so `import forgeline` stays
# light and works with only numpy and pyarrow installed.
_LAZY = {"transforms": "forgeline.transforms", "tune": "forgeline.tune",
         "integrations": "forgeline.integrations", "models": "forgeline.models",
         "drift": "forgeline.drift"}


def __getattr__(name: str):
    import importlib

    if name in _LAZY:
        return importlib.import_module(_LAZY[name])
    if name == "udf":
        from .jit import udf  # numba only; no scikit-learn needed to define a udf

        return udf
    if name == "inspect_bundle":
        from ._udf_plan import inspect_bundle

        return inspect_bundle
    raise AttributeError(f"module 'forgeline' has no attribute {name!r}")

__all__ = [
    "__version__",
    "BundleError", "CompileError", "DataError", "DriftError", "ExtensionNotBuiltError",
    "ForgelineError", "InputError", "LimitError", "NotFittedError", "ParameterError", "SchemaError",
    "UnsupportedModelError",
    "ColumnSpec", "Schema", "Scorer", "compile", "load", "Profile", "compare", "DriftReport",
    "transforms", "tune", "udf", "inspect_bundle",
]
