"""Scalers mirroring scikit-learn's: StandardScaler, MinMaxScaler, MaxAbsScaler, RobustScaler."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from . import _engine as eng
from ._common import NativeTransformer
from ._numeric import (handle_zeros_in_scale, is_constant_feature, merge_moments, merge_sketches,
                       moments_acc, reject_inf, sketches)

class _MomentScaler(NativeTransformer):
    """Scalers fitted from per-column moments (count, sums, min/max, |max|): one mergeable
    accumulator for StandardScaler, MinMaxScaler and MaxAbsScaler."""

    def _fit_deferred_ok(self, n_rows):
        return True

    def _fit_frame(self, frame, y):
        self._acc = self._accumulate(frame, y)
        self._finalize(self._acc)

    def _accumulate(self, frame, y):
        m = moments_acc(self._float_cols(frame), frame.n_rows, self._threads, self._pairwise_sums)
        reject_inf(self, m, frame.names)
        return m

    _merge_acc = staticmethod(merge_moments)


class StandardScaler(_MomentScaler):
    """Standardise features: ``(x - mean_) / scale_``, as sklearn's StandardScaler.

    NaN is ignored in fit and kept in transform; infinity is rejected
    (:class:`~forgeline.DataError`). Fitting is mergeable: ``partial_fit`` and ``merge``
    combine counts, sums and squared deviations with Chan et al.'s pairwise update, so they
    match one ``fit`` up to rounding (rtol 1e-12).

    Parameters
    ----------
    copy : bool
        Accepted for sklearn compatibility (forgeline never modifies its input).
    with_mean, with_std : bool
        Centre / scale the data.
    n_threads : int or None
        Native threads (None = all cores).
    """

    _state = ("mean_", "var_", "scale_", "n_samples_seen_")

    def __init__(self, *, copy=True, with_mean=True, with_std=True, n_threads=None):
        self.copy = copy
        self.with_mean = with_mean
        self.with_std = with_std
        self.n_threads = n_threads

    def _finalize(self, m):
        n = m["count"]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = m["sum"] / n
            var = m["m2"] / n
        seen = n.astype(np.int64)
        self.n_samples_seen_ = int(seen[0]) if seen.min() == seen.max() else seen
        if not self.with_mean and not self.with_std:
            self.mean_ = None
            self.var_ = None
            self.scale_ = None
            return
        self.mean_ = mean
        if self.with_std:
            self.var_ = var
            self.scale_ = handle_zeros_in_scale(np.sqrt(var),
                                                constant_mask=is_constant_feature(var, mean, n))
        else:
            self.var_ = None
            self.scale_ = None

    def _programs(self, ups, frame=None):
        out = []
        for j, p in enumerate(ups):
            ops = [eng.Op(eng.OP_CHECK_FINITE)]
            if self.with_mean:
                ops.append(eng.Op(eng.OP_SUB, float(self.mean_[j])))
            if self.with_std:
                ops.append(eng.Op(eng.OP_DIV, float(self.scale_[j])))
            out.append(p.then(*ops))
        return out

    def _required_state(self):
        return ("n_samples_seen_",)

    @classmethod
    def from_sklearn(cls, fitted):
        """Build the equivalent fitted forgeline StandardScaler from sklearn's."""
        obj = _copy_fitted(cls(with_mean=fitted.with_mean, with_std=fitted.with_std), fitted,
                           ("mean_", "var_", "scale_", "n_samples_seen_"))
        return obj


