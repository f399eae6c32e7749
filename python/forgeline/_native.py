"""Loads the compiled extension with an error that says what to do when it is missing."""

from __future__ import annotations

from .errors import ExtensionNotBuiltError

try:
    from . import _core as core  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised by the smoke test in a bare tree
    raise ExtensionNotBuiltError(
        "forgeline's native extension (forgeline._core) is not built or cannot be loaded: "
        f"{exc}. Install the package with `pip install .` (or build in place with "
        "`cmake --preset dev && cmake --build --preset dev`)."
    ) from exc


def resolve_threads(n_threads: int | None) -> int:
    """Map the public ``n_threads`` argument to the native convention (0 = all cores).

    ``None`` (or 0, or a negative number) means every core, respecting
    ``FORGELINE_NUM_THREADS`` and ``OMP_NUM_THREADS``.
    """
    if n_threads is None:
        return 0
    if isinstance(n_threads, bool) or not isinstance(n_threads, (int,)) and not hasattr(n_threads, "__index__"):
        raise TypeError(f"n_threads must be an int or None, got {type(n_threads).__name__}")
    n = int(n_threads)
    return n if n > 0 else 0
