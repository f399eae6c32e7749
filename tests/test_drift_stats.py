"""Exactness of the drift statistics against scipy (rtol 1e-9, p-values included)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import spatial, special, stats

from forgeline.drift import _special, compare
from forgeline.drift import stats as dstats

RTOL = 1e-9
# Statistics that can be (nearly) zero are compared with a tiny absolute tolerance too:
# a difference of two O(1) terms cancels there and only absolute accuracy is meaningful.
ATOL = 1e-12

values = st.sampled_from([0.0, 1.0, -1.0, 2.5, 3.0, -7.25, 1e-3, 100.0, float("nan")])
sample = st.one_of(
    st.lists(values, min_size=1, max_size=25),
    st.lists(st.one_of(st.floats(-1e3, 1e3, width=32), st.just(float("nan"))),
             min_size=1, max_size=40),
    st.integers(1, 12).map(lambda n: [4.0] * n),
)


def _valid(x):
    x = np.asarray(x, dtype=np.float64)
    return x[~np.isnan(x)]


def _row(report, test):
    rows = [r for r in report.results if r.test == test and r.kind == "numeric"]
    assert len(rows) == 1
    return rows[0]


def _quiet(fn, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **k)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sample, sample)
def test_numeric_tests_match_scipy(a, b):
    x, y = _valid(a), _valid(b)
    tests = ["ks", "wasserstein", "energy", "t_test", "cvm", "ad"]
    rep = compare({"v": np.array(a)}, {"v": np.array(b)}, tests={"numeric": tests})
    if x.size == 0 or y.size == 0:
        assert all(math.isnan(_row(rep, t).statistic) for t in tests)
        return
    ks = _quiet(stats.ks_2samp, x, y)  # scipy warns when it falls back to asymp; so do we
    r = _row(rep, "ks")
    np.testing.assert_allclose(r.statistic, ks.statistic, rtol=RTOL)
    np.testing.assert_allclose(r.p_value, ks.pvalue, rtol=RTOL)
    np.testing.assert_allclose(_row(rep, "wasserstein").statistic,
                               stats.wasserstein_distance(x, y), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(_row(rep, "energy").statistic, stats.energy_distance(x, y),
                               rtol=RTOL, atol=ATOL)
    tt = _quiet(stats.ttest_ind, x, y, equal_var=False)
    r = _row(rep, "t_test")
    np.testing.assert_allclose(r.statistic, tt.statistic, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(r.p_value, tt.pvalue, rtol=RTOL)
    if x.size >= 2 and y.size >= 2:
        cvm = stats.cramervonmises_2samp(x, y)
        r = _row(rep, "cvm")
        np.testing.assert_allclose(r.statistic, cvm.statistic, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(r.p_value, cvm.pvalue, rtol=RTOL)
    pooled = np.concatenate([x, y])
    if pooled.size >= 4 and np.unique(pooled).size >= 2:
        ad = _quiet(stats.anderson_ksamp, [x, y], variant="midrank")
        r = _row(rep, "ad")
        np.testing.assert_allclose(r.statistic, ad.statistic, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(r.p_value, ad.pvalue, rtol=RTOL)


@pytest.mark.parametrize("n1,n2", [(10001, 50), (20000, 20000), (12000, 300), (15000, 900)])
def test_ks_asymptotic_branch_matches_scipy(n1, n2):
    rng = np.random.default_rng(n1 + n2)
    for shift in (0.0, 0.05, 0.3):
        x = rng.normal(size=n1)
        y = rng.normal(shift, size=n2)
        rep = compare({"v": x}, {"v": y}, tests=["ks"])
        ref = stats.ks_2samp(x, y)
        r = _row(rep, "ks")
        np.testing.assert_allclose(r.statistic, ref.statistic, rtol=RTOL)
        np.testing.assert_allclose(r.p_value, ref.pvalue, rtol=RTOL)
        assert r.method == "asymp"


@pytest.mark.parametrize("n", [5, 60, 140, 141, 1000, 30000, 200000])
def test_kolmogorov_sf_matches_kstwo(n):
    for x in np.linspace(0.0005, 0.95, 60):
        e = stats.kstwo.sf(x, n)
        if e > 1e-290:
            np.testing.assert_allclose(_special.kolmogorov_sf(n, float(x)), e, rtol=RTOL)


def test_special_functions():
    for a, x in [(0.5, 0.1), (0.5, 30), (10, 3), (10, 25), (100, 130), (1000, 1100), (3.5, 700)]:
        np.testing.assert_allclose(_special.gammaincc(a, x), special.gammaincc(a, x), rtol=RTOL)
    for t, df in [(0.1, 3.3), (2, 10.5), (5, 100), (30, 4), (0.001, 1000), (8, 50000)]:
        np.testing.assert_allclose(_special.t_sf_two_sided(t, df), 2 * stats.t.sf(t, df), rtol=RTOL)
    from forgeline._native import core
    for n in (10, 1000, 50000):
        for x in (0.001, 0.01, 0.1, 0.6):
            e = special.smirnov(n, x)
            np.testing.assert_allclose(core._drift_smirnov_sf(n, x), e, rtol=RTOL)


@pytest.mark.parametrize("n", [20000, 60000, 200000])
@pytest.mark.parametrize("nx2", [2.2, 3.0, 8.0, 40.0, 300.0])
def test_smirnov_sampled_sum_matches_scipy(n, nx2):
    """Long Birnbaum-Tingey sums are evaluated on every h-th term (trapezoid on an analytic
    bump); the result must still agree with scipy's term-by-term sum."""
    from forgeline._native import core
    x = math.sqrt(nx2 / n)
    np.testing.assert_allclose(core._drift_smirnov_sf(n, x), special.smirnov(n, x), rtol=RTOL)


