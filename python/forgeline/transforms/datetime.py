"""DateTimeFeatures: calendar parts of datetime columns, optionally as cyclic sin/cos."""

from __future__ import annotations

from .._frame import DATETIME
from ..errors import InputError
from . import _engine as eng
from ._common import StatelessTransformer

_PARTS = {"year": 0, "month": 1, "day": 2, "weekday": 3, "hour": 4, "minute": 5, "second": 6,
          "dayofyear": 7}
_PERIOD = {"month": 12, "day": 31, "weekday": 7, "hour": 24, "minute": 60, "second": 60,
           "dayofyear": 366}


class DateTimeFeatures(StatelessTransformer):
    """Extract calendar parts (UTC) from datetime columns, natively.

    Parts are pandas' ``.dt`` values: ``year``, ``month`` (1-12), ``day`` (1-31),
    ``weekday`` (Monday=0), ``hour``, ``minute``, ``second``, ``dayofyear`` (1-366).
    With ``cyclic=True`` every periodic part is replaced by ``sin(2*pi*v/period)`` and
    ``cos(2*pi*v/period)`` (periods 12, 31, 7, 24, 60, 60, 366). Missing times (NaT) give NaN.
    Time-zone aware inputs are converted to UTC first.

    Parameters
    ----------
    features : sequence of str
    cyclic : bool
    n_threads : int or None
    """

    _input_kind = DATETIME
    _state = ()

    def __init__(self, features=("year", "month", "day", "weekday", "hour"), *, cyclic=False,
                 n_threads=None):
        self.features = features
        self.cyclic = cyclic
        self.n_threads = n_threads

    def _check(self):
        feats = list(self.features)
        bad = [f for f in feats if f not in _PARTS]
        if bad or not feats:
            raise InputError(f"unknown datetime features {bad}; choose from {sorted(_PARTS)}")
        return feats

    def _check_params(self):
        self._check()

    def _outputs(self):
        out = []
        for f in self._check():
            if self.cyclic and f in _PERIOD:
                out += [(f, "sin"), (f, "cos")]
            else:
                out.append((f, None))
        return out

    def _programs(self, ups, frame=None):
        progs = []
        for p in ups:
            for f, trig in self._outputs():
                ops = [eng.Op(eng.OP_DATEPART, float(_PARTS[f]))]
                if trig == "sin":
                    ops.append(eng.Op(eng.OP_SIN, float(_PERIOD[f])))
                elif trig == "cos":
                    ops.append(eng.Op(eng.OP_COS, float(_PERIOD[f])))
                progs.append(p.then(*ops))
        return progs

    def _names_out(self, names):
        return [f"{n}_{f}" + (f"_{t}" if t else "") for n in names for f, t in self._outputs()]

    def __sklearn_tags__(self):  # pragma: no cover - sklearn cannot generate datetime data
        return super().__sklearn_tags__()