class MinMaxScaler(_MomentScaler):
    """Scale each feature to ``feature_range``: ``x * scale_ + min_``, as sklearn's.

    Parameters
    ----------
    feature_range : tuple (min, max)
    copy : bool
        Accepted for sklearn compatibility.
    clip : bool
        Clip transformed values to ``feature_range``.
    n_threads : int or None
    """

    _state = ("min_", "scale_", "data_min_", "data_max_", "data_range_", "n_samples_seen_")

    def __init__(self, feature_range=(0, 1), *, copy=True, clip=False, n_threads=None):
        self.feature_range = feature_range
        self.copy = copy
        self.clip = clip
        self.n_threads = n_threads

    def _fit_frame(self, frame, y):
        lo, hi = self.feature_range
        if lo >= hi:
            raise InputError("Minimum of desired feature range must be smaller than maximum. "
                             f"Got {tuple(self.feature_range)}.")
        self._acc = self._accumulate(frame, y)
        self._finalize(self._acc)

    def _finalize(self, m):
        lo, hi = (np.float64(v) for v in self.feature_range)
        data_min, data_max = m["min"], m["max"]
        data_range = data_max - data_min
        self.scale_ = (hi - lo) / handle_zeros_in_scale(data_range)
        self.min_ = lo - data_min * self.scale_
        self.data_min_ = data_min
        self.data_max_ = data_max
        self.data_range_ = data_range
        self.n_samples_seen_ = int(m["rows"])

    def _programs(self, ups, frame=None):
        lo, hi = self.feature_range
        out = []
        for j, p in enumerate(ups):
            ops = [eng.Op(eng.OP_CHECK_FINITE), eng.Op(eng.OP_MUL, float(self.scale_[j])),
                   eng.Op(eng.OP_ADD, float(self.min_[j]))]
            if self.clip:
                ops.append(eng.Op(eng.OP_CLIP, float(lo), float(hi)))
            out.append(p.then(*ops))
        return out

    def _required_state(self):
        return ("min_", "scale_")

    @classmethod
    def from_sklearn(cls, fitted):
        """Build the equivalent fitted forgeline MinMaxScaler from sklearn's."""
        return _copy_fitted(cls(feature_range=tuple(fitted.feature_range), clip=fitted.clip),
                            fitted, cls._state)


class MaxAbsScaler(_MomentScaler):
    """Scale each feature by its maximum absolute value, as sklearn's MaxAbsScaler."""

    _state = ("max_abs_", "scale_", "n_samples_seen_")

    def __init__(self, *, copy=True, n_threads=None):
        self.copy = copy
        self.n_threads = n_threads

    def _finalize(self, m):
        self.max_abs_ = m["absmax"].copy()
        self.scale_ = handle_zeros_in_scale(self.max_abs_)
        self.n_samples_seen_ = int(m["rows"])

    def _programs(self, ups, frame=None):
        return [p.then(eng.Op(eng.OP_CHECK_FINITE), eng.Op(eng.OP_DIV, float(self.scale_[j])))
                for j, p in enumerate(ups)]

    def _required_state(self):
        return ("scale_",)

    @classmethod
    def from_sklearn(cls, fitted):
        """Build the equivalent fitted forgeline MaxAbsScaler from sklearn's."""
        return _copy_fitted(cls(), fitted, cls._state)


