"""Profile: fitting, merging, serialisation, hostile input and the sketch error bound."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from forgeline import BundleError, DriftError
from forgeline.drift import Profile, compare
from forgeline.drift import _sketch


def _frame(n=500, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    x[::17] = np.nan
    return pd.DataFrame({
        "x": x,
        "k": rng.integers(0, 5, n).astype(np.float64),
        "c": pd.Categorical(rng.choice(["a", "b", "c"], n)),
        "flag": rng.random(n) < 0.3,
        "t": pd.date_range("2024-01-01", periods=n, freq="h"),
    })


def test_fit_records_column_summaries():
    df = _frame()
    p = Profile.fit(df)
    x = p.columns["x"]
    valid = df["x"].dropna().to_numpy()
    assert x.n_rows == len(df) and x.n_missing == df["x"].isna().sum()
    assert x.min == valid.min() and x.max == valid.max()
    np.testing.assert_allclose(x.mean, valid.mean(), rtol=1e-12)
    np.testing.assert_allclose(x.variance, valid.var(ddof=1), rtol=1e-12)
    assert x.sample_complete and np.array_equal(x.sample, np.sort(valid))
    assert x.counts.sum() == valid.size
    c = p.columns["c"]
    assert dict(zip(c.categories, c.counts.tolist())) == df["c"].value_counts().to_dict()
    assert p.columns["flag"].kind == "boolean"
    assert p.columns["t"].kind == "datetime"


def test_profile_reference_is_exact_below_sample_size():
    df = _frame(800, 1)
    cur = _frame(600, 2)
    a = compare(df, cur, tests={"numeric": ["ks", "ad", "cvm", "t_test"]})
    b = compare(Profile.fit(df), cur, tests={"numeric": ["ks", "ad", "cvm", "t_test"]})
    for ra, rb in zip(a.results, b.results):
        assert (ra.column, ra.test) == (rb.column, rb.test)
        np.testing.assert_allclose(rb.statistic, ra.statistic, rtol=1e-9)
        np.testing.assert_allclose(rb.p_value, ra.p_value, rtol=1e-9)
    ks = stats.ks_2samp(df["x"].dropna(), cur["x"].dropna())
    row = next(r for r in b.results if r.column == "x" and r.test == "ks")
    np.testing.assert_allclose(row.p_value, ks.pvalue, rtol=1e-9)


@settings(max_examples=25, deadline=None)
@given(st.integers(2000, 20000), st.integers(0, 10_000), st.sampled_from([16, 64, 512]),
       st.floats(0.0, 0.5))
def test_sketch_ks_error_bound(n, seed, size, shift):
    rng = np.random.default_rng(seed)
    ref = np.round(rng.normal(size=n), 2)  # ties
    cur = rng.normal(shift, size=n // 2 + 1)
    p = Profile.fit({"x": ref}, sample_size=100, sketch_size=size)
    bound = p.rank_error("x")
    assert bound <= 1 / (2 * size) + 1e-12
    approx = next(r for r in compare(p, {"x": cur}, tests=["ks"]).results if r.test == "ks")
    assert approx.method == "sketch"
    exact = stats.ks_2samp(ref, cur).statistic
    assert abs(approx.statistic - exact) <= bound + 1e-12


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(100, 3000), min_size=2, max_size=5), st.integers(0, 1000))
def test_merged_sketch_bound_holds(sizes, seed):
    rng = np.random.default_rng(seed)
    parts = [np.round(rng.standard_t(3, size=k), 1) for k in sizes]
    prof = Profile.fit({"x": parts[0]}, sample_size=50, sketch_size=32)
    for part in parts[1:]:
        prof.partial_fit({"x": part})
    allv = np.sort(np.concatenate(parts))
    col = prof.columns["x"]
    bound = col.rank_error
    grid = np.unique(np.concatenate([allv, allv + 0.05, allv - 0.05]))
    truth = np.searchsorted(allv, grid, "right") / allv.size
    est = _sketch.cdf_mid(col.sketch, col.n_valid, grid)
    assert np.max(np.abs(est - truth)) <= bound + 1e-12
    # moments and counts merge exactly
    # a mean near zero is a cancelling sum: two correct summation orders differ by about
    # eps * mean|x|, so the tolerance is also relative to the data's magnitude
    np.testing.assert_allclose(col.mean, allv.mean(), rtol=1e-10, atol=1e-12 * np.abs(allv).mean())
    np.testing.assert_allclose(col.variance, allv.var(ddof=1), rtol=1e-9)
    assert col.n_valid == allv.size and col.min == allv[0] and col.max == allv[-1]


def test_merge_small_profiles_stays_exact():
    a, b = _frame(300, 1), _frame(200, 2)
    merged = Profile.fit(a).merge(Profile.fit(b))
    both = pd.concat([a, b], ignore_index=True)
    whole = Profile.fit(both)
    assert merged.columns["x"].sample_complete
    np.testing.assert_array_equal(merged.columns["x"].sample, whole.columns["x"].sample)
    assert merged.columns["c"].counts.sum() == whole.columns["c"].counts.sum()
    with pytest.raises(DriftError, match="different columns"):
        Profile.fit(a).merge(Profile.fit(a[["x"]]))


def test_large_column_is_sampled_deterministically_and_small():
    rng = np.random.default_rng(0)
    data = {f"x{i}": rng.normal(size=200_000) for i in range(3)}
    p1 = Profile.fit(data)
    p2 = Profile.fit(data)
    col = p1.columns["x0"]
    assert not col.sample_complete and col.sample.size == 10_000
    np.testing.assert_array_equal(col.sample, p2.columns["x0"].sample)
    size = len(json.dumps(p1.to_dict())) / 3
    assert size <= 150_000  # base64 adds a third to the ~100 KB of arrays
    meta, arrays = p1.to_parts()
    assert sum(a.nbytes for a in arrays.values()) / 3 <= 105_000


def test_category_cap_keeps_heavy_hitters():
    vals = np.array(["h1"] * 50 + ["h2"] * 40 + [f"r{i}" for i in range(30)], dtype=object)
    p = Profile.fit({"c": vals}, max_categories=5)
    c = p.columns["c"]
    assert c.truncated and len(c.categories) == 5
    assert {"h1", "h2"} <= set(c.categories)
    assert c.counts.sum() + c.other == vals.size


def test_dict_roundtrip_and_json_safety():
    p = Profile.fit(_frame(), prediction=np.linspace(0, 1, 500), target=np.arange(500) % 2)
    d = json.loads(json.dumps(p.to_dict(), allow_nan=False))
    q = Profile.from_dict(d)
    assert q.names == p.names and "__prediction__" in q.names
    for name in p.names:
        a, b = p.columns[name], q.columns[name]
        assert a.meta() == b.meta()
        for k, v in a.arrays().items():
            np.testing.assert_array_equal(v, b.arrays()[k])
    meta, arrays = p.to_parts()
    r = Profile.from_parts(json.loads(json.dumps(meta)), arrays)
    assert r.names == p.names


def _parts():
    return Profile.fit(_frame()).to_parts()


@pytest.mark.parametrize("mutate", [
    lambda m, a: m.update(format="other"),
    lambda m, a: m.update(version=99),
    lambda m, a: m["columns"][0].update(n_missing=10**9),
    lambda m, a: m["columns"][0].update(kind="weird"),
    lambda m, a: m["columns"][0].update(mean="x"),
    lambda m, a: a.update({"c0/sample": a["c0/sample"][::-1].copy()}),
    lambda m, a: a.update({"c0/counts": a["c0/counts"] + 1}),
    lambda m, a: a.update({"c0/sketch_le_hi": a["c0/sketch_le_hi"] * 1000}),
    lambda m, a: a.pop("c0/edges"),
    lambda m, a: a.update({"c0/sample": a["c0/sample"].astype(np.float32)}),
    lambda m, a: m["columns"][2].update(categories=[{"x": 1}]),
    lambda m, a: m["columns"].append(dict(m["columns"][0])),
    lambda m, a: m["params"].update(sample_size=-1),
])
def test_from_parts_rejects_hostile_input(mutate):
    meta, arrays = _parts()
    meta = json.loads(json.dumps(meta))
    arrays = dict(arrays)
    mutate(meta, arrays)
    with pytest.raises(BundleError):
        Profile.from_parts(meta, arrays)


@pytest.mark.parametrize("bad", [
    None, {"meta": {}}, {"meta": {}, "arrays": []},
    {"meta": {}, "arrays": {"c0/x": {"dtype": "|O", "shape": [1], "data": ""}}},
    {"meta": {}, "arrays": {"c0/x": {"dtype": "<f8", "shape": [2], "data": "AAAA"}}},
    {"meta": {}, "arrays": {"c0/x": {"dtype": "<f8", "shape": [1], "data": "!!"}}},
])
def test_from_dict_rejects_bad_input(bad):
    with pytest.raises(DriftError):
        Profile.from_dict(bad)


def test_bad_parameters():
    with pytest.raises(DriftError, match="sample_size"):
        Profile.fit({"x": np.ones(3)}, sample_size=0)
    with pytest.raises(DriftError, match="prediction"):
        Profile.fit({"x": np.ones(3)}, prediction=np.ones(4))
    with pytest.raises(DriftError, match="not a numeric"):
        Profile.fit({"x": np.ones(3)}).rank_error("nope")


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.0, 1.0), st.sampled_from([16, 128, 512]))
def test_binned_wasserstein_error_bound(seed, shift, size):
    rng = np.random.default_rng(seed)
    ref = rng.standard_t(4, size=15_000)
    cur = rng.normal(shift, 1.3, size=4000)
    p = Profile.fit({"x": ref}, sample_size=100, sketch_size=size)
    row = next(r for r in compare(p, {"x": cur}, tests=["wasserstein"]).results
               if r.test == "wasserstein")
    bound = float(row.note.split("<=")[1])
    exact = stats.wasserstein_distance(ref, cur)
    assert row.method == "binned"
    assert abs(row.statistic - exact) <= bound * (1 + 1e-5)
