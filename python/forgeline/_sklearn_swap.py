"""The seam both tuning speed-ups use to reach inside a scikit-learn fit
(``_tune_logistic``: ``LinearModelLoss`` in ``sklearn.linear_model._logistic``;
``_tune_hist``: ``HistogramBuilder`` in the HGB ``grower``).

A name in a private sklearn module is replaced while at least one fit that wants the
replacement runs, reference-counted across threads, and sklearn's own object is put back
when the last one ends. The replacement decides per call (thread-local state in its module)
whether to act, so other threads' fits keep sklearn's behaviour. Each speed-up also checks
its first results against sklearn's bit for bit and turns itself off, with one warning, on a
difference.
"""

from __future__ import annotations

import contextlib
import threading
import warnings


class ModuleSwap:
    """``module.<name>`` replaced by ``make(original)`` inside :meth:`active` blocks.

    ``original`` holds sklearn's object from the first swap on (also after the last block
    ends, for callers that fall back to it)."""

    def __init__(self, load_module, name: str, make):
        self._load = load_module
        self._name = name
        self._make = make
        self._lock = threading.Lock()
        self._users = 0
        self.original = None

    @contextlib.contextmanager
    def active(self):
        module = self._load()
        with self._lock:
            if self._users == 0:
                self.original = getattr(module, self._name)
                setattr(module, self._name, self._make(self.original))
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0:
                    setattr(module, self._name, self.original)


def turn_off(disabled: list, what: str, why: str, instead: str) -> None:
    """Record the self-check's finding in ``disabled`` (the speed-up's off switch for the
    process) and warn once."""
    if not disabled:
        disabled.append(why)
        warnings.warn(f"forgeline.tune: {what} are off ({why}); {instead}", RuntimeWarning,
                      stacklevel=4)
