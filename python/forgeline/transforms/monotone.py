"""Monotone maps: Log1p, Winsorizer and PowerTransformer (Yeo-Johnson)."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from . import _engine as eng
from ._common import NativeTransformer, StatelessTransformer
from ._numeric import (handle_zeros_in_scale, is_constant_feature, merge_moments, merge_sketches,
                       moments_acc, reject_inf, sketches)


class Log1p(StatelessTransformer):
    """``log1p(x)`` per column (``FunctionTransformer(np.log1p)`` in sklearn terms).

    NaN and infinity pass through as numpy's ``log1p`` maps them; values below -1 give NaN.

    Parameters
    ----------
    n_threads : int or None
    """

    _allow_inf = True

    def __init__(self, *, n_threads=None):
        self.n_threads = n_threads

    def _programs(self, ups, frame=None):
        return [p.then(eng.Op(eng.OP_LOG1P)) for p in ups]


class Winsorizer(NativeTransformer):
    """Clip each column to fitted quantiles (``np.nanpercentile``, linear).

    ``lower_`` / ``upper_`` are the ``quantile_range`` percentiles of the fitted data,
    exact in ``fit``. ``partial_fit``/``merge`` use a
    :class:`~forgeline.transforms.QuantileSketch` per column: exact while a column holds at most
    ``sketch_exact_limit`` values, then within rank error ``eps * n`` with
    ``eps = (floor(log2(n/(2k))) + 1)/(2k)``.

    Parameters
    ----------
    quantile_range : tuple (q_min, q_max), percentages
    sketch_k, sketch_exact_limit : int
    n_threads : int or None
    """

    _state = ("lower_", "upper_")

    def __init__(self, *, quantile_range=(1.0, 99.0), sketch_k=4096, sketch_exact_limit=100_000,
                 n_threads=None):
        self.quantile_range = quantile_range
        self.sketch_k = sketch_k
        self.sketch_exact_limit = sketch_exact_limit
        self.n_threads = n_threads

    def _q(self):
        lo, hi = self.quantile_range
        if not 0 <= lo <= hi <= 100:
            raise InputError(f"Invalid quantile range: {tuple(self.quantile_range)}")
        return np.asarray([lo, hi], dtype=np.float64) / 100

    def _fit_deferred_ok(self, n_rows):
        return True

    def _fit_frame(self, frame, y):
        cols = self._float_cols(frame)
        m = moments_acc(cols, frame.n_rows, self._threads, self._pairwise_sums)
        reject_inf(self, m, frame.names)
        qs = eng.quantiles(cols, self._q(), "linear", m["count"], self._threads)
        self.lower_, self.upper_ = qs[:, 0].copy(), qs[:, 1].copy()
        self._acc = None

    def _accumulate(self, frame, y):
        cols = self._float_cols(frame)
        reject_inf(self, moments_acc(cols, frame.n_rows, self._threads, self._pairwise_sums), frame.names)
        return sketches(cols, self.sketch_k, self.sketch_exact_limit)

    _merge_acc = staticmethod(merge_sketches)

    def _finalize(self, sk):
        qs = np.stack([s.quantiles(self._q()) for s in sk])
        self.lower_, self.upper_ = qs[:, 0].copy(), qs[:, 1].copy()

    def _programs(self, ups, frame=None):
        return [p.then(eng.Op(eng.OP_CHECK_FINITE),
                       eng.Op(eng.OP_CLIP, float(self.lower_[j]), float(self.upper_[j])))
                for j, p in enumerate(ups)]


class PowerTransformer(NativeTransformer):
    """Yeo-Johnson power transform, then optional standardisation, as sklearn's.

    ``lambdas_`` come from scipy's maximum-likelihood ``stats.yeojohnson`` (the function
    sklearn calls, so they are identical); constant columns get lambda 1. The transform and
    the standardisation run natively. Requires scipy for ``fit``.

    Parameters
    ----------
    method : {"yeo-johnson"}
    standardize : bool
    copy : bool
    n_threads : int or None
    """

    _state = ("lambdas_", "_mean", "_scale")

    def __init__(self, method="yeo-johnson", *, standardize=True, copy=True, n_threads=None):
        self.method = method
        self.standardize = standardize
        self.copy = copy
        self.n_threads = n_threads

    def _fit_frame(self, frame, y):
        if self.method != "yeo-johnson":
            raise InputError(f"forgeline's PowerTransformer supports method='yeo-johnson' only, "
                             f"got {self.method!r}")
        try:
            from scipy import stats
        except ImportError as exc:  # pragma: no cover
            raise InputError("PowerTransformer.fit needs scipy (pip install scipy)") from exc
        cols = self._float_cols(frame)
        m = moments_acc(cols, frame.n_rows, self._threads, self._pairwise_sums)
        reject_inf(self, m, frame.names)
        n = frame.n_rows
        lambdas = np.empty(len(cols))
        with np.errstate(invalid="ignore"):
            mean = np.where(m["n_nan"] > 0, np.nan, m["sum"] / n)
            var = np.where(m["n_nan"] > 0, np.nan, m["m2"] / n)
            const = is_constant_feature(var, mean, n)
            for j, c in enumerate(cols):
                if const[j]:
                    lambdas[j] = 1.0
                    continue
                lambdas[j] = stats.yeojohnson(c[~np.isnan(c)], lmbda=None)[1]
        self.lambdas_ = lambdas
        if self.standardize:
            sources = eng.Sources()
            ups = self._source_progs(frame, sources)
            yj = [p.then(eng.Op(eng.OP_YEOJOHNSON, float(lambdas[j]))) for j, p in enumerate(ups)]
            Xt, _ = eng.run(sources, yj, frame.n_rows, self._threads)
            mm = eng.moments(list(np.ascontiguousarray(Xt.T)), self._threads, self._pairwise_sums)
            with np.errstate(invalid="ignore", divide="ignore"):
                mu = mm["sum"] / mm["count"]
                v = mm["m2"] / mm["count"]
            self._mean = mu
            self._scale = handle_zeros_in_scale(np.sqrt(v), is_constant_feature(v, mu, mm["count"]))
        self._acc = None

    def _programs(self, ups, frame=None):
        out = []
        for j, p in enumerate(ups):
            ops = [eng.Op(eng.OP_CHECK_FINITE), eng.Op(eng.OP_YEOJOHNSON, float(self.lambdas_[j]))]
            if self.standardize:
                ops += [eng.Op(eng.OP_SUB, float(self._mean[j])), eng.Op(eng.OP_DIV, float(self._scale[j]))]
            out.append(p.then(*ops))
        return out

    @property
    def partial_fit(self):
        """Not available: the maximum-likelihood lambda needs all rows at once."""
        raise AttributeError("PowerTransformer cannot be fitted incrementally (the Yeo-Johnson "
                             "lambda is a maximum-likelihood fit over all rows); use fit")

    def _required_state(self):
        return ("lambdas_",)

    @classmethod
    def from_sklearn(cls, fitted):
        """Build the equivalent fitted forgeline PowerTransformer from sklearn's."""
        from .scalers import _copy_fitted
        if fitted.method != "yeo-johnson":
            raise InputError("only method='yeo-johnson' PowerTransformers can be converted")
        obj = _copy_fitted(cls(standardize=fitted.standardize), fitted, ())
        obj.lambdas_ = np.asarray(fitted.lambdas_, dtype=np.float64)
        if fitted.standardize:
            obj._mean = np.asarray(fitted._scaler.mean_, dtype=np.float64)
            obj._scale = np.asarray(fitted._scaler.scale_, dtype=np.float64)
        return obj
