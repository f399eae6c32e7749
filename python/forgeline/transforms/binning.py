"""KBinsDiscretizer mirroring scikit-learn's (quantile, uniform and k-means strategies)."""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import InputError
from . import _engine as eng
from ._common import NativeTransformer
from ._numeric import merge_moments, merge_sketches, moments_acc, sketches

_ENCODE = ("onehot", "onehot-dense", "ordinal")
_STRATEGY = ("uniform", "quantile", "kmeans")


class KBinsDiscretizer(NativeTransformer):
    """Bin continuous data into intervals, as sklearn's KBinsDiscretizer.

    Bin edges follow sklearn exactly: ``quantile`` uses ``np.percentile`` with
    ``quantile_method`` (sklearn 1.9's default ``"averaged_inverted_cdf"``, or
    ``"linear"``), ``uniform`` uses ``np.linspace`` and ``kmeans`` runs 1-D Lloyd iterations
    from uniform initial centers like ``KMeans(init=..., n_init=1)``; bins narrower than
    1e-8 are removed and constant columns get one bin, with sklearn's warnings.
    ``subsample`` draws rows with replacement exactly as sklearn's ``resample`` does.

    ``encode="onehot"`` returns a scipy CSR matrix (as sklearn); ``"onehot-dense"`` and
    ``"ordinal"`` return dense arrays. NaN and infinity are rejected.

    Mergeable fitting (``partial_fit``/``merge``, quantile and uniform strategies): min/max
    are exact; quantiles come from a :class:`~forgeline.transforms.QuantileSketch` per column
    (exact up to ``sketch_exact_limit`` values, then within rank error ``eps * n`` with
    ``eps = (floor(log2(n/(2k))) + 1)/(2k)``). ``subsample`` is ignored there.

    Parameters
    ----------
    n_bins : int or array-like of int
    encode : {"onehot", "onehot-dense", "ordinal"}
    strategy : {"quantile", "uniform", "kmeans"}
    quantile_method : {"averaged_inverted_cdf", "linear"}
    dtype : None, np.float64
    subsample : int or None
    random_state : int or None
    sketch_k, sketch_exact_limit : int
    n_threads : int or None
    """

    _allow_nan = False
    _state = ("bin_edges_", "n_bins_")

    def __init__(self, n_bins=5, *, encode="onehot", strategy="quantile",
                 quantile_method="averaged_inverted_cdf", dtype=None, subsample=200_000,
                 random_state=None, sketch_k=4096, sketch_exact_limit=100_000, n_threads=None):
        self.n_bins = n_bins
        self.encode = encode
        self.strategy = strategy
        self.quantile_method = quantile_method
        self.dtype = dtype
        self.subsample = subsample
        self.random_state = random_state
        self.sketch_k = sketch_k
        self.sketch_exact_limit = sketch_exact_limit
        self.n_threads = n_threads

    def _check_params(self, n_features):
        if self.encode not in _ENCODE:
            raise InputError(f"encode must be one of {_ENCODE}, got {self.encode!r}")
        if self.strategy not in _STRATEGY:
            raise InputError(f"strategy must be one of {_STRATEGY}, got {self.strategy!r}")
        if self.quantile_method not in ("averaged_inverted_cdf", "linear"):
            raise InputError("forgeline supports quantile_method 'averaged_inverted_cdf' or "
                             f"'linear', got {self.quantile_method!r}")
        if self.dtype not in (None, np.float64, "float64"):
            raise InputError(f"dtype must be None or float64, got {self.dtype!r}")
        nb = self.n_bins
        if isinstance(nb, (int, np.integer)) and not isinstance(nb, bool):
            if nb < 2:
                raise InputError(f"n_bins must be >= 2, got {nb}")
            return np.full(n_features, int(nb), dtype=np.int64)
        arr = np.asarray(nb)
        if arr.ndim != 1 or arr.shape[0] != n_features:
            raise InputError("n_bins must be a scalar or array of shape (n_features,).")
        bad = np.flatnonzero((arr < 2) | (arr != arr.astype(np.int64)))
        if bad.size:
            raise InputError(f"KBinsDiscretizer received an invalid number of bins at indices "
                             f"{', '.join(map(str, bad))}. Number of bins must be at least 2, "
                             "and must be an int.")
        return arr.astype(np.int64)

    def _check_values(self, m, names):
        from ..errors import DataError
        bad = np.flatnonzero((m["n_nan"] + m["n_posinf"] + m["n_neginf"]) > 0)
        if bad.size:
            name = names[int(bad[0])]
            raise DataError(f"Input contains NaN or infinity: column {name!r}; "
                            "KBinsDiscretizer does not allow them", column=name)

    def _fit_deferred_ok(self, n_rows):
        # kmeans and subsampling index the column values themselves
        return self.strategy != "kmeans" and (self.subsample is None or n_rows <= self.subsample)

    def _fit_frame(self, frame, y):
        n_bins = self._check_params(len(frame.names))
        cols = self._float_cols(frame)
        if self.subsample is not None and frame.n_rows > self.subsample:
            # sklearn.utils.resample(replace=True): RandomState(random_state).randint(0, n, size)
            rs = self.random_state
            rng = rs if isinstance(rs, np.random.RandomState) else np.random.RandomState(rs)
            idx = rng.randint(0, frame.n_rows, size=(self.subsample,))
            cols = [c[idx] for c in cols]
        m = eng.moments(cols, self._threads)
        self._check_values(m, frame.names)
        edges = [None] * len(cols)
        if self.strategy == "quantile":
            groups: dict[int, list[int]] = {}
            for j, nb in enumerate(n_bins):
                groups.setdefault(int(nb), []).append(j)
            for nb, js in groups.items():
                q = np.linspace(0, 100, nb + 1) / 100
                qs = eng.quantiles(eng.take(cols, js), q, self.quantile_method,
                                   m["count"][js], self._threads)
                for i, j in enumerate(js):
                    edges[j] = qs[i]
        elif self.strategy == "kmeans":
            from .._native import core
            for j, c in enumerate(cols):
                lo, hi = m["min"][j], m["max"][j]
                if lo == hi:
                    continue
                uni = np.linspace(lo, hi, n_bins[j] + 1)
                init = (uni[1:] + uni[:-1]) * 0.5
                tol = float(np.var(c)) * 1e-4
                centers, _ = core._tf_kmeans_1d(c, init, 300, tol)
                centers = np.sort(centers)
                edges[j] = np.r_[lo, (centers[1:] + centers[:-1]) * 0.5, hi]
        self._acc = None
        self._set_edges(m["min"], m["max"], n_bins, edges)

    def _set_edges(self, mins, maxs, n_bins, edges):
        n_bins = np.array(n_bins, dtype=np.int64)
        out = np.zeros(len(n_bins), dtype=object)
        for j in range(len(n_bins)):
            if mins[j] == maxs[j]:
                warnings.warn(f"Feature {j} is constant and will be replaced with 0.",
                              UserWarning, stacklevel=4)
                n_bins[j] = 1
                out[j] = np.array([-np.inf, np.inf])
                continue
            if self.strategy == "uniform":
                e = np.linspace(mins[j], maxs[j], n_bins[j] + 1)
            else:
                e = np.asarray(edges[j], dtype=np.float64)
                mask = np.ediff1d(e, to_begin=np.inf) > 1e-8
                e = e[mask]
                if len(e) - 1 != n_bins[j]:
                    warnings.warn(f"Bins whose width are too small (i.e., <= 1e-8) in feature "
                                  f"{j} are removed. Consider decreasing the number of bins.",
                                  UserWarning, stacklevel=4)
                    n_bins[j] = len(e) - 1
            out[j] = e
        self.bin_edges_ = out
        self.n_bins_ = n_bins

    # mergeable ---------------------------------------------------------------------
    def _accumulate(self, frame, y):
        if self.strategy == "kmeans":
            raise InputError("KBinsDiscretizer(strategy='kmeans') cannot be fitted "
                             "incrementally; use fit")
        self._check_params(len(frame.names))
        cols = self._float_cols(frame)
        m = moments_acc(cols, frame.n_rows, self._threads, self._pairwise_sums)
        self._check_values(m, frame.names)
        acc = {"m": m}
        if self.strategy == "quantile":
            acc["sk"] = sketches(cols, self.sketch_k, self.sketch_exact_limit)
        return acc

    @staticmethod
    def _merge_acc(a, b):
        out = {"m": merge_moments(a["m"], b["m"])}
        if "sk" in a:
            out["sk"] = merge_sketches(a["sk"], b["sk"])
        return out

    def _finalize(self, acc):
        n_bins = self._check_params(len(acc["m"]["count"]))
        edges = [None] * len(n_bins)
        if self.strategy == "quantile":
            for j, s in enumerate(acc["sk"]):
                q = np.linspace(0, 100, n_bins[j] + 1) / 100
                edges[j] = s.quantiles(q, self.quantile_method)
        self._set_edges(acc["m"]["min"], acc["m"]["max"], n_bins, edges)

    # transform ---------------------------------------------------------------------
    def _programs(self, ups, frame=None):
        out = []
        for j, p in enumerate(ups):
            inner = np.asarray(self.bin_edges_[j], dtype=np.float64)[1:-1]
            q = p.then(eng.Op(eng.OP_CHECK_FINITE), eng.Op(eng.OP_CHECK_NAN),
                       eng.Op(eng.OP_BIN, table=inner))
            if self.encode == "ordinal":
                out.append(q)
            else:
                out.append(q.emitting(eng.EMIT_ONEHOT, int(self.n_bins_[j])))
        return out

    @property
    def _sparse_out(self):
        return self.encode == "onehot"

    def _fit_nnz(self, n_rows):
        # every row falls in exactly one bin of every feature
        return n_rows * len(self.n_bins_) if self.encode != "ordinal" else \
            super()._fit_nnz(n_rows)

    def _names_out(self, names):
        if self.encode == "ordinal":
            return list(names)
        return [f"{names[j]}_{float(k)}" for j in range(len(names)) for k in range(int(self.n_bins_[j]))]

    def _required_state(self):
        return ("bin_edges_", "n_bins_")

    @classmethod
    def from_sklearn(cls, fitted):
        """Build the equivalent fitted forgeline KBinsDiscretizer from sklearn's."""
        from .scalers import _copy_fitted
        obj = cls(n_bins=fitted.n_bins, encode=fitted.encode, strategy=fitted.strategy,
                  quantile_method=fitted.quantile_method)
        obj = _copy_fitted(obj, fitted, ())
        edges = np.zeros(len(fitted.bin_edges_), dtype=object)
        for j, e in enumerate(fitted.bin_edges_):
            edges[j] = np.asarray(e, dtype=np.float64)
        obj.bin_edges_ = edges
        obj.n_bins_ = np.asarray(fitted.n_bins_, dtype=np.int64)
        return obj
