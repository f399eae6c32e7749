"""compare(): run the drift tests of a reference against current data, column by column.

Default tests (``tests=None``), chosen by column kind and reference/current size
``n = min(n_reference, n_current)``:

* numeric, ``n <= 1000``: ``ks`` (decides), ``psi``, ``wasserstein``;
* numeric, ``n > 1000``: ``wasserstein`` (decides, on the reference-std normalised distance;
  p-values of large samples flag negligible shifts), ``ks``, ``psi``;
* categorical/boolean, ``n <= 1000``: ``chi2`` (decides), ``psi``, ``js``, ``linf``, ``unseen``;
* categorical/boolean, ``n > 1000``: ``js`` (decides), ``chi2``, ``psi``, ``linf``, ``unseen``.

Data-quality rows (``kind="quality"``) are always added: ``missing_rate`` (change in the
missing share), ``out_of_range`` (numeric: share of current values outside the reference
min/max), ``new_column`` / ``missing_column`` / ``kind_changed``. They are reported but do
not enter the dataset-level share.

A column is drifted when its first (deciding) test is. The dataset is drifted when the
share of drifted columns reaches ``drift_share`` (default 0.5).

Exactness: when both sides are exact (a frame, or a profile whose sample holds the whole
column), KS, Anderson-Darling, Cramer-von Mises, Wasserstein, energy distance and Welch
reproduce scipy (rtol 1e-9, p-values included). Against a profile whose column exceeded
``sample_size``, KS uses the quantile sketch (``method="sketch"``): the statistic is within
the sketch's certified rank error (:meth:`Profile.rank_error`, at most
``1 / (2 * sketch_size)`` for a fresh profile) of the exact one, and its p-value is the
asymptotic one for the true sizes (with a fresh 512-point sketch the bound is ~0.001,
about the size of a null KS statistic at 1M rows, so raise ``sketch_size`` when KS p-values
matter at that scale); Wasserstein and energy distance are Riemann sums on the
sketch points (``method="binned"``; the Wasserstein row's note carries a certified bound
on its error, see :func:`_binned_cdf_distances`); AD and CvM are skipped (NaN,
``method="unavailable"``). Current columns are then not sorted: one native pass counts
their values at the sketch points and histogram edges, so those counts are exact.

Speed: when both sides are raw frames (at least 2000 rows) and a column only needs KS,
histogram metrics (psi, js, kl, hellinger) or the t-test, neither column is sorted: one
fused native kernel per column pair counts both samples into value-range buckets, takes
the exact KS statistic from exact ECDF differences at bucket ends plus a walk of the few
buckets that could hold the maximum, and sorts only those buckets and the ones holding the
reference's quantile order statistics or a histogram edge, so the reference edges and both
sides' bin counts come out exact too. Results are identical to the sorted path. Against a
prebuilt profile each current column is read once by a slot-table rank probe (a few ns per
value), and the long Smirnov series behind large-n KS p-values is summed on every h-th
term where the terms form a smooth bump (the sum then equals the integral to far below
rounding; each result is cross-checked against the 2h-step sum, with the term-by-term sum
as fallback; see ``smirnov_sf`` in ``cpp/src/drift.cpp``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from .. import _frame
from .._native import core, resolve_threads
from ..errors import DriftError
from . import _sketch, _special, stats
from .metric import registered as _user_metrics
from .profile import (CategoricalColumn, NumericColumn, Profile, _with_outputs, hist_counts,
                      numeric_values, quantile_edges)
from .report import DriftReport, TestResult

NUMERIC_TESTS = ("ks", "psi", "wasserstein", "js", "kl", "hellinger", "ad", "cvm", "energy", "t_test")
CATEGORICAL_TESTS = ("chi2", "psi", "js", "kl", "hellinger", "linf", "unseen")
SMALL = 1000

#: Default thresholds: p-value tests drift when p < threshold, distances when stat >= threshold.
DEFAULT_THRESHOLDS = {"ks": 0.05, "ad": 0.05, "cvm": 0.05, "t_test": 0.05, "chi2": 0.05,
                      "psi": 0.2, "wasserstein": 0.1, "js": 0.1, "kl": 0.1, "hellinger": 0.1,
                      "energy": 0.1, "linf": 0.1, "unseen": 0.01, "missing_rate": 0.05,
                      "out_of_range": 0.05}
P_VALUE_TESTS = {"ks", "ad", "cvm", "t_test", "chi2"}
_FLAGS = {"ks": 1, "wasserstein": 2, "energy": 2, "cvm": 4, "ad": 8}


class _Num:
    """One side of a numeric column: exact sorted values, or a profile summary."""

    def __init__(self, sorted_vals, exact, n_rows, n_missing, vmin, vmax, sketch=None,
                 edges=None, counts=None, moments=None, raw=None, probe=None):
        self.sorted = sorted_vals
        # probe: (thresholds, lt, le) exact counts of a current column at the reference's
        # sketch points and edges, measured in one pass without sorting.
        self.probe = probe
        self.exact = exact
        self.n_rows, self.n_missing = n_rows, n_missing
        self.n_valid = n_rows - n_missing
        self.min, self.max = vmin, vmax
        self.sketch = sketch
        self.edges, self.counts = edges, counts
        self._moments = moments
        self.raw = raw

    def moments(self):
        """(mean, ddof-1 variance, n) of the finite values."""
        if self._moments is None:
            v = self.raw[~np.isnan(self.raw)] if self.raw is not None else self.sorted
            v = v[np.isfinite(v)]
            self._moments = (float(np.mean(v)) if v.size else math.nan,
                             float(np.var(v, ddof=1)) if v.size > 1 else math.nan, int(v.size))
        return self._moments

    def rank_error(self) -> float:
        if self.exact or self.probe is not None:
            return 0.0
        return _sketch.rank_error(self.sketch, self.n_valid)

    def count_at(self, x: np.ndarray, side: str) -> np.ndarray:
        """Exact counts of values < x (side='left') or <= x ('right')."""
        if self.sorted is not None:
            return np.searchsorted(self.sorted, x, side)
        thr, lt, le = self.probe
        i = np.searchsorted(thr, x)
        if not np.array_equal(thr[np.minimum(i, thr.size - 1)], x):
            raise AssertionError("probe thresholds must contain every queried point")
        return (lt if side == "left" else le)[i]

    def hist(self, edges: np.ndarray) -> tuple[np.ndarray, bool]:
        if self.sorted is not None:
            return hist_counts(self.sorted, edges), True
        if self.probe is not None:
            cut = self.count_at(edges, "left")
            return np.diff(np.concatenate([[0], cut, [self.n_valid]])).astype(np.int64), True
        if self.edges is not None and np.array_equal(self.edges, edges):
            return self.counts, True
        n = self.n_valid
        cdf = np.round(_sketch.cdf_mid(self.sketch, n, np.nextafter(edges, -np.inf)) * n)
        return np.maximum(np.diff(np.concatenate([[0], cdf, [n]])), 0).astype(np.int64), False

    @classmethod
    def from_profile(cls, c: NumericColumn) -> _Num:
        mom = (c.mean if c.n_finite else math.nan, c.variance, c.n_finite)
        return cls(c.sample if c.sample_complete else None, c.sample_complete, c.n_rows,
                   c.n_missing, c.min, c.max, c.sketch, c.edges, c.counts, mom,
                   None)

    def cdf_parts(self, x: np.ndarray):
        """(F at x, F on the open gap right of x) for ascending candidate points x."""
        if self.exact:
            f = np.searchsorted(self.sorted, x, "right") / self.n_valid
            return f, f
        sk, n = self.sketch, self.n_valid
        at = _sketch.cdf_mid(sk, n, x)
        v = sk["values"]
        i = np.searchsorted(v, x, "right") - 1
        lo = np.where(i >= 0, sk["le_lo"][np.clip(i, 0, v.size - 1)], 0)
        hi = np.where(i + 1 < v.size, sk["lt_hi"][np.clip(i + 1, 0, v.size - 1)], n)
        return at, (lo + hi) / (2.0 * n)

    def points(self) -> np.ndarray:
        return np.unique(self.sorted) if self.exact else self.sketch["values"]


class _Cat:
    def __init__(self, values: list, counts: np.ndarray, other: int, n_rows: int, n_missing: int):
        self.values, self.counts, self.other = values, counts, other
        self.n_rows, self.n_missing = n_rows, n_missing
        self.n_valid = n_rows - n_missing

    @classmethod
    def from_profile(cls, c: CategoricalColumn) -> _Cat:
        return cls(c.categories, c.counts, c.other, c.n_rows, c.n_missing)

    @classmethod
    def from_column(cls, col: _frame.Column) -> _Cat:
        return cls.from_profile(CategoricalColumn.from_column(col, 1 << 62))


FAST_TESTS = {"ks", "psi", "js", "kl", "hellinger", "t_test"}
FAST_MIN_ROWS = 2000


def _fast_sides(rframe, cframe, names, n_bins, nt):
    """Both sides raw, KS and histogram tests only: one fused native pass per column pair
    gives the exact KS statistic, the reference's quantile edges and exact counts of both
    sides at them, with no full sort of either column."""
    rv = [numeric_values(rframe[n]) for n in names]
    cv = [numeric_values(cframe[n]) for n in names]
    res, edges, a_lt, thr, b_lt, b_le = core._drift_ks_unsorted(rv, cv, n_bins, nt)
    rs, cs, pair = {}, {}, {}
    for j, n in enumerate(names):
        if res[j, 0] != 1.0:
            continue
        rs[n] = _Num(None, True, rframe.n_rows, int(res[j, 4]), res[j, 5], res[j, 6],
                     edges=edges[j], raw=rv[j], probe=(edges[j], a_lt[j], None))
        cs[n] = _Num(None, True, cframe.n_rows, int(res[j, 8]), res[j, 9], res[j, 10],
                     raw=cv[j], probe=(thr[j], b_lt[j], b_le[j]))
        row = np.full(8, np.nan)
        row[0], row[1] = res[j, 1], res[j, 2]
        pair[n] = row
    return rs, cs, pair


def _probe_thresholds(r: _Num) -> np.ndarray:
    t = np.concatenate([r.sketch["values"], r.edges, [r.min, r.max]])
    return np.unique(t[~np.isnan(t)])


def _sides_from_frame(frame: _frame.Frame, names: list[str], n_threads: int,
                      ref_sides: dict | None = None) -> dict:
    out = {}
    num = [frame[n] for n in names if frame[n].kind in (_frame.NUMERIC, _frame.DATETIME)]
    ref_sides = ref_sides or {}
    probed = [c for c in num if isinstance(ref_sides.get(c.name), _Num)
              and not ref_sides[c.name].exact and ref_sides[c.name].n_valid]
    if probed:
        # Against a sketched reference only counts at the sketch points are needed: one
        # pass per column instead of a sort.
        refs = [ref_sides[c.name] for c in probed]
        thr = [_probe_thresholds(r) for r in refs]
        shifts = [r.moments()[0] if np.isfinite(r.moments()[0]) else 0.0 for r in refs]
        lts, les, st = core._drift_probe([numeric_values(c) for c in probed], thr, shifts, n_threads)
        for j, c in enumerate(probed):
            nf = int(st[j, 2])
            sm, sq = st[j, 5], st[j, 6]
            mean = shifts[j] + sm / nf if nf else math.nan
            var = (sq - sm * sm / nf) / (nf - 1) if nf > 1 else math.nan
            out[c.name] = _Num(None, False, len(c), int(st[j, 1]), st[j, 3], st[j, 4],
                               moments=(mean, max(var, 0.0) if nf > 1 else var, nf),
                               probe=(thr[j], lts[j], les[j]))
        done = {c.name for c in probed}
        num = [c for c in num if c.name not in done]
    if num:
        raws = [numeric_values(c) for c in num]
        sorted_cols, st = core._drift_sort_valid(raws, n_threads, False)
        for j, c in enumerate(num):
            out[c.name] = _Num(sorted_cols[j], True, len(c), int(st[j, 1]), st[j, 4], st[j, 5],
                               raw=raws[j])
    for n in names:
        c = frame[n]
        if c.kind in (_frame.CATEGORICAL, _frame.BOOLEAN):
            out[n] = _Cat.from_column(c)
    return out


def _sides_from_profile(p: Profile, names: list[str]) -> dict:
    out = {}
    for n in names:
        c = p.columns[n]
        out[n] = _Num.from_profile(c) if isinstance(c, NumericColumn) else _Cat.from_profile(c)
    return out


def _kind_of(x) -> str:
    if isinstance(x, (NumericColumn, CategoricalColumn, _frame.Column)):
        return "numeric" if x.kind in (_frame.NUMERIC, _frame.DATETIME) else "categorical"
    raise TypeError(type(x))


def _resolve_tests(tests, kind: str, n: int) -> list[str]:
    if tests is None:
        if kind == "numeric":
            return ["ks", "psi", "wasserstein"] if n <= SMALL else ["wasserstein", "ks", "psi"]
        return (["chi2", "psi", "js", "linf", "unseen"] if n <= SMALL
                else ["js", "chi2", "psi", "linf", "unseen"])
    if isinstance(tests, Mapping):
        chosen = tests.get(kind)
        return _resolve_tests(None, kind, n) if chosen is None else list(chosen)
    allowed = NUMERIC_TESTS if kind == "numeric" else CATEGORICAL_TESTS
    user = _user_metrics()
    return [t for t in tests if t in allowed or (t in user and user[t].kind == kind)]


def _check_tests(tests) -> None:
    user = _user_metrics()
    known = set(NUMERIC_TESTS) | set(CATEGORICAL_TESTS) | set(user)
    if tests is None:
        return
    if isinstance(tests, str):
        raise DriftError("tests must be a list of test names or a dict by kind, not a string")
    items = []
    if isinstance(tests, Mapping):
        for k, v in tests.items():
            if k not in ("numeric", "categorical"):
                raise DriftError(f"tests: unknown column kind {k!r} (use 'numeric' or 'categorical')")
            allowed = (NUMERIC_TESTS if k == "numeric" else CATEGORICAL_TESTS) + tuple(
                n for n, m in user.items() if m.kind == k)
            bad = [t for t in v if t not in allowed]
            if bad:
                raise DriftError(f"tests: {bad} are not {k} tests; choose from {list(allowed)}")
            items += list(v)
    else:
        items = list(tests)
    bad = [t for t in items if t not in known]
    if bad:
        raise DriftError(f"unknown drift tests {bad}; known: {sorted(known)}")


def compare(reference, current, *, tests=None, columns: Sequence[str] | None = None,
            thresholds: Mapping[str, float] | None = None, correction: str | None = None,
            drift_share: float = 0.5, prediction=None, target=None, progress=None,
            n_threads: int | None = None) -> DriftReport:
    """Compare current data with a reference and report drift per column and overall.

    Parameters
    ----------
    reference : Profile or frame
        A fitted :class:`Profile`, or raw data (anything ``to_frame`` accepts).
    current : frame or Profile
        The data to check.
    tests : list of str or dict, optional
        Test names for every column (each applied where it fits the column kind), or a dict
        by kind, e.g. ``{"numeric": ["ks", "psi"], "categorical": ["chi2"]}``. Numeric:
        ks, psi, wasserstein, js, kl, hellinger, ad, cvm, energy, t_test. Categorical:
        chi2, psi, js, kl, hellinger, linf, unseen. See the module docstring for defaults.
    columns : list of str, optional
        Restrict the comparison to these columns.
    thresholds : dict, optional
        Per-test overrides of :data:`DEFAULT_THRESHOLDS`.
    correction : None, "bonferroni" or "fdr_bh"
        Multiple-testing correction over the deciding p-values of all columns.
    drift_share : float
        Share of drifted columns at which the dataset counts as drifted.
    prediction, target : array-like, optional
        Current model outputs / labels, compared with the profile's ``__prediction__`` and
        ``__target__`` columns.
    progress : bool or callable, optional
        True shows a tqdm bar (if tqdm is installed); a callable gets ``(done, total)``;
        None (default) shows a bar for 256 columns or more on an interactive terminal.
    n_threads : int, optional
        Threads for native kernels (None: all cores).

    Returns
    -------
    DriftReport
    """
    _check_tests(tests)
    if correction not in (None, "bonferroni", "fdr_bh"):
        raise DriftError(f"correction must be None, 'bonferroni' or 'fdr_bh', not {correction!r}")
    if not 0.0 < float(drift_share) <= 1.0:
        raise DriftError(f"drift_share must be in (0, 1], got {drift_share!r}")
    thr = dict(DEFAULT_THRESHOLDS)
    thr.update({n: m.threshold for n, m in _user_metrics().items()})
    for k, v in (thresholds or {}).items():
        if k not in thr:
            raise DriftError(f"thresholds: unknown test {k!r}")
        thr[k] = float(v)
    nt = resolve_threads(n_threads)

    ref_kind, cur_kind, ref_cols, cur_cols, frames = _describe(reference, current, prediction, target)
    common = [n for n in ref_kind if n in cur_kind]
    if columns is not None:
        unknown = [c for c in columns if c not in ref_kind and c not in cur_kind]
        if unknown:
            raise DriftError(f"columns not found in reference or current data: {unknown[:10]}")
        common = [n for n in common if n in set(columns)]
    results: list[TestResult] = []
    wanted = set(columns) if columns is not None else None
    for n in ref_kind:
        if n not in cur_kind and (wanted is None or n in wanted):
            results.append(TestResult(n, "quality", "missing_column", math.nan, math.nan, math.nan, True))
    for n in cur_kind:
        if n not in ref_kind and (wanted is None or n in wanted):
            results.append(TestResult(n, "quality", "new_column", math.nan, math.nan, math.nan, True))
    same = []
    for n in common:
        if ref_kind[n] != cur_kind[n]:
            results.append(TestResult(n, "quality", "kind_changed", math.nan, math.nan, math.nan, True,
                                      note=f"{ref_kind[n]} -> {cur_kind[n]}"))
        else:
            same.append(n)

    bar = _progress(progress, len(same))
    decisions: dict[str, TestResult] = {}
    charts: dict[str, dict] = {}
    n_bins = reference.n_bins if isinstance(reference, Profile) else 20
    batch = 64
    for start in range(0, len(same), batch):
        names = same[start:start + batch]
        frs, fcs, fpair = {}, {}, {}
        if frames is not None:
            rows = min(frames[0].n_rows, frames[1].n_rows)
            fast = [n for n in names if ref_kind[n] == "numeric" and rows >= FAST_MIN_ROWS
                    and set(_resolve_tests(tests, "numeric", rows)) <= FAST_TESTS]
            if fast:
                frs, fcs, fpair = _fast_sides(frames[0], frames[1], fast, n_bins, nt)
        rest = [n for n in names if n not in frs]
        rs = ref_cols(rest, nt)
        cs = cur_cols(rest, nt, rs)
        pair = _native_pairs(rest, rs, cs, tests, nt)
        rs.update(frs)
        cs.update(fcs)
        pair.update(fpair)
        for n in names:
            r, c = rs[n], cs[n]
            size = min(r.n_valid, c.n_valid)
            kind = ref_kind[n]
            chosen = _resolve_tests(tests, kind, size)
            col_results = (_numeric_tests(n, r, c, chosen, thr, pair.get(n), charts, n_bins)
                           if kind == "numeric" else _categorical_tests(n, r, c, chosen, thr, charts))
            results.extend(col_results)
            if col_results:
                decisions[n] = col_results[0]
            results.extend(_quality(n, r, c, kind, thr))
        bar(len(names))
    _apply_correction(decisions, correction, thr)
    return DriftReport(results, decisions=decisions, drift_share=float(drift_share),
                       correction=correction, charts=charts)


def _describe(reference, current, prediction, target):
    """Kinds per column on each side, and loaders of prepared sides for a batch of names."""
    if isinstance(reference, Profile):
        ref_kind = {n: _kind_of(c) for n, c in reference.columns.items()}
        ref_kinds_raw = {n: c.kind for n, c in reference.columns.items()}

        def ref_cols(names, nt, p=reference):  # noqa: ARG001
            return _sides_from_profile(p, names)
    else:
        rframe = _frame.to_frame(reference)
        ref_kind = {c.name: _kind_of(c) for c in rframe.columns}
        ref_kinds_raw = {c.name: c.kind for c in rframe.columns}

        def ref_cols(names, nt, f=rframe):
            return _sides_from_frame(f, names, nt)
    if isinstance(current, Profile):
        if prediction is not None or target is not None:
            raise DriftError("prediction/target go with a current frame; a current Profile "
                             "carries its own __prediction__/__target__ columns")
        cur_kind = {n: _kind_of(c) for n, c in current.columns.items()}

        def cur_cols(names, nt, rs, p=current):  # noqa: ARG001
            return _sides_from_profile(p, names)
    else:
        is_frame = isinstance(current, _frame.Frame)
        kinds = None
        if not is_frame:
            present = set(_column_names(current))
            kinds = {n: k for n, k in ref_kinds_raw.items() if n in present}
        cframe = _with_outputs(current if is_frame else _frame.to_frame(current, kinds=kinds),
                               prediction, target)
        cur_kind = {c.name: _kind_of(c) for c in cframe.columns}

        def cur_cols(names, nt, rs, f=cframe):
            return _sides_from_frame(f, names, nt, rs)
    frames = (rframe, cframe) if not isinstance(reference, Profile) and not isinstance(
        current, Profile) else None
    return ref_kind, cur_kind, ref_cols, cur_cols, frames


def _column_names(data) -> list[str]:
    """Column names of a container without converting it."""
    root = type(data).__module__.split(".", 1)[0]
    if root in ("pandas", "polars") and hasattr(data, "columns"):
        return [str(c) for c in data.columns]
    if hasattr(data, "column_names"):
        return list(data.column_names)
    if isinstance(data, Mapping):
        return [str(k) for k in data]
    if isinstance(data, np.ndarray) and data.ndim == 2:
        return [f"x{j}" for j in range(data.shape[1])]
    return [n for n, _ in _frame._raw_columns(data)[0]]


def _progress(progress, total):
    if progress is None:
        # auto: a bar only for long comparisons on an interactive terminal
        import sys
        progress = total >= 256 and bool(getattr(sys.stderr, "isatty", lambda: False)())
    if callable(progress):
        done = [0]

        def step(k):
            done[0] += k
            progress(done[0], total)
        return step
    if progress:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return lambda k: None
        bar = tqdm(total=total, desc="drift", unit="col")

        def step(k):
            bar.update(k)
            if bar.n >= total:
                bar.close()
        return step
    return lambda k: None


def _native_pairs(names, rs, cs, tests, nt) -> dict:
    """Run the merged-walk statistics for exact numeric pairs in one parallel native call."""
    todo = []
    for n in names:
        r, c = rs[n], cs[n]
        if isinstance(r, _Num) and r.exact and c.exact and r.n_valid and c.n_valid:
            todo.append(n)
    if not todo:
        return {}
    flags = 0
    for n in todo:
        for t in _resolve_tests(tests, "numeric", min(rs[n].n_valid, cs[n].n_valid)):
            flags |= _FLAGS.get(t, 0)
    if not flags:
        return {}
    res = core._drift_pair_stats([rs[n].sorted for n in todo], [cs[n].sorted for n in todo], flags, nt)
    return {n: res[j] for j, n in enumerate(todo)}


def _result(col, kind, test, stat, p, thr, effect=math.nan, method="exact", note="", **extra):
    t = thr[test]
    if test in P_VALUE_TESTS:
        drifted = bool(p < t) if not math.isnan(p) else False
    else:
        drifted = bool(stat >= t) if not math.isnan(stat) else False
    return TestResult(col, kind, test, float(stat), float(p), t, drifted, float(effect), method,
                      note, **extra)


def _numeric_tests(name, r: _Num, c: _Num, chosen, thr, pair, charts, n_bins) -> list[TestResult]:
    out = []
    if r.n_valid == 0 or c.n_valid == 0:
        return [TestResult(name, "numeric", t, math.nan, math.nan, thr[t], False,
                           note="no values on one side") for t in chosen]
    exact = r.exact and c.exact
    ref_std = math.nan
    if any(t in ("wasserstein", "energy") for t in chosen) and r.moments()[2] > 1:
        ref_std = math.sqrt(r.moments()[1])
    edges = r.edges if r.edges is not None else quantile_edges(r.sorted, n_bins)
    hr, er = r.hist(edges)
    hc, ec = c.hist(edges)
    p, q = stats.proportions(hr), stats.proportions(hc)
    hmethod = "binned" if er and ec else "binned-sketch"
    charts[name] = {"kind": "numeric", "edges": edges, "ref": p, "cur": q,
                    "min": min(r.min, c.min), "max": max(r.max, c.max)}
    for t in chosen:
        if t == "ks":
            if exact:
                d = max(pair[0], pair[1])
                d, pv, m = _special.ks_2samp_pvalue(float(d), r.n_valid, c.n_valid)
                out.append(_result(name, "numeric", t, d, pv, thr, d, m))
            else:
                d = _ks_approx(r, c)
                bound = r.rank_error() + c.rank_error()
                _, pv, _ = _ks_asymp(d, r.n_valid, c.n_valid)
                out.append(_result(name, "numeric", t, d, pv, thr, d, "sketch",
                                   f"|D - D_exact| <= {bound:.3g}"))
        elif t in ("wasserstein", "energy"):
            wnote = ""
            if exact:
                l1, l2 = pair[4], pair[5]
            else:
                l1, l2, wb = _binned_cdf_distances(r, c)
                if t == "wasserstein":
                    wnote = f"|W - W_exact| <= {wb:.6g}"

            stat = l1 if t == "wasserstein" else math.sqrt(2.0) * math.sqrt(l2)
            eff = stat / ref_std if ref_std and ref_std > 0 else math.nan
            res_t = _result(name, "numeric", t, stat, math.nan, thr, eff,
                            "exact" if exact else "binned", wnote)
            # the decision uses the reference-std normalised distance (scale-free)
            res_t.drifted = bool(eff >= thr[t]) if not math.isnan(eff) else bool(stat > 0)
            out.append(res_t)
        elif t in ("psi", "js", "kl", "hellinger"):
            fn = {"psi": stats.psi, "js": stats.jensen_shannon, "kl": stats.kl,
                  "hellinger": stats.hellinger}[t]
            s = fn(p, q)
            out.append(_result(name, "numeric", t, s, math.nan, thr, s, hmethod))
        elif t in ("ad", "cvm"):
            if not exact:
                out.append(TestResult(name, "numeric", t, math.nan, math.nan, thr[t], False,
                                      method="unavailable", note="needs an exact reference"))
                continue
            if t == "ad":
                if r.n_valid + c.n_valid < 4 or (r.min == r.max == c.min == c.max):
                    out.append(TestResult(name, "numeric", t, math.nan, math.nan, thr[t], False,
                                          note="needs >= 4 values and 2 distinct"))
                    continue
                a2, pv = _special.ad_2samp(pair[7], r.n_valid, c.n_valid)
                out.append(_result(name, "numeric", t, a2, pv, thr, a2, "interpolated",
                                   "p-value interpolated, capped to [0.001, 0.25]"))
            else:
                if r.n_valid < 2 or c.n_valid < 2:
                    out.append(TestResult(name, "numeric", t, math.nan, math.nan, thr[t], False,
                                          note="needs >= 2 values per side"))
                    continue
                tt, pv = _special.cvm_2samp_pvalue(pair[6], r.n_valid, c.n_valid)
                m = "exact" if max(r.n_valid, c.n_valid) <= 20 else "asymp"
                out.append(_result(name, "numeric", t, tt, pv, thr, tt, m))
        elif t in _user_metrics():
            m = _user_metrics()[t]
            a = r.sorted if r.exact else _pseudo_sample(r)
            b = c.sorted if c.exact else _pseudo_sample(c)
            val = m(np.ascontiguousarray(a, dtype=np.float64), np.ascontiguousarray(b, dtype=np.float64))
            out.append(_result(name, "numeric", t, val, math.nan, thr, val,
                               "exact" if exact else "sketch-sample"))
        elif t == "t_test":
            m1, v1, n1 = r.moments()
            m2, v2, n2 = c.moments()
            tt, pv, _df = stats.welch(m1, v1, n1, m2, v2, n2)
            pooled = math.sqrt((v1 + v2) / 2) if n1 > 1 and n2 > 1 else math.nan
            eff = (m2 - m1) / pooled if pooled and pooled > 0 else math.nan
            out.append(_result(name, "numeric", t, tt, pv, thr, eff, "exact"))
    return out


def _pseudo_sample(side: _Num) -> np.ndarray:
    q = (np.arange(2048) + 0.5) / 2048
    if side.probe is not None:
        thr, _, le = side.probe
        return thr[np.clip(np.searchsorted(le, q * side.n_valid), 0, thr.size - 1)]
    return _sketch.quantile(side.sketch, side.n_valid, q)


def _cdf_on(side: _Num, x: np.ndarray) -> np.ndarray:
    if side.exact or side.probe is not None:
        return side.count_at(x, "right") / side.n_valid
    return _sketch.cdf_mid(side.sketch, side.n_valid, x)


def _side_bounds(side: _Num, x: np.ndarray):
    """Counts (le_lo, le_hi, lt_hi) of a side at points x: exact for exact/probed sides."""
    if side.exact or side.probe is not None:
        le = side.count_at(x, "right")
        return le, le, side.count_at(x, "left")
    _, lt_hi, le_lo, le_hi = _sketch._bounds_at(side.sketch, side.n_valid, x)
    return le_lo, le_hi, lt_hi


def _binned_cdf_distances(r: _Num, c: _Num) -> tuple[float, float, float]:
    """Wasserstein-1 and squared-L2 CDF distance as Riemann sums of the CDF difference on
    the sketch points (left ends), plus a certified bound on the Wasserstein error.

    On each gap [x_k, x_k+1) a side's true CDF lies in [le_lo(x_k), lt_hi(x_k+1)] / n and
    the estimate inside that range, so the error is at most the sum over gaps of
    dx_k * (width_ref + width_cur), plus the mass either side holds outside [x_0, x_K]
    times the distance to the outermost value.
    """
    pts = r.sketch["values"] if not (r.exact or r.probe is not None) else c.sketch["values"]
    x = pts[np.isfinite(pts)]
    if x.size < 2:
        return math.nan, math.nan, math.nan
    diff = _cdf_on(r, x[:-1]) - _cdf_on(c, x[:-1])
    dx = np.diff(x)
    bound = 0.0
    for side in (r, c):
        le_lo, le_hi, lt_hi = _side_bounds(side, x)
        width = (np.maximum(lt_hi[1:], le_hi[:-1]) - le_lo[:-1]) / side.n_valid
        bound += float(np.sum(width * dx))
    lo_all, hi_all = min(r.min, c.min), max(r.max, c.max)
    below = max(_side_bounds(s, x[:1])[2][0] / s.n_valid for s in (r, c))
    above = max(1.0 - _side_bounds(s, x[-1:])[0][0] / s.n_valid for s in (r, c))
    bound += below * max(x[0] - lo_all, 0.0) + above * max(hi_all - x[-1], 0.0)
    return float(np.sum(np.abs(diff) * dx)), float(np.sum(diff * diff * dx)), bound


def _ks_asymp(d, n1, n2):
    m, n = sorted([float(n1), float(n2)], reverse=True)
    en = m * n / (m + n)
    return d, _special.kolmogorov_sf(max(int(np.round(en)), 1), d), "asymp"


def _ks_approx(r: _Num, c: _Num) -> float:
    """KS statistic with a sketched side: sup over all x of |F_r(x) - F_c(x)|.

    Both estimates are step functions, so the supremum is reached at a breakpoint or at a
    one-sided limit next to one. With one exact side only the sketch's points and the exact
    side's limits at them are needed (O(sketch size * log n)).
    """
    r_known = r.exact or r.probe is not None
    c_known = c.exact or c.probe is not None
    if r_known != c_known:
        e, s = (r, c) if r_known else (c, r)
        sk, n = s.sketch, s.n_valid
        pt = (sk["le_lo"] + sk["le_hi"]) / (2.0 * n)
        gap = (sk["le_lo"] + np.append(sk["lt_hi"][1:], n)) / (2.0 * n)
        below = sk["lt_hi"][0] / (2.0 * n)
        ne = e.n_valid
        fe = e.count_at(sk["values"], "right") / ne
        fe_lt = e.count_at(sk["values"], "left") / ne
        fe_next = np.append(fe_lt[1:], 1.0)
        return float(max(np.max(np.abs(fe - pt)), np.max(np.abs(fe - gap)),
                         np.max(np.abs(fe_next - gap)), abs(fe_lt[0] - below), below))
    x = np.union1d(r.points(), c.points())
    ra, rg = r.cdf_parts(x)
    ca, cg = c.cdf_parts(x)
    return float(max(np.max(np.abs(ra - ca)), np.max(np.abs(rg - cg))))


def _categorical_tests(name, r: _Cat, c: _Cat, chosen, thr, charts) -> list[TestResult]:
    keys = {}
    for v in r.values:
        keys.setdefault(_ckey(v), len(keys))
    n_ref_keys = len(keys)
    for v in c.values:
        keys.setdefault(_ckey(v), len(keys))
    rc = np.zeros(len(keys) + 1, np.int64)
    cc = np.zeros(len(keys) + 1, np.int64)
    for v, k in zip(r.values, r.counts):
        rc[keys[_ckey(v)]] += k
    for v, k in zip(c.values, c.counts):
        cc[keys[_ckey(v)]] += k
    rc[-1], cc[-1] = r.other, c.other
    out = []
    if r.n_valid == 0 or c.n_valid == 0:
        return [TestResult(name, "categorical", t, math.nan, math.nan, thr[t], False,
                           note="no values on one side") for t in chosen]
    p, q = stats.proportions(rc), stats.proportions(cc)
    labels = [None] * len(keys)
    for v in list(r.values) + list(c.values):
        labels[keys[_ckey(v)]] = str(v)
    charts[name] = {"kind": "categorical", "labels": labels + ["(other)"], "ref": p, "cur": q}
    for t in chosen:
        if t == "chi2":
            s, pv, dof = stats.chi2_contingency_2xk(rc, cc)
            n_tot = rc.sum() + cc.sum()
            eff = math.sqrt(s / n_tot) if n_tot and not math.isnan(s) else math.nan  # Cramer's V
            out.append(_result(name, "categorical", t, s, pv, thr, eff, "asymp", f"dof={dof}"))
        elif t == "unseen":
            unseen = int(cc[n_ref_keys:-1].sum())
            share = unseen / c.n_valid
            out.append(_result(name, "categorical", t, share, math.nan, thr, share, "exact",
                               f"{unseen} unseen values in {len(keys) - n_ref_keys} categories",
                               count=unseen))
        elif t in _user_metrics():
            val = _user_metrics()[t](p, q)
            out.append(_result(name, "categorical", t, val, math.nan, thr, val, "exact"))
        else:
            fn = {"psi": stats.psi, "js": stats.jensen_shannon, "kl": stats.kl,
                  "hellinger": stats.hellinger, "linf": stats.linf}[t]
            s = fn(p, q)
            out.append(_result(name, "categorical", t, s, math.nan, thr, s, "exact"))
    return out


def _ckey(v):
    return ("b", v) if isinstance(v, bool) else ("v", v)


def _quality(name, r, c, kind, thr) -> list[TestResult]:
    rr = r.n_missing / r.n_rows if r.n_rows else 0.0
    cr = c.n_missing / c.n_rows if c.n_rows else 0.0
    out = [_result(name, "quality", "missing_rate", cr - rr, math.nan, thr, cr - rr)]
    out[0].drifted = abs(cr - rr) >= thr["missing_rate"]
    if kind == "numeric" and r.n_valid and c.n_valid:
        if c.exact or c.probe is not None:
            below = c.count_at(np.array([r.min]), "left")[0]
            above = c.n_valid - c.count_at(np.array([r.max]), "right")[0]
            share = (below + above) / c.n_valid
            m = "exact"
        else:
            share = (_sketch.cdf_mid(c.sketch, c.n_valid, np.array([np.nextafter(r.min, -np.inf)]))[0]
                     + 1 - _sketch.cdf_mid(c.sketch, c.n_valid, np.array([r.max]))[0])
            m = "sketch"
        out.append(_result(name, "quality", "out_of_range", float(share), math.nan, thr, float(share), m))
    return out


def _apply_correction(decisions: dict, correction, thr) -> None:
    ps = [(n, r) for n, r in decisions.items() if r.test in P_VALUE_TESTS and not math.isnan(r.p_value)]
    if not correction or not ps:
        return
    m = len(ps)
    raw = np.array([r.p_value for _, r in ps])
    if correction == "bonferroni":
        adj = np.minimum(raw * m, 1.0)
    else:
        order = np.argsort(raw)
        ranked = raw[order] * m / np.arange(1, m + 1)
        ranked = np.minimum.accumulate(ranked[::-1])[::-1]
        adj = np.empty(m)
        adj[order] = np.minimum(ranked, 1.0)
    for (n, r), a in zip(ps, adj):
        r.p_value_adjusted = float(a)
        r.drifted = bool(a < r.threshold)

