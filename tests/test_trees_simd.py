"""The QuickScorer SIMD batch kernel (cpp/src/trees_qs.cpp) against the tree walk and the source.

Every model is scored with the kernel on and off: results must be bit-identical (same
comparisons, same per-row summation order), and equal to the source library's predict.
Row counts cover 0, 1, a partial 16-row group and several groups; the models cover trees the
kernel takes (<= 64 leaves, numeric splits, NaN default directions) and trees it leaves to the
walk (categorical, LightGBM Zero-missing, > 64 leaves), alone and mixed in one ensemble.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import forgeline.models as fm

lgb = pytest.importorskip("lightgbm")
xgb = pytest.importorskip("xgboost")

ROWS = [0, 1, 15, 16, 17, 33, 300]


def _X(rng, n, f, nan_frac=0.05, zero_frac=0.05, n_cat=0, dtype=np.float64, inf=True):
    X = rng.standard_normal((n, f))
    X[rng.random(X.shape) < zero_frac] = 0.0
    X[rng.random(X.shape) < nan_frac] = np.nan
    for j in range(n_cat):
        X[:, j] = rng.integers(0, 10, n)
        X[rng.random(n) < nan_frac, j] = np.nan
    if inf and n and f > 1:
        X[0, 1] = np.inf  # infinities compare like any value
        X[-1, 1] = -np.inf
    return X.astype(dtype)


def _both(m, X, **kw):
    """Raw margins with the SIMD kernel and with the walk; they must be identical."""
    core = m._core
    try:
        core.simd = True
        a = m.predict_raw(X, **kw)
        core.simd = False
        b = m.predict_raw(X, **kw)
    finally:
        core.simd = True
    np.testing.assert_array_equal(a, b)
    return a


def _lgb(rng, objective="binary", n=400, f=6, n_cat=0, leaves=15, rounds=10, extra=None, **data):
    X = _X(rng, n, f, n_cat=n_cat, **data)
    s = np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, -1]) + 0.3 * rng.standard_normal(n)
    y = (s > 0).astype(int) if objective == "binary" else np.digitize(s, [-0.5, 0.5])
    params = dict(objective=objective, num_leaves=leaves, min_data_in_leaf=3, min_data_per_group=3,
                  cat_smooth=1, verbose=-1, num_threads=1, deterministic=True)
    if objective == "multiclass":
        params["num_class"] = 3
    params.update(extra or {})
    ds = lgb.Dataset(X, y, categorical_feature=list(range(n_cat)) if n_cat else "auto")
    return lgb.train(params, ds, rounds)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", ["nan", "none", "zero", "categorical", "multiclass", "dart", "wide"])
def test_lightgbm_simd_matches_walk_and_source(case, dtype):
    rng = np.random.default_rng(7)
    kw = {}
    if case == "none":
        kw = dict(extra=dict(use_missing=False))
    elif case == "zero":
        kw = dict(extra=dict(zero_as_missing=True))
    elif case == "categorical":
        kw = dict(n_cat=2)
    elif case == "multiclass":
        kw = dict(objective="multiclass")
    elif case == "dart":
        kw = dict(extra=dict(boosting="dart", drop_rate=0.3))
    elif case == "wide":  # > 64 leaves: those trees fall back to the walk
        kw = dict(leaves=90, n=3000, f=8, extra=dict(min_data_in_leaf=2))
    booster = _lgb(rng, **kw)
    m = fm.import_model(booster)
    if case in ("nan", "none", "multiclass", "dart"):
        assert m._core.n_qs_trees == m.n_trees
    if case == "zero":
        assert m._core.n_qs_trees < m.n_trees
    for n in ROWS:
        X = _X(np.random.default_rng(n), n, booster.num_feature(), n_cat=kw.get("n_cat", 0), dtype=dtype)
        raw = _both(m, X)
        ref = booster.predict(X.astype(np.float64), raw_score=True) if n else np.zeros((0,))
        np.testing.assert_array_equal(raw, ref.reshape(raw.shape))


def test_lightgbm_mixed_ensemble_keeps_tree_order():
    # Small trees (some with categorical splits) and > 64-leaf trees in one booster: the
    # kernel's trees and the walked trees are summed in one pass, still in tree order.
    rng = np.random.default_rng(3)
    X = _X(rng, 3000, 8, n_cat=2)
    y = (np.nan_to_num(X[:, 3]) + np.nan_to_num(X[:, 5]) > 0).astype(int)
    p = dict(objective="binary", num_leaves=7, min_data_in_leaf=2, verbose=-1, num_threads=1,
             deterministic=True, min_data_per_group=3, cat_smooth=1, feature_fraction=0.4, seed=2)
    ds = lgb.Dataset(X, y, categorical_feature=[0, 1], free_raw_data=False)
    booster = lgb.train(p, ds, 4)
    booster = lgb.train(dict(p, num_leaves=100), ds, 4, init_model=booster)
    booster = lgb.train(p, ds, 4, init_model=booster)
    m = fm.import_model(booster)
    assert 0 < m._core.n_qs_trees < m.n_trees
    for n in (1, 17, 257):
        Xn = _X(np.random.default_rng(n), n, 8, n_cat=2, dtype=np.float32)
        np.testing.assert_array_equal(_both(m, Xn), booster.predict(Xn, raw_score=True))


def test_lightgbm_threads_and_iteration_range():
    rng = np.random.default_rng(5)
    booster = _lgb(rng, rounds=20)
    X = _X(rng, 1000, 6, dtype=np.float32)
    m = fm.import_model(booster)
    one = m.predict_raw(X, n_threads=1)
    np.testing.assert_array_equal(one, m.predict_raw(X, n_threads=2))
    np.testing.assert_array_equal(one, booster.predict(X, raw_score=True))
    part = fm.import_model(booster, num_iteration=7, start_iteration=3)
    np.testing.assert_array_equal(_both(part, X),
                                  booster.predict(X, raw_score=True, num_iteration=7, start_iteration=3))


@pytest.mark.parametrize("case", ["binary", "multiclass", "categorical", "dart", "base_margin"])
def test_xgboost_simd_matches_walk_and_source(case):
    rng = np.random.default_rng(11)
    n_cat = 2 if case == "categorical" else 0
    X = _X(rng, 500, 6, n_cat=n_cat, dtype=np.float32, inf=False)
    s = np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, -1])
    params = dict(tree_method="hist", max_depth=5, eta=0.3, nthread=1)
    if case == "multiclass":
        params.update(objective="multi:softprob", num_class=3)
        y = np.digitize(s, [-0.5, 0.5])
    else:
        params.update(objective="binary:logistic")
        y = (s > 0).astype(int)
    if case == "dart":
        params.update(booster="dart", rate_drop=0.3)
    ft = ["c"] * n_cat + ["q"] * (6 - n_cat) if n_cat else None
    if n_cat:
        params.update(max_cat_to_onehot=1)
    dtrain = xgb.DMatrix(X, y, feature_types=ft, enable_categorical=bool(n_cat))
    booster = xgb.train(params, dtrain, 10)
    m = fm.import_model(booster)
    for n in ROWS:
        Xn = _X(np.random.default_rng(n + 1), n, 6, n_cat=n_cat, dtype=np.float32, inf=False)
        if n == 0:  # XGBoost warns on an empty DMatrix
            assert _both(m, Xn).shape[0] == 0
            continue
        dm = xgb.DMatrix(Xn, feature_types=ft, enable_categorical=bool(n_cat))
        kw = {}
        if case == "base_margin":
            bm = np.linspace(-1, 1, n)
            dm.set_base_margin(bm)
            kw = dict(base_margin=bm)
        raw = _both(m, Xn, **kw)
        ref = booster.predict(dm, output_margin=True)
        np.testing.assert_allclose(raw, ref.reshape(raw.shape), rtol=0, atol=0)


@pytest.mark.parametrize("est", ["rf_shallow", "rf_deep", "extra", "hgb_cat"])
def test_sklearn_simd_matches_walk_and_source(est):
    from sklearn.ensemble import ExtraTreesRegressor, HistGradientBoostingClassifier, RandomForestClassifier

    rng = np.random.default_rng(13)
    X = _X(rng, 600, 5, nan_frac=0.0, zero_frac=0.0, inf=False)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    if est == "rf_shallow":
        model = RandomForestClassifier(10, max_depth=4, random_state=0).fit(X, y)
    elif est == "rf_deep":  # trees beyond 64 leaves: walked
        model = RandomForestClassifier(5, random_state=0).fit(X, y)
    elif est == "extra":
        model = ExtraTreesRegressor(8, max_leaf_nodes=40, random_state=0).fit(X, X[:, 0])
    else:
        Xc = _X(rng, 600, 5, nan_frac=0.05, zero_frac=0.0, inf=False)
        Xc[:, 0] = rng.integers(0, 6, 600)
        X = Xc
        model = HistGradientBoostingClassifier(max_iter=10, categorical_features=[0], random_state=0).fit(X, y)
    m = fm.import_model(model)
    for n in ROWS:
        Xn = X[:n]
        _both(m, Xn)
        if n and est == "extra":
            np.testing.assert_allclose(m.predict(Xn), model.predict(Xn), rtol=1e-12, atol=1e-15)
        elif n:
            np.testing.assert_allclose(m.predict_proba(Xn), model.predict_proba(Xn), rtol=1e-12, atol=1e-15)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), leaves=st.integers(2, 70), n=st.integers(0, 40),
       nan_frac=st.sampled_from([0.0, 0.1, 0.5]), f32=st.booleans(),
       missing=st.sampled_from(["nan", "none", "zero"]))
def test_lightgbm_simd_hypothesis(seed, leaves, n, nan_frac, f32, missing):
    rng = np.random.default_rng(seed)
    extra = {"none": dict(use_missing=False), "zero": dict(zero_as_missing=True), "nan": {}}[missing]
    booster = _lgb(rng, n=600, f=4, leaves=leaves, rounds=5, nan_frac=nan_frac,
                   extra=dict(extra, min_data_in_leaf=2))
    m = fm.import_model(booster)
    X = _X(rng, n, 4, nan_frac=nan_frac, dtype=np.float32 if f32 else np.float64)
    raw = _both(m, X)
    if n:
        np.testing.assert_array_equal(raw, booster.predict(X.astype(np.float64), raw_score=True))


def _one_row_paths(m, X):
    """predict_one per row, kernels on and off, against the batch kernel on all rows."""
    core = m._core
    batch = np.atleast_2d(m.predict_raw(X).T).T if len(X) else None
    for i, x in enumerate(X):
        try:
            core.simd = True
            a = m.predict_one(x, output="raw")
            core.simd = False
            b = m.predict_one(x, output="raw")
        finally:
            core.simd = True
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, batch[i])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", ["nan", "none", "zero", "categorical", "multiclass", "dart", "wide",
                                  "many_features"])
def test_lightgbm_one_row_paths(case, dtype):
    rng = np.random.default_rng(17)
    kw = {"none": dict(extra=dict(use_missing=False)), "zero": dict(extra=dict(zero_as_missing=True)),
          "categorical": dict(n_cat=2), "multiclass": dict(objective="multiclass"),
          "dart": dict(extra=dict(boosting="dart", drop_rate=0.3)),
          "wide": dict(leaves=90, n=3000, f=8, extra=dict(min_data_in_leaf=2)),
          "many_features": dict(f=70, n=600)}.get(case, {})
    booster = _lgb(rng, **kw)
    m = fm.import_model(booster)
    X = _X(np.random.default_rng(2), 40, booster.num_feature(), n_cat=kw.get("n_cat", 0), dtype=dtype)
    X[3] = np.nan  # an all-NaN row
    _one_row_paths(m, X)
    ref = booster.predict(X.astype(np.float64), raw_score=True)
    np.testing.assert_array_equal(np.stack([m.predict_one(x, output="raw") for x in X]).reshape(ref.shape), ref)
    p = booster.predict(X[:5].astype(np.float64))
    got = np.stack([m.predict_one(x) for x in X[:5]])
    np.testing.assert_allclose(got.reshape(p.shape), p, rtol=1e-12, atol=0)


@pytest.mark.parametrize("case", ["binary", "multiclass", "categorical"])
def test_xgboost_one_row_paths(case):
    rng = np.random.default_rng(19)
    n_cat = 2 if case == "categorical" else 0
    X = _X(rng, 400, 6, n_cat=n_cat, dtype=np.float32, inf=False)
    s = np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, -1])
    params = dict(tree_method="hist", max_depth=5, eta=0.3, nthread=1, objective="binary:logistic")
    y = (s > 0).astype(int)
    if case == "multiclass":
        params.update(objective="multi:softprob", num_class=3)
        y = np.digitize(s, [-0.5, 0.5])
    ft = ["c"] * n_cat + ["q"] * (6 - n_cat) if n_cat else None
    booster = xgb.train(params, xgb.DMatrix(X, y, feature_types=ft, enable_categorical=bool(n_cat)), 8)
    m = fm.import_model(booster)
    Xn = X[:30]
    _one_row_paths(m, Xn)
    ref = booster.predict(xgb.DMatrix(Xn, feature_types=ft, enable_categorical=bool(n_cat)), output_margin=True)
    got = np.stack([m.predict_one(x, output="raw") for x in Xn])
    np.testing.assert_array_equal(got.reshape(ref.shape), ref)


def test_sklearn_one_row_paths():
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(23)
    X = _X(rng, 300, 5, nan_frac=0.0, zero_frac=0.0, inf=False)
    model = RandomForestClassifier(6, max_depth=4, random_state=0).fit(X, (X[:, 0] > 0).astype(int))
    m = fm.import_model(model)
    _one_row_paths(m, X[:20])
    _one_row_paths(m, X[:20].astype(np.float32))
    got = np.stack([m.predict_one(x) for x in X[:20]])
    np.testing.assert_allclose(got.reshape(-1, 2)[:, -1] if got.ndim == 2 and got.shape[1] == 2 else got.ravel(),
                               model.predict_proba(X[:20])[:, 1], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("source", ["lightgbm", "hgb"])
def test_one_row_float64_rows_holding_float32_values(source):
    # A float64 row whose values are all float32 numbers takes the float32 node copy (exact
    # for such values); a row with one value that is not stays on float64 nodes.
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(29)
    X = _X(rng, 500, 6, inf=False).astype(np.float32).astype(np.float64)
    y = (np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) > 0).astype(int)
    if source == "lightgbm":
        model = lgb.train(dict(objective="binary", num_leaves=15, verbose=-1, num_threads=1), lgb.Dataset(X, y), 10)
        ref = lambda Z: model.predict(Z, raw_score=True)  # noqa: E731
    else:
        X[:, 2] = rng.integers(0, 5, len(X))
        model = HistGradientBoostingClassifier(max_iter=10, categorical_features=[2], random_state=0).fit(X, y)
        ref = model.decision_function
    m = fm.import_model(model)
    Z = X[:30].copy()
    Z[1::2, 1] += 1e-9  # odd rows: not float32-representable
    Z[1::2, 1] = np.where(Z[1::2, 1] == Z[1::2, 1].astype(np.float32), Z[1::2, 1] + 1e-7, Z[1::2, 1])
    # thresholds sit between data values; values just next to them probe the rounding
    got = np.array([m.predict_one(z, output="raw")[0] for z in Z])
    np.testing.assert_array_equal(got, ref(Z))
    _one_row_paths(m, Z)
    # Batches too: a block of float32 values takes the float32 nodes, a mixed one does not.
    for B in (X[:300], Z):
        np.testing.assert_array_equal(_both(m, B), ref(B))


def _lgb_thresholds(booster):
    out = []

    def walk(node):
        if "split_feature" in node:
            if node.get("decision_type") == "<=":
                out.append((node["split_feature"], float(node["threshold"])))
            walk(node["left_child"])
            walk(node["right_child"])
    for t in booster.dump_model()["tree_info"]:
        walk(t["tree_structure"])
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_values_at_thresholds(dtype):
    # Rows whose values sit on, and one ulp either side of, split thresholds (in float64 and
    # rounded to float32): the kernels must compare exactly as LightGBM does.
    rng = np.random.default_rng(31)
    booster = _lgb(rng, n=800, f=5, leaves=31, rounds=15)
    m = fm.import_model(booster)
    rows = []
    for f, t in _lgb_thresholds(booster)[:120]:
        if not abs(t) < 1e38:
            continue
        for v in (t, np.nextafter(t, np.inf), np.nextafter(t, -np.inf), float(np.float32(t)),
                  float(np.nextafter(np.float32(t), np.float32(np.inf)))):
            r = np.nan_to_num(_X(rng, 1, 5, inf=False)[0], nan=0.5)
            r[f] = v
            rows.append(r)
    X = np.array(rows).astype(dtype)
    ref = booster.predict(X.astype(np.float64), raw_score=True)
    np.testing.assert_array_equal(_both(m, X), ref)
    np.testing.assert_array_equal(np.array([m.predict_one(x, output="raw")[0] for x in X]), ref)