cat_counts = st.lists(st.integers(0, 40), min_size=1, max_size=8)


@settings(max_examples=80, deadline=None)
@given(cat_counts, cat_counts)
def test_categorical_tests_match_scipy(rc, cc):
    k = max(len(rc), len(cc))
    rc = np.array(rc + [0] * (k - len(rc)))
    cc = np.array(cc + [0] * (k - len(cc)))
    if rc.sum() == 0 or cc.sum() == 0:
        return
    labels = [f"v{i}" for i in range(k)]
    ref = {"c": np.repeat(labels, rc).astype(object)}
    cur = {"c": np.repeat(labels, cc).astype(object)}
    rep = compare(ref, cur, tests={"categorical": ["chi2", "js", "kl", "psi", "hellinger", "linf"]})
    got = {r.test: r for r in rep.results if r.kind == "categorical"}
    table = np.vstack([rc, cc])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] >= 2:
        res = stats.chi2_contingency(table)
        np.testing.assert_allclose(got["chi2"].statistic, res.statistic, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(got["chi2"].p_value, res.pvalue, rtol=RTOL)
    # the categorical rows follow the reference's categories then the new ones
    order = [i for i in range(k) if rc[i] > 0] + [i for i in range(k) if rc[i] == 0 and cc[i] > 0]
    p = np.append(rc[order] / rc.sum(), 0.0)
    q = np.append(cc[order] / cc.sum(), 0.0)
    np.testing.assert_allclose(got["js"].statistic, spatial.distance.jensenshannon(p, q, base=2),
                               rtol=RTOL, atol=ATOL)
    fp, fq = np.where(p == 0, dstats.EPS, p), np.where(q == 0, dstats.EPS, q)
    np.testing.assert_allclose(got["kl"].statistic, stats.entropy(fp, fq), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(got["psi"].statistic, np.sum((fq - fp) * np.log(fq / fp)),
                               rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(got["linf"].statistic, np.max(np.abs(p - q)), rtol=RTOL)
    np.testing.assert_allclose(got["hellinger"].statistic,
                               np.sqrt(0.5 * np.sum((np.sqrt(p) - np.sqrt(q)) ** 2)), rtol=RTOL,
                               atol=ATOL)


def test_unseen_categories_counted():
    ref = {"c": np.array(["a", "b", "a", "b"], dtype=object)}
    cur = {"c": np.array(["a", "z", "z", "y", None], dtype=object)}
    rep = compare(ref, cur, tests={"categorical": ["unseen"]})
    r = next(r for r in rep.results if r.test == "unseen")
    assert r.count == 3
    assert r.statistic == pytest.approx(3 / 4)
    miss = next(r for r in rep.results if r.test == "missing_rate")
    assert miss.statistic == pytest.approx(1 / 5)


def test_quality_out_of_range_and_columns():
    ref = {"x": np.arange(10.0), "gone": np.zeros(10)}
    cur = {"x": np.array([-1.0, 0.0, 5.0, 9.0, 12.0]), "new": np.ones(5)}
    rep = compare(ref, cur)
    by = {(r.column, r.test): r for r in rep.results}
    assert by[("x", "out_of_range")].statistic == pytest.approx(2 / 5)
    assert by[("gone", "missing_column")].drifted
    assert by[("new", "new_column")].drifted


def test_results_do_not_depend_on_thread_count():
    rng = np.random.default_rng(7)
    ref = {f"x{i}": rng.normal(size=3000) for i in range(70)}
    cur = {f"x{i}": rng.normal(0.05, size=2000) for i in range(70)}
    tests = {"numeric": ["ks", "wasserstein", "energy", "cvm", "ad", "psi"]}
    a = compare(ref, cur, tests=tests, n_threads=1).to_frame()
    b = compare(ref, cur, tests=tests, n_threads=2).to_frame()
    assert a.equals(b)


def test_datetime_and_boolean_columns():
    import pandas as pd
    ref = pd.DataFrame({"t": pd.date_range("2024-01-01", periods=50, freq="D"),
                        "b": np.arange(50) % 2 == 0})
    cur = pd.DataFrame({"t": pd.date_range("2024-03-01", periods=40, freq="D"),
                        "b": np.arange(40) % 4 == 0})
    rep = compare(ref, cur, tests={"numeric": ["ks"], "categorical": ["chi2"]})
    ks = next(r for r in rep.results if r.column == "t" and r.test == "ks")
    x = ref["t"].to_numpy().astype("int64").astype(float)
    y = cur["t"].to_numpy().astype("int64").astype(float)
    np.testing.assert_allclose(ks.p_value, stats.ks_2samp(x, y).pvalue, rtol=RTOL)
    chi = next(r for r in rep.results if r.column == "b" and r.test == "chi2")
    table = np.array([[25, 25], [30, 10]])
    np.testing.assert_allclose(chi.p_value, stats.chi2_contingency(table).pvalue, rtol=RTOL)


def test_bad_input_is_typed():
    from forgeline import InputError
    with pytest.raises(InputError):
        compare(12345, {"x": np.ones(3)})


@pytest.mark.parametrize("seed", range(4))
def test_unsorted_fast_path_matches_sorted_path_and_scipy(seed):
    rng = np.random.default_rng(seed)
    n1, n2 = 2500 + 1000 * seed, 4000
    x = np.round(rng.normal(size=n1), seed)  # heavy ties for small seeds
    y = np.round(rng.normal(0.05 * seed, size=n2), seed)
    x[rng.random(n1) < 0.03] = np.nan
    fast = compare({"v": x}, {"v": y}, tests=["ks", "psi", "js", "t_test"])
    slow = compare({"v": x}, {"v": y}, tests=["ks", "psi", "js", "t_test", "wasserstein"])
    for test in ("ks", "psi", "js", "t_test"):
        a, b = _row(fast, test), _row(slow, test)
        assert a.statistic == b.statistic and (a.p_value == b.p_value or math.isnan(a.p_value))
    ks = _quiet(stats.ks_2samp, _valid(x), y)
    np.testing.assert_allclose(_row(fast, "ks").p_value, ks.pvalue, rtol=RTOL)
    q_fast = {r.test: r.statistic for r in fast.results if r.kind == "quality"}
    q_slow = {r.test: r.statistic for r in slow.results if r.kind == "quality"}
    assert q_fast == q_slow


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31), st.integers(2000, 6000), st.integers(2000, 6000),
       st.integers(-1, 3), st.floats(0, 0.3), st.floats(0, 0.2))
def test_fast_ks_kernel_matches_scipy(seed, n1, n2, decimals, shift, nan_share):
    rng = np.random.default_rng(seed)
    x = rng.standard_t(3, n1)
    y = rng.standard_t(3, n2) + shift
    if decimals >= 0:
        x, y = np.round(x, decimals), np.round(y, decimals)
    x[rng.random(n1) < nan_share] = np.nan
    rep = compare({"v": x}, {"v": y}, tests=["ks"])
    r = _row(rep, "ks")
    if _valid(x).size == 0:
        return
    ks = _quiet(stats.ks_2samp, _valid(x), y)
    np.testing.assert_allclose(r.statistic, ks.statistic, rtol=RTOL)
    np.testing.assert_allclose(r.p_value, ks.pvalue, rtol=RTOL)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31), st.integers(0, 3000), st.integers(1, 700), st.integers(0, 3),
       st.booleans())