class RobustScaler(NativeTransformer):
    """Scale with statistics robust to outliers: ``(x - center_) / scale_``, as sklearn's.

    ``center_`` is ``np.nanmedian`` and ``scale_`` the ``quantile_range`` of
    ``np.nanpercentile`` (linear interpolation), computed exactly in ``fit``. With
    ``partial_fit``/``merge`` the quantiles come from a :class:`QuantileSketch` per column:
    exact while a column holds at most ``sketch_exact_limit`` values, afterwards within the
    rank-error bound ``eps * n``, ``eps = (floor(log2(n/(2k))) + 1)/(2k)``, ``k = sketch_k``.

    Parameters
    ----------
    with_centering, with_scaling : bool
    quantile_range : tuple (q_min, q_max)
    copy : bool
    unit_variance : bool
    sketch_k, sketch_exact_limit : int
        Sketch size for mergeable fitting (see above).
    n_threads : int or None
    """

    _state = ("center_", "scale_")

    def __init__(self, *, with_centering=True, with_scaling=True, quantile_range=(25.0, 75.0),
                 copy=True, unit_variance=False, sketch_k=4096, sketch_exact_limit=100_000,
                 n_threads=None):
        self.with_centering = with_centering
        self.with_scaling = with_scaling
        self.quantile_range = quantile_range
        self.copy = copy
        self.unit_variance = unit_variance
        self.sketch_k = sketch_k
        self.sketch_exact_limit = sketch_exact_limit
        self.n_threads = n_threads

    def _check_range(self):
        q_min, q_max = self.quantile_range
        if not 0 <= q_min <= q_max <= 100:
            raise InputError(f"Invalid quantile range: {tuple(self.quantile_range)}")
        return q_min, q_max

    def _fit_deferred_ok(self, n_rows):
        return True

    def _fit_frame(self, frame, y):
        self._check_range()
        cols = self._float_cols(frame)
        m = moments_acc(cols, frame.n_rows, self._threads, self._pairwise_sums)
        reject_inf(self, m, frame.names)
        center = eng.medians(cols, m["count"], self._threads) if self.with_centering else None
        qs = None
        if self.with_scaling:
            q = np.asarray(self.quantile_range, dtype=np.float64) / 100
            qs = eng.quantiles(cols, q, "linear", m["count"], self._threads)
        self._acc = None  # exact fit; partial_fit starts its own sketches
        self._set(center, qs)

    def _set(self, center, qs):
        q_min, q_max = self._check_range()
        self.center_ = center
        if self.with_scaling:
            scale = handle_zeros_in_scale(qs[:, 1] - qs[:, 0])
            if self.unit_variance:
                from scipy import stats
                scale = scale / (stats.norm.ppf(q_max / 100.0) - stats.norm.ppf(q_min / 100.0))
            self.scale_ = scale
        else:
            self.scale_ = None

    def _accumulate(self, frame, y):
        cols = self._float_cols(frame)
        m = moments_acc(cols, frame.n_rows, self._threads, self._pairwise_sums)
        reject_inf(self, m, frame.names)
        return sketches(cols, self.sketch_k, self.sketch_exact_limit)

    _merge_acc = staticmethod(merge_sketches)

    def _finalize(self, sk):
        center = np.array([s.median() for s in sk]) if self.with_centering else None
        q = np.asarray(self.quantile_range, dtype=np.float64) / 100
        qs = np.stack([s.quantiles(q) for s in sk]) if self.with_scaling else None
        self._set(center, qs)

    def _programs(self, ups, frame=None):
        out = []
        for j, p in enumerate(ups):
            ops = [eng.Op(eng.OP_CHECK_FINITE)]
            if self.with_centering:
                ops.append(eng.Op(eng.OP_SUB, float(self.center_[j])))
            if self.with_scaling:
                ops.append(eng.Op(eng.OP_DIV, float(self.scale_[j])))
            out.append(p.then(*ops))
        return out

    @classmethod
    def from_sklearn(cls, fitted):
        """Build the equivalent fitted forgeline RobustScaler from sklearn's."""
        return _copy_fitted(cls(with_centering=fitted.with_centering,
                                with_scaling=fitted.with_scaling,
                                quantile_range=tuple(fitted.quantile_range),
                                unit_variance=fitted.unit_variance), fitted, cls._state)


def _copy_fitted(obj, fitted, attrs):
    """Copy sklearn's fitted attributes (and input schema) onto a forgeline transformer."""
    from ._base import check_is_fitted as _chk
    if not hasattr(fitted, "n_features_in_"):
        _chk(fitted)
    obj.n_features_in_ = int(fitted.n_features_in_)
    if hasattr(fitted, "feature_names_in_"):
        obj.feature_names_in_ = np.asarray(fitted.feature_names_in_, dtype=object)
    for a in attrs:
        if hasattr(fitted, a):
            v = getattr(fitted, a)
            setattr(obj, a, np.array(v, dtype=np.float64) if isinstance(v, np.ndarray)
                    and v.dtype.kind == "f" else v)
    obj._acc = None
    return obj
