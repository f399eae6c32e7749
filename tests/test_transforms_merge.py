"""Mergeable fitting: partial_fit / merge equal one fit; the quantile sketch's error bound."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

import forgeline.transforms as ft
from forgeline.errors import InputError, SchemaError


def _data(n=3000, p=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.lognormal(0, 1, (n, p))
    X[:, 1] = np.round(X[:, 1])
    X[rng.random(X.shape) < 0.1] = np.nan
    return X


def _chunks(X, k=5):
    return np.array_split(X, k)


@pytest.mark.parametrize("cls,attrs", [
    (ft.StandardScaler, ("mean_", "var_", "scale_")),
    (ft.MinMaxScaler, ("data_min_", "data_max_", "scale_", "min_")),
    (ft.MaxAbsScaler, ("max_abs_", "scale_")),
])
def test_moment_scalers_partial_fit_and_merge(cls, attrs):
    X = _data()
    full = cls().fit(X)
    inc = cls()
    for c in _chunks(X):
        inc.partial_fit(c)
    a, b = cls(), cls()
    for c in _chunks(X[:1700], 3):
        a.partial_fit(c)
    b.partial_fit(X[1700:])
    merged = a.merge(b)
    for t in (inc, merged):
        for attr in attrs:
            assert_allclose(getattr(t, attr), getattr(full, attr), rtol=1e-12)
        # states agree to rtol 1e-12; outputs that cancel (x ~ mean_) need an absolute bound
        assert_allclose(t.transform(X), full.transform(X), rtol=1e-12, atol=1e-12,
                        equal_nan=True)
    assert_array_equal(inc.n_samples_seen_, full.n_samples_seen_)
    if cls is ft.MinMaxScaler:  # min/max are exact
        assert_array_equal(inc.data_min_, full.data_min_)
        assert_array_equal(merged.data_max_, full.data_max_)


@pytest.mark.parametrize("strategy", ["mean", "median", "most_frequent", "constant"])
def test_imputer_partial_fit_equals_fit(strategy):
    X = _data()
    full = ft.SimpleImputer(strategy=strategy, add_indicator=True).fit(X)
    inc = ft.SimpleImputer(strategy=strategy, add_indicator=True)
    for c in _chunks(X):
        inc.partial_fit(c)
    if strategy == "mean":
        assert_allclose(inc.statistics_, full.statistics_, rtol=1e-12)
    else:  # median: exact while under the sketch's exact limit; modes/constants exact
        assert_array_equal(inc.statistics_, full.statistics_)
    assert_array_equal(inc._indicator_features, full._indicator_features)


@pytest.mark.parametrize("make", [
    lambda: ft.RobustScaler(), lambda: ft.Winsorizer(quantile_range=(5.0, 95.0)),
    lambda: ft.KBinsDiscretizer(n_bins=6, encode="ordinal"),
    lambda: ft.KBinsDiscretizer(n_bins=6, encode="ordinal", strategy="uniform"),
])
def test_quantile_transformers_exact_while_small(make):
    X = _data()
    if isinstance(make(), ft.KBinsDiscretizer):
        X = np.nan_to_num(X, nan=0.5)
        X[:, 1] += np.linspace(0, 0.5, X.shape[0])  # no collapsing bins (their warning)
    full = make().fit(X)
    a, b = make(), make()
    for c in _chunks(X[:2000], 4):
        a.partial_fit(c)
    b.partial_fit(X[2000:])
    a.merge(b)
    assert_allclose(a.transform(X), full.transform(X), rtol=1e-12, equal_nan=True)


def test_one_hot_frequencies_merge_exactly():
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"c": rng.choice(list("abcdefg"), 900, p=[.3, .2, .2, .1, .1, .06, .04]),
                       "d": rng.integers(0, 4, 900)})
    kw = dict(min_frequency=40, handle_unknown="infrequent_if_exist", sparse_output=False)
    full = ft.OneHotEncoder(**kw).fit(df)
    parts = [ft.OneHotEncoder(**kw).partial_fit(df.iloc[i:i + 300]) for i in range(0, 900, 300)]
    merged = parts[0].merge(parts[1]).merge(parts[2])
    assert [list(map(str, c)) for c in merged.categories_] == [list(map(str, c)) for c in
                                                              full.categories_]
    assert_array_equal(merged.transform(df), full.transform(df))
    counts = ft.CountEncoder().partial_fit(df.iloc[:450]).partial_fit(df.iloc[450:])
    assert_array_equal(counts.transform(df), ft.CountEncoder().fit(df).transform(df))


def test_merge_rejects_different_columns():
    a = ft.StandardScaler().partial_fit(_data(p=3))
    b = ft.StandardScaler().partial_fit(_data(p=4))
    with pytest.raises(SchemaError):
        a.merge(b)
    with pytest.raises(InputError):
        ft.StandardScaler().merge(a)


@given(st.integers(1, 40_000), st.sampled_from([16, 64, 256]), st.integers(1, 7),
       st.integers(0, 1000))
@settings(max_examples=25, deadline=None)
def test_sketch_rank_error_within_stated_bound(n, k, n_parts, seed):
    rng = np.random.default_rng(seed)
    x = np.round(rng.standard_t(3, n), int(rng.integers(0, 4)))  # heavy tails and ties
    parts = np.array_split(x, n_parts)
    sketches = [ft.QuantileSketch(k=k, exact_limit=int(rng.integers(0, 3000))).update(p)
                for p in parts]
    s = sketches[0]
    for o in sketches[1:]:
        s = s.merge(o)
    assert s.n == n
    xs = np.sort(x)
    probes = np.concatenate([xs[:: max(1, n // 200)], [xs[-1], xs[0] - 1]])
    true = np.searchsorted(xs, probes, side="right")
    est = np.array([s.rank(v) for v in probes])
    assert np.max(np.abs(est - true)) <= s.rank_error_bound() + 1e-9


def test_sketch_exact_and_deterministic():
    x = np.random.default_rng(5).normal(size=5000)
    s = ft.QuantileSketch(exact_limit=10_000).update(x[:2000]).update(x[2000:])
    assert s.rank_error_bound() == 0
    assert_array_equal(s.quantiles([0.1, 0.5, 0.9]), np.percentile(x, [10, 50, 90]))
    a = ft.QuantileSketch(k=32, exact_limit=0).update(x)
    b = ft.QuantileSketch(k=32, exact_limit=0).update(x)
    assert_array_equal(a.quantiles([0.25, 0.75]), b.quantiles([0.25, 0.75]))


def test_partial_states_pickle_and_merge_across_processes():
    import pickle
    X = _data(4000)
    parts = [pickle.loads(pickle.dumps(ft.SimpleImputer(strategy="median", sketch_exact_limit=500)
                                       .partial_fit(c))) for c in _chunks(X, 4)]
    merged = parts[0]
    for p in parts[1:]:
        merged = merged.merge(p)
    exact = ft.SimpleImputer(strategy="median").fit(X)
    # sketch mode (exact_limit 500 < 1000 rows per part): within the stated rank error
    for j in range(X.shape[1]):
        col = np.sort(X[~np.isnan(X[:, j]), j])
        lo = np.searchsorted(col, merged.statistics_[j], side="left")
        hi = np.searchsorted(col, merged.statistics_[j], side="right")
        bound = merged._acc["sk"][j].rank_error_bound()
        assert lo - bound - 1 <= col.size / 2 <= hi + bound + 1  # ties span [lo, hi]
    assert merged.statistics_.shape == exact.statistics_.shape


def test_sketch_deep_levels_rank_and_quantile_error_within_bound():
    # Many levels (n / 2k ~ 2000): chunked updates, merges in a tree, infinities and ties.
    rng = np.random.default_rng(11)
    x = np.concatenate([rng.lognormal(0, 2, 150_000), -rng.exponential(1, 100_000),
                        np.zeros(20_000), [np.inf, -np.inf] * 10, np.full(30_000, 3.5)])
    rng.shuffle(x)
    k = 64
    leaves = [ft.QuantileSketch(k=k, exact_limit=0) for _ in range(4)]
    for i, part in enumerate(np.array_split(x, 40)):
        leaves[i % 4].update(part)
    s = leaves[0].merge(leaves[1]).merge(leaves[2].merge(leaves[3]))
    assert s.n == x.size
    assert sum(lv.size * 2 ** h for h, lv in enumerate(s.levels)) == x.size  # weight kept
    assert all(np.all(np.diff(lv) >= 0) for lv in s.levels[1:])
    xs = np.sort(x)
    bound = s.rank_error_bound()
    assert 0 < bound < 0.2 * x.size
    probes = np.unique(xs[:: x.size // 500])
    est = np.array([s.rank(v) for v in probes])
    assert np.max(np.abs(est - np.searchsorted(xs, probes, side="right"))) <= bound
    q = np.linspace(0, 1, 41)
    got = s.quantiles(q)
    lo = np.searchsorted(xs, got, side="left")
    hi = np.searchsorted(xs, got, side="right")
    target = q * (x.size - 1)
    assert np.all((lo - bound - 1 <= target) & (target <= hi + bound))


def test_sketch_native_updates_do_not_depend_on_thread_count():
    from forgeline.transforms._sketch import QuantileSketch, merge_many, update_many
    rng = np.random.default_rng(3)
    cols = [rng.normal(size=50_000) for _ in range(5)]
    one = update_many([QuantileSketch(k=128, exact_limit=0) for _ in cols], cols, n_threads=1)
    two = update_many([QuantileSketch(k=128, exact_limit=0) for _ in cols], cols, n_threads=2)
    m1, m2 = merge_many(one, two, n_threads=1), merge_many(two, one, n_threads=3)
    for a, b in list(zip(one, two)) + list(zip(m1, m2)):
        assert a.offsets == b.offsets and len(a.levels) == len(b.levels)
        for la, lb in zip(a.levels, b.levels):
            assert_array_equal(la, lb)
