"""SimpleImputer mirroring scikit-learn's (numeric columns, NaN as the missing marker)."""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import InputError
from . import _engine as eng
from ._common import NativeTransformer
from ._numeric import merge_moments, merge_sketches, moments_acc, reject_inf, sketches
from ._sketch import medians_many

_STRATEGIES = ("mean", "median", "most_frequent", "constant")


class SimpleImputer(NativeTransformer):
    """Replace NaN with a per-column statistic, as sklearn's SimpleImputer.

    Strategies ``mean``, ``median`` (``np.ma.median``: the mean of the two middle values),
    ``most_frequent`` (the smallest among ties) and ``constant``. Columns without any
    observed value are dropped in ``transform`` (with sklearn's warning) unless
    ``keep_empty_features``. ``add_indicator`` appends a 0/1 column per feature that had
    missing values in ``fit``.

    Mergeable fitting: ``partial_fit``/``merge`` are exact for ``mean``, ``most_frequent``
    and ``constant``; ``median`` uses a :class:`~forgeline.transforms.QuantileSketch` per
    column (exact up to ``sketch_exact_limit`` values, then within its stated rank error).

    Parameters
    ----------
    missing_values : float
        Only NaN is supported.
    strategy : {"mean", "median", "most_frequent", "constant"}
    fill_value : float, optional
        Value for ``strategy="constant"`` (default 0).
    copy : bool
        Accepted for sklearn compatibility.
    add_indicator : bool
    keep_empty_features : bool
    sketch_k, sketch_exact_limit : int
    n_threads : int or None
    """

    _state = ("statistics_", "_indicator_features")

    def __init__(self, *, missing_values=np.nan, strategy="mean", fill_value=None, copy=True,
                 add_indicator=False, keep_empty_features=False, sketch_k=4096,
                 sketch_exact_limit=100_000, n_threads=None):
        self.missing_values = missing_values
        self.strategy = strategy
        self.fill_value = fill_value
        self.copy = copy
        self.add_indicator = add_indicator
        self.keep_empty_features = keep_empty_features
        self.sketch_k = sketch_k
        self.sketch_exact_limit = sketch_exact_limit
        self.n_threads = n_threads

    def _check_params(self):
        mv = self.missing_values
        if not (isinstance(mv, float) and np.isnan(mv)) and mv is not None and mv is not pd_na():
            raise InputError("forgeline's SimpleImputer supports missing_values=np.nan only, "
                             f"got {mv!r}")
        if self.strategy not in _STRATEGIES:
            raise InputError(f"strategy must be one of {_STRATEGIES}, got {self.strategy!r}")
        if self.fill_value is not None and not isinstance(self.fill_value, (int, float, np.number)):
            raise InputError("fill_value must be numeric for numeric data, got "
                             f"{self.fill_value!r}")

    def _fit_deferred_ok(self, n_rows):
        return self.strategy != "most_frequent"  # the mode reads the column values

    def _fit_frame(self, frame, y):
        self._check_params()
        cols = self._float_cols(frame)
        stat = None
        if self.strategy == "median":  # one native pass for the counts and the medians
            m, stat = eng.moments_medians(cols, self._threads)
            m["rows"] = frame.n_rows
        else:
            m = moments_acc(cols, frame.n_rows, self._threads, self._pairwise_sums,
                            sums=self.strategy == "mean")
        reject_inf(self, m, frame.names)
        if self.strategy == "most_frequent":
            stat = self._mode(cols)[0]
        # exact fits of median / most_frequent keep no state: partial_fit keeps sketches
        self._acc = None if self.strategy in ("median", "most_frequent") else {"m": m}
        self._set(m, stat)

    def _mode(self, cols):
        from .._native import core
        return core._tf_mode([np.ascontiguousarray(c) for c in cols], self._threads)

    def _set(self, m, stat):
        count = m["count"]
        if self.strategy == "mean":
            with np.errstate(invalid="ignore", divide="ignore"):
                stat = m["sum"] / count
        elif self.strategy == "constant":
            fill = 0.0 if self.fill_value is None else float(self.fill_value)
            stat = np.full(count.shape, fill)
        stat = np.array(stat, dtype=np.float64)
        empty = count == 0
        stat[empty] = 0.0 if self.keep_empty_features else np.nan
        self.statistics_ = stat
        self._indicator_features = np.flatnonzero(m["n_nan"] > 0).astype(np.int64)

    # mergeable -------------------------------------------------------------------
    def _accumulate(self, frame, y):
        self._check_params()
        cols = self._float_cols(frame)
        m = moments_acc(cols, frame.n_rows, self._threads, self._pairwise_sums,
                        sums=self.strategy == "mean")
        reject_inf(self, m, frame.names)
        acc = {"m": m}
        if self.strategy == "median":
            acc["sk"] = sketches(cols, self.sketch_k, self.sketch_exact_limit)
        elif self.strategy == "most_frequent":
            acc["vc"] = [_value_counts(c) for c in cols]
        return acc

    @staticmethod
    def _merge_acc(a, b):
        out = {"m": merge_moments(a["m"], b["m"])}
        if "sk" in a:
            out["sk"] = merge_sketches(a["sk"], b["sk"])
        if "vc" in a:
            out["vc"] = [_merge_counts(x, y) for x, y in zip(a["vc"], b["vc"])]
        return out

    def _finalize(self, acc):
        stat = None
        if self.strategy == "median":
            stat = medians_many(acc["sk"], self._threads)
        elif self.strategy == "most_frequent":
            stat = np.array([v[np.argmax(c)] if c.size else np.nan for v, c in acc["vc"]])
        self._set(acc["m"], stat)

    # transform -------------------------------------------------------------------
    def _valid(self):
        if self.keep_empty_features:
            return np.arange(self.statistics_.size)
        return np.flatnonzero(~np.isnan(self.statistics_))

    def _programs(self, ups, frame=None):
        valid = self._valid()
        if valid.size < self.statistics_.size:
            bad = np.flatnonzero(np.isnan(self.statistics_))
            names = self._input_names()
            warnings.warn(f"Skipping features without any observed values: "
                          f"{np.asarray(names, dtype=object)[bad]}. At least one non-missing "
                          f"value is needed for imputation with strategy='{self.strategy}'.",
                          UserWarning, stacklevel=3)
        out = [ups[j].then(eng.Op(eng.OP_CHECK_FINITE), eng.Op(eng.OP_IMPUTE, float(self.statistics_[j])))
               for j in valid]
        if self.add_indicator:
            out += [ups[j].then(eng.Op(eng.OP_ISNAN)) for j in self._indicator_features]
        return out

    def _names_out(self, names):
        out = [names[j] for j in self._valid()]
        if self.add_indicator:
            out += [f"missingindicator_{names[j]}" for j in self._indicator_features]
        return out

    def _required_state(self):
        return ("statistics_", "_indicator_features")

    @classmethod
    def from_sklearn(cls, fitted):
        """Build the equivalent fitted forgeline SimpleImputer from sklearn's (numeric)."""
        from .scalers import _copy_fitted
        obj = cls(strategy=fitted.strategy if isinstance(fitted.strategy, str) else "mean",
                  fill_value=fitted.fill_value, add_indicator=fitted.add_indicator,
                  keep_empty_features=fitted.keep_empty_features)
        obj = _copy_fitted(obj, fitted, ())
        obj.statistics_ = np.asarray(fitted.statistics_, dtype=np.float64)
        ind = getattr(fitted, "indicator_", None)
        obj._indicator_features = (np.asarray(ind.features_, dtype=np.int64) if ind is not None
                                   else np.zeros(0, dtype=np.int64))
        return obj


def pd_na():
    try:
        import pandas as pd
        return pd.NA
    except ImportError:  # pragma: no cover
        return object()


def _value_counts(col: np.ndarray):
    v = col[~np.isnan(col)]
    vals, counts = np.unique(v, return_counts=True)
    return vals, counts


def _merge_counts(a, b):
    vals = np.concatenate([a[0], b[0]])
    counts = np.concatenate([a[1], b[1]])
    uniq, inv = np.unique(vals, return_inverse=True)
    return uniq, np.bincount(inv, weights=counts, minlength=uniq.size).astype(np.int64)
