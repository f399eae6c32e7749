"""Profile: a compact, mergeable summary of reference data for drift monitoring."""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping

import numpy as np

from .. import _frame
from .._native import core, resolve_threads
from ..errors import BundleError, DriftError
from . import _sketch

FORMAT_VERSION = 1
PREDICTION = "__prediction__"
TARGET = "__target__"
_NUMERIC_KINDS = (_frame.NUMERIC, _frame.DATETIME)
_CATEGORICAL_KINDS = (_frame.CATEGORICAL, _frame.BOOLEAN)


def quantile_edges(s: np.ndarray, n_bins: int) -> np.ndarray:
    """Interior histogram edges: distinct reference quantiles at k / n_bins (linear rule)."""
    n = s.shape[0]
    if n == 0:
        return np.empty(0)
    fin = s[np.isfinite(s)]
    if fin.size == 0:
        return np.empty(0)
    pos = np.linspace(0, 1, n_bins + 1)[1:-1] * (fin.size - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, fin.size - 1)
    e = fin[lo] + (fin[hi] - fin[lo]) * (pos - lo)
    return np.unique(e)


def hist_counts(s: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of the sorted array s in bins (-inf, e0), [e0, e1), ..., [e_last, inf]."""
    cut = np.searchsorted(s, edges, "left")
    return np.diff(np.concatenate([[0], cut, [s.shape[0]]])).astype(np.int64)


class NumericColumn:
    """Summary of one numeric (or datetime) column. Arrays are float64 / int64."""

    def __init__(self, kind, n_rows, n_missing, n_zero, n_inf, vmin, vmax, mean, m2, n_finite,
                 sample, sample_complete, sketch, edges, counts, hist_exact=True):
        self.kind = kind
        self.n_rows = int(n_rows)
        self.n_missing = int(n_missing)
        self.n_zero = int(n_zero)
        self.n_inf = int(n_inf)
        self.min = float(vmin)
        self.max = float(vmax)
        self.mean = float(mean)
        self.m2 = float(m2)
        self.n_finite = int(n_finite)
        self.sample = sample
        self.sample_complete = bool(sample_complete)
        self.sketch = sketch
        self.edges = edges
        self.counts = counts
        self.hist_exact = bool(hist_exact)

    @property
    def n_valid(self) -> int:
        return self.n_rows - self.n_missing

    @property
    def variance(self) -> float:
        """Sample variance (ddof=1) of the finite values."""
        return self.m2 / (self.n_finite - 1) if self.n_finite > 1 else math.nan

    @property
    def rank_error(self) -> float:
        return _sketch.rank_error(self.sketch, self.n_valid)

    @classmethod
    def from_sorted(cls, kind, s, stats_row, n_rows, sample_size, sketch_size, n_bins, seed):
        n = s.shape[0]
        if n <= sample_size:
            sample, complete = np.array(s, dtype=np.float64), True
        else:
            rng = np.random.default_rng(seed)
            idx = np.sort(rng.choice(n, size=sample_size, replace=False))
            sample, complete = s[idx].astype(np.float64), False
        edges = quantile_edges(s, n_bins)
        return cls(kind, n_rows, stats_row[1], stats_row[2], stats_row[3], stats_row[4],
                   stats_row[5], stats_row[6], stats_row[7], stats_row[8], sample, complete,
                   _sketch.from_sorted(s, sketch_size), edges, hist_counts(s, edges))

    def merge(self, other: NumericColumn, sample_size, sketch_size, n_bins, seed) -> NumericColumn:
        na, nb = self.n_finite, other.n_finite
        n = na + nb
        if n:
            delta = other.mean - self.mean
            mean = self.mean + delta * nb / n
            m2 = self.m2 + other.m2 + delta * delta * na * nb / n
        else:
            mean, m2 = 0.0, 0.0
        va, vb = self.n_valid, other.n_valid
        if self.sample_complete and other.sample_complete and va + vb <= sample_size:
            sample, complete = np.sort(np.concatenate([self.sample, other.sample])), True
        else:
            rng = np.random.default_rng(seed)
            ka = int(round(sample_size * va / max(va + vb, 1)))
            kb = sample_size - ka
            parts = []
            for smp, k in ((self.sample, ka), (other.sample, kb)):
                k = min(k, smp.size)
                parts.append(smp[np.sort(rng.choice(smp.size, size=k, replace=False))] if k else smp[:0])
            sample, complete = np.sort(np.concatenate(parts)), False
        sk = _sketch.merge(self.sketch, va, other.sketch, vb, sketch_size)
        if np.array_equal(self.edges, other.edges):
            edges, counts, exact = self.edges, self.counts + other.counts, self.hist_exact and other.hist_exact
        else:
            edges = np.unique(_sketch.quantile(sk, va + vb, np.linspace(0, 1, n_bins + 1)[1:-1]))
            cdf = np.round(_sketch.cdf_mid(sk, va + vb, np.nextafter(edges, -np.inf)) * (va + vb))
            counts = np.diff(np.concatenate([[0], cdf, [va + vb]])).astype(np.int64)
            counts = np.maximum(counts, 0)
            exact = False
        mins = [c.min for c in (self, other) if c.n_valid]
        maxs = [c.max for c in (self, other) if c.n_valid]
        return NumericColumn(self.kind, self.n_rows + other.n_rows, self.n_missing + other.n_missing,
                             self.n_zero + other.n_zero, self.n_inf + other.n_inf,
                             min(mins) if mins else math.nan, max(maxs) if maxs else math.nan,
                             mean, m2, n, sample, complete, sk, edges, counts, exact)

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"sample": self.sample, "edges": self.edges, "counts": self.counts}
        out.update({f"sketch_{k}": v for k, v in self.sketch.items()})
        return out

    def meta(self) -> dict:
        return {"kind": self.kind, "n_rows": self.n_rows, "n_missing": self.n_missing,
                "n_zero": self.n_zero, "n_inf": self.n_inf, "min": _jfloat(self.min),
                "max": _jfloat(self.max), "mean": _jfloat(self.mean), "m2": _jfloat(self.m2),
                "n_finite": self.n_finite, "sample_complete": self.sample_complete,
                "hist_exact": self.hist_exact}


class CategoricalColumn:
    """Category frequencies: every category up to ``max_categories``, then the heaviest
    hitters plus an ``other`` count."""

    def __init__(self, kind, n_rows, n_missing, categories, counts, other, truncated=False):
        self.kind = kind
        self.n_rows = int(n_rows)
        self.n_missing = int(n_missing)
        self.categories = list(categories)
        self.counts = np.asarray(counts, dtype=np.int64)
        self.other = int(other)
        self.truncated = bool(truncated)

    @property
    def n_valid(self) -> int:
        return self.n_rows - self.n_missing

    @classmethod
    def from_column(cls, col: _frame.Column, max_categories: int) -> CategoricalColumn:
        if col.kind == _frame.BOOLEAN:
            v = col.values
            ok = ~np.isnan(v)
            counts = np.array([np.count_nonzero(v[ok] == 0), np.count_nonzero(v[ok] == 1)], np.int64)
            return cls(col.kind, len(col), int(v.size - ok.sum()), [False, True], counts, 0)
        codes = col.values
        vocab = list(col.vocabulary or ())
        counts = np.bincount(codes[codes >= 0], minlength=len(vocab)).astype(np.int64)
        n_missing = int(np.count_nonzero(codes == _frame.MISSING_CODE))
        keep = counts > 0
        cats = [_jvalue(c) for c, k in zip(vocab, keep) if k]
        return cls._capped(col.kind, len(col), n_missing, cats, counts[keep], 0, max_categories)

    @classmethod
    def _capped(cls, kind, n_rows, n_missing, cats, counts, other, cap):
        if len(cats) <= cap:
            return cls(kind, n_rows, n_missing, cats, counts, other)
        order = np.argsort(-counts, kind="stable")[:cap]
        order = np.sort(order)
        dropped = int(counts.sum() - counts[order].sum())
        return cls(kind, n_rows, n_missing, [cats[i] for i in order], counts[order],
                   other + dropped, truncated=True)

    def merge(self, other: CategoricalColumn, cap: int) -> CategoricalColumn:
        table: dict = {}
        for c, k in zip(self.categories, self.counts):
            table[_key(c)] = [c, int(k)]
        for c, k in zip(other.categories, other.counts):
            table.setdefault(_key(c), [c, 0])[1] += int(k)
        cats = [v[0] for v in table.values()]
        counts = np.array([v[1] for v in table.values()], dtype=np.int64)
        out = CategoricalColumn._capped(self.kind, self.n_rows + other.n_rows,
                                        self.n_missing + other.n_missing, cats, counts,
                                        self.other + other.other, cap)
        out.truncated = out.truncated or self.truncated or other.truncated
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        return {"counts": self.counts}

    def meta(self) -> dict:
        return {"kind": self.kind, "n_rows": self.n_rows, "n_missing": self.n_missing,
                "categories": self.categories, "other": self.other, "truncated": self.truncated}


def _key(c):
    return (type(c).__name__ if isinstance(c, bool) else "v", c)


def _jvalue(v):
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v)
    return str(v)


def _jfloat(x: float):
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def _ufloat(x, err) -> float:
    if isinstance(x, str) and x in ("nan", "inf", "-inf"):
        return float(x)
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return float(x)
    raise err(f"profile: expected a number, got {type(x).__name__}")


def numeric_values(col: _frame.Column) -> np.ndarray:
    """A column's values as float64 with NaN for missing (datetime as nanoseconds)."""
    if col.kind == _frame.DATETIME:
        v = col.values.astype(np.float64)
        if col.valid is not None:
            v[~col.valid] = np.nan
        return v
    return np.ascontiguousarray(col.values, dtype=np.float64)


class Profile:
    """Compact reference profile of a dataset, fitted once and compared many times.

    Per numeric (or datetime) column: row, missing, zero and infinite counts, min/max,
    exact mergeable mean and variance (Chan's parallel update), an exact sorted sample of up
    to ``sample_size`` values (all values when the column is that small, so comparisons
    against it are exact), a quantile sketch with a certified rank-error bound
    (``<= 1 / (2 * sketch_size)`` for a freshly fitted profile, see
    :meth:`rank_error`), and a histogram on reference quantile edges. Per categorical or
    boolean column: category frequencies up to ``max_categories``, then the heaviest
    hitters and an ``other`` count.

    The default sizes keep a profile at about 100 KB per numeric column at most.
    """

    def __init__(self, columns: Mapping | None = None, *, sample_size: int = 10_000,
                 sketch_size: int = 512, n_bins: int = 20, max_categories: int = 1000,
                 seed: int = 0):
        for name, val in (("sample_size", sample_size), ("sketch_size", sketch_size),
                          ("n_bins", n_bins), ("max_categories", max_categories)):
            if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < 1:
                raise DriftError(f"{name} must be a positive integer, got {val!r}")
        self.columns: dict = dict(columns or {})
        self.sample_size = int(sample_size)
        self.sketch_size = int(sketch_size)
        self.n_bins = int(n_bins)
        self.max_categories = int(max_categories)
        self.seed = int(seed)

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(cls, data, *, prediction=None, target=None, sample_size: int = 10_000,
            sketch_size: int = 512, n_bins: int = 20, max_categories: int = 1000,
            seed: int = 0, n_threads: int | None = None) -> Profile:
        """Fit a profile on a frame (anything :func:`forgeline._frame.to_frame` accepts).

        Parameters
        ----------
        data
            pandas/polars DataFrame, pyarrow Table, 2-D numpy array or dict of arrays.
        prediction, target : array-like, optional
            Model outputs and labels, stored as the columns ``__prediction__`` and
            ``__target__``.
        sample_size : int
            Exact sorted sample kept per numeric column; columns with at most this many
            values are stored whole, so tests against them are exact.
        sketch_size : int
            Quantile sketch size; rank error at most ``1 / (2 * sketch_size)`` when fresh.
        n_bins : int
            Histogram bins on reference quantile edges (PSI, Jensen-Shannon, KL, Hellinger).
        max_categories : int
            Categories kept per categorical column before the rest is pooled as ``other``.
        seed : int
            Seed of the deterministic subsampling of large columns.
        n_threads : int, optional
            Threads for the native kernels (None: all cores).
        """
        prof = cls(sample_size=sample_size, sketch_size=sketch_size, n_bins=n_bins,
                   max_categories=max_categories, seed=seed)
        frame = _with_outputs(data, prediction, target)
        prof._fit_frame(frame, n_threads)
        return prof

    def _fit_frame(self, frame: _frame.Frame, n_threads) -> None:
        num = [c for c in frame.columns if c.kind in _NUMERIC_KINDS]
        if num:
            sorted_cols, st = core._drift_sort_valid([numeric_values(c) for c in num],
                                                     resolve_threads(n_threads))
            for j, c in enumerate(num):
                self.columns[c.name] = NumericColumn.from_sorted(
                    c.kind, sorted_cols[j], st[j], len(c), self.sample_size, self.sketch_size,
                    self.n_bins, self.seed)
        for c in frame.columns:
            if c.kind in _CATEGORICAL_KINDS:
                self.columns[c.name] = CategoricalColumn.from_column(c, self.max_categories)
        order = frame.names
        self.columns = {k: self.columns[k] for k in order}

    def partial_fit(self, data, *, prediction=None, target=None, n_threads=None) -> Profile:
        """Add a batch of rows (fits the batch, then :meth:`merge` s it in place)."""
        other = Profile(sample_size=self.sample_size, sketch_size=self.sketch_size,
                        n_bins=self.n_bins, max_categories=self.max_categories, seed=self.seed)
        other._fit_frame(_with_outputs(data, prediction, target), n_threads)
        if not self.columns:
            self.columns = other.columns
            return self
        merged = self.merge(other)
        self.columns = merged.columns
        return self

    def merge(self, other: Profile) -> Profile:
        """Profile of the union of both datasets' rows (columns must agree in name and kind).

        Counts, moments, min/max and category counts merge exactly; the sketch merges with a
        recomputed rank-error bound; the sample stays exact only while the union fits in
        ``sample_size``.
        """
        if not isinstance(other, Profile):
            raise DriftError(f"can only merge a Profile, not {type(other).__name__}")
        if set(self.columns) != set(other.columns):
            diff = sorted(set(self.columns) ^ set(other.columns))
            raise DriftError(f"profiles have different columns: {diff[:10]}")
        out = Profile(sample_size=self.sample_size, sketch_size=self.sketch_size,
                      n_bins=self.n_bins, max_categories=self.max_categories, seed=self.seed)
        for name, a in self.columns.items():
            b = other.columns[name]
            if type(a) is not type(b) or a.kind != b.kind:
                raise DriftError(f"column {name!r} is {a.kind} in one profile and {b.kind} in the other")
            if isinstance(a, NumericColumn):
                out.columns[name] = a.merge(b, self.sample_size, self.sketch_size, self.n_bins, self.seed)
            else:
                out.columns[name] = a.merge(b, self.max_categories)
        return out

    # ------------------------------------------------------------------ accessors
    @property
    def names(self) -> list[str]:
        return list(self.columns)

    @property
    def n_rows(self) -> int:
        return next(iter(self.columns.values())).n_rows if self.columns else 0

    def rank_error(self, column: str) -> float:
        """Certified rank-error bound of a numeric column's quantile sketch."""
        col = self.columns.get(column)
        if not isinstance(col, NumericColumn):
            raise DriftError(f"column {column!r} is not a numeric column of this profile")
        return col.rank_error

    def __repr__(self) -> str:
        return f"Profile({len(self.columns)} columns, {self.n_rows} rows)"

    # ------------------------------------------------------------------ serialisation
    def to_parts(self) -> tuple[dict, dict[str, np.ndarray]]:
        """JSON-safe metadata plus a flat ``{name: ndarray}`` map (for the model bundle)."""
        meta = {"format": "forgeline.profile", "version": FORMAT_VERSION,
                "params": {"sample_size": self.sample_size, "sketch_size": self.sketch_size,
                           "n_bins": self.n_bins, "max_categories": self.max_categories,
                           "seed": self.seed},
                "columns": []}
        arrays: dict[str, np.ndarray] = {}
        for j, (name, col) in enumerate(self.columns.items()):
            m = col.meta()
            m["name"] = name
            meta["columns"].append(m)
            for field, arr in col.arrays().items():
                arrays[f"c{j}/{field}"] = np.ascontiguousarray(arr)
        return meta, arrays

    @classmethod
    def from_parts(cls, meta, arrays, *, _error=BundleError) -> Profile:
        """Rebuild a profile from :meth:`to_parts` output, validating everything.

        Raises
        ------
        BundleError
            When the metadata or arrays are malformed, inconsistent or hostile.
        """
        from ._validate import profile_from_parts
        return profile_from_parts(cls, meta, arrays, _error)

    def to_dict(self) -> dict:
        """JSON-safe dict; arrays are stored as base64 of their little-endian bytes."""
        meta, arrays = self.to_parts()
        enc = {}
        for k, a in arrays.items():
            le = a.astype(a.dtype.newbyteorder("<"), copy=False)
            enc[k] = {"dtype": le.dtype.str, "shape": list(a.shape),
                      "data": base64.b64encode(le.tobytes()).decode("ascii")}
        return {"meta": meta, "arrays": enc}

    @classmethod
    def from_dict(cls, d) -> Profile:
        """Inverse of :meth:`to_dict`; raises :class:`~forgeline.DriftError` on bad input."""
        from ._validate import decode_arrays
        if not isinstance(d, Mapping) or "meta" not in d or "arrays" not in d:
            raise DriftError("profile dict must have 'meta' and 'arrays'")
        return cls.from_parts(d["meta"], decode_arrays(d["arrays"], DriftError), _error=DriftError)


def _with_outputs(data, prediction, target) -> _frame.Frame:
    if isinstance(data, _frame.Frame):
        frame = data
    else:
        frame = _frame.to_frame(data)
    extra = {}
    if prediction is not None:
        extra[PREDICTION] = np.asarray(prediction)
    if target is not None:
        extra[TARGET] = np.asarray(target)
    if not extra:
        return frame
    for k, v in extra.items():
        if v.ndim != 1 or v.shape[0] != frame.n_rows:
            raise DriftError(f"{k.strip('_')} must be 1-D with {frame.n_rows} values, got shape {v.shape}")
    more = _frame.to_frame(extra)
    return _frame.Frame(frame.columns + more.columns, frame.n_rows)
