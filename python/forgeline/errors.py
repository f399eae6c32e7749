"""Every typed exception forgeline raises, in one place.

All of them derive from :class:`ForgelineError`, so ``except forgeline.ForgelineError``
catches anything forgeline raises on purpose. Each also derives from the closest builtin
(``ValueError``, ``TypeError``, ...) so that generic handlers in user code keep working.
"""

from __future__ import annotations


class ForgelineError(Exception):
    """Base class of every error forgeline raises on purpose."""


class ExtensionNotBuiltError(ForgelineError, ImportError):
    """The native extension ``forgeline._core`` could not be imported."""


class InputError(ForgelineError, ValueError):
    """The data passed in cannot be read: unsupported container, dtype or shape."""

    def __init__(self, message: str, column: str | None = None):
        super().__init__(message)
        self.column = column


class SchemaError(InputError):
    """The data does not match the schema: missing columns, wrong kind, wrong length.

    ``problems`` maps each offending column name to a description.
    """

    def __init__(self, message: str, column: str | None = None,
                 problems: dict[str, str] | None = None):
        super().__init__(message, column)
        self.problems = dict(problems or {})


class DataError(InputError):
    """Values that are not allowed where they appear: NaN or inf, unseen categories with
    ``handle_unknown="error"``, empty frames where rows are needed."""


class ParameterError(InputError):
    """A parameter name that the estimator does not have (``tune.search`` spaces, ...).

    ``unknown`` lists the offending names, ``valid`` every name the estimator accepts.
    """

    def __init__(self, message: str, unknown=(), valid=()):
        super().__init__(message)
        self.unknown = list(unknown)
        self.valid = list(valid)


class NotFittedError(ForgelineError, ValueError, AttributeError):
    """An estimator was used before ``fit``. Also an ``AttributeError`` and ``ValueError``,
    like scikit-learn's own ``NotFittedError``."""


class CompileError(ForgelineError, ValueError):
    """``forgeline.compile`` failed, or its self-verification found a mismatch."""

    def __init__(self, message: str, op: str | None = None, column: str | None = None):
        super().__init__(message)
        self.op = op
        self.column = column


class UnsupportedModelError(CompileError, TypeError):
    """The model (or a part of it: a layer, objective, split type) is not supported.

    The message names the unsupported feature. forgeline never falls back to a silent,
    possibly wrong, answer.
    """


class BundleError(ForgelineError, ValueError):
    """A ``.forge`` bundle cannot be read: corrupted, truncated, tampered with, from a newer
    format version, or exceeding a safety limit."""


class LimitError(ForgelineError, ValueError):
    """A configured safety limit was exceeded (tree nodes, vocabulary size, bins, ...)."""


class DriftError(ForgelineError, ValueError):
    """Drift profiles or reports cannot be built or compared."""


__all__ = [
    "ForgelineError", "ExtensionNotBuiltError", "InputError", "SchemaError", "DataError",
    "NotFittedError", "CompileError", "UnsupportedModelError", "BundleError", "LimitError",
    "DriftError", "ParameterError",
]