def test_probe_counts_match_searchsorted(seed, n, k, decimals, specials):
    """The slot-table rank probe counts exactly like searchsorted, with ties on thresholds,
    several thresholds per slot, values outside the threshold range, NaN and +-inf."""
    from forgeline._native import core
    rng = np.random.default_rng(seed)
    x = np.round(rng.standard_t(3, n), decimals)
    pool = np.concatenate([x, np.round(rng.normal(0, 2, k), decimals)])
    t = np.unique(rng.choice(pool, size=min(k, pool.size), replace=False)) if pool.size else np.array([0.0])
    if specials:
        x = np.concatenate([x, [np.nan, np.inf, -np.inf, np.nan]])
        t = np.unique(np.concatenate([t, [-np.inf, np.inf]]))
    lt, le, st_ = core._drift_probe([x], [t], [0.5], 1)
    v = np.sort(x[~np.isnan(x)])
    np.testing.assert_array_equal(lt[0], np.searchsorted(v, t, "left"))
    np.testing.assert_array_equal(le[0], np.searchsorted(v, t, "right"))
    fin = v[np.isfinite(v)]
    assert st_[0, 0] == v.size and st_[0, 1] == x.size - v.size and st_[0, 2] == fin.size
    if v.size:
        assert st_[0, 3] == v[0] and st_[0, 4] == v[-1]
    np.testing.assert_allclose(st_[0, 5], np.sum(fin - 0.5), rtol=1e-9, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31), st.integers(1, 3000), st.integers(1, 3000), st.integers(-1, 2),
       st.integers(1, 40), st.floats(0, 0.3))
def test_fused_ks_histogram_kernel_matches_numpy(seed, n1, n2, decimals, n_bins, nan_share):
    """The fused KS + quantile-histogram kernel returns the same edges as quantile_edges()
    on the sorted reference, and exact counts of both samples at them."""
    from forgeline._native import core
    from forgeline.drift.profile import quantile_edges
    rng = np.random.default_rng(seed)
    x = rng.standard_t(2, n1)
    y = rng.standard_t(2, n2) * 1.3
    if decimals >= 0:
        x, y = np.round(x, decimals), np.round(y, decimals)
    x[rng.random(n1) < nan_share] = np.nan
    res, edges, a_lt, thr, b_lt, b_le = core._drift_ks_unsorted([x], [y], n_bins, 1)
    xs, ys = np.sort(_valid(x)), np.sort(y)
    if xs.size == 0 or (xs[0] == xs[-1] == ys[0] == ys[-1]):
        assert res[0, 0] == 0.0
        return
    assert res[0, 0] == 1.0
    e = quantile_edges(xs, n_bins)
    np.testing.assert_array_equal(edges[0], e)
    np.testing.assert_array_equal(a_lt[0], np.searchsorted(xs, e, "left"))
    t = np.unique(np.concatenate([e, [xs[0], xs[-1]]]))
    np.testing.assert_array_equal(thr[0], t)
    np.testing.assert_array_equal(b_lt[0], np.searchsorted(ys, t, "left"))
    np.testing.assert_array_equal(b_le[0], np.searchsorted(ys, t, "right"))
    ks = _quiet(stats.ks_2samp, xs, ys)
    np.testing.assert_allclose(max(res[0, 1], res[0, 2]), ks.statistic, rtol=RTOL)
