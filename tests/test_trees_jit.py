"""Numba-JIT tree engine: bit-identical to the C++ engine and exact against the source libraries."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import forgeline.models as fm
from forgeline.errors import CompileError
from forgeline.models import trees as trees_mod
from forgeline.models import trees_jit

pytest.importorskip("numba")  # the optional `jit` extra; installed in CI
lgb = pytest.importorskip("lightgbm")
xgb = pytest.importorskip("xgboost")

import test_trees_lightgbm as tl  # noqa: E402 - sibling test helpers
import test_trees_sklearn as ts  # noqa: E402
import test_trees_xgboost as tx  # noqa: E402


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("jit-cache")


def _both(m, X, cache, **kw):
    """Raw and linked outputs of the native and the JIT engine, asserted bit-identical."""
    native = (m.predict_raw(X, **kw), m.predict(X, **kw))
    m.set_engine("jit", cache_dir=cache)
    assert m.engine == "jit"
    try:
        for nt in (1, 2):
            jit = (m.predict_raw(X, n_threads=nt, **kw), m.predict(X, n_threads=nt, **kw))
            for a, b in zip(native, jit):
                np.testing.assert_array_equal(a, b)
        return jit
    finally:
        m.set_engine("native")


_JIT_SETTINGS = settings(max_examples=3, deadline=None,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@_JIT_SETTINGS
@given(seed=st.integers(0, 2**31 - 1), objective=st.sampled_from(["binary", "multiclass", "regression"]),
       n_cat=st.integers(0, 2), missing=st.sampled_from(["nan", "zero", "none"]),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_lightgbm_jit_exact(cache, seed, objective, n_cat, missing, dtype):
    rng = np.random.default_rng(seed)
    extra = {"zero": {"zero_as_missing": True}, "none": {"use_missing": False}, "nan": {}}[missing]
    booster, _ = tl._train(rng, objective, n=300, n_cat=n_cat, rounds=4, extra=extra)
    X = tl._data(rng, 300, 5, 0.1, 0.1, n_cat).astype(dtype)
    X[:3, 0] = [1e-36, -1e-40, np.inf]  # LightGBM's zero window and inf
    if n_cat:
        X[3:6, 0] = [-1.0, 40.0, 2.5]  # negative, out-of-bitset, fractional category
    m = fm.import_model(booster)
    raw, _ = _both(m, X, cache)
    np.testing.assert_array_equal(raw, booster.predict(X, raw_score=True))


@_JIT_SETTINGS
@given(seed=st.integers(0, 2**31 - 1), objective=st.sampled_from(["binary:logistic", "multi:softprob",
                                                                   "reg:squarederror"]),
       n_cat=st.integers(0, 2), booster=st.sampled_from(["gbtree", "dart"]))
def test_xgboost_jit_exact(cache, seed, objective, n_cat, booster):
    rng = np.random.default_rng(seed)
    b, _ = tx._train(rng, objective, n=300, n_cat=n_cat, rounds=4, extra={"booster": booster})
    X = tx._data(rng, 300, 5, 0.1, n_cat)
    if n_cat:
        X[:3, 0] = [-1.0, 55.0, np.nan]
    m = fm.import_model(b)
    raw, _ = _both(m, X, cache)
    ref = b.predict(tx._dm(X, n_cat), output_margin=True)
    assert tx._ulps(raw, ref) == 0


@_JIT_SETTINGS
@given(seed=st.integers(0, 2**31 - 1), kind=st.sampled_from(["rf_clf", "hgb_clf", "gb_reg", "et_reg"]),
       n_classes=st.sampled_from([2, 3]), cat=st.booleans())
def test_sklearn_jit_exact(cache, seed, kind, n_classes, cat):
    rng = np.random.default_rng(seed)
    cat = cat and kind.startswith("hgb")
    nan = not kind.startswith("gb")
    X = ts._data(rng, 300, nan, cat)
    s = np.nan_to_num(X[:, 1]) + np.nan_to_num(X[:, 0] % 3)
    y = np.digitize(s, np.quantile(s, np.linspace(0, 1, n_classes + 1)[1:-1])) if "clf" in kind else s
    est = ts._make(kind, seed % 1000, cat).fit(X, y)
    m = fm.import_model(est)
    Xt = ts._data(rng, 200, nan, cat)
    if cat:
        Xt[:4, 0] = [9.0, 2.5, -1.0, 1e9]
    _both(m, Xt, cache)
    if "clf" in kind:
        m.set_engine("jit", cache_dir=cache)
        np.testing.assert_allclose(m.predict_proba(Xt), est.predict_proba(Xt), rtol=1e-12, atol=1e-15)


def test_cache_reuse_base_margin_and_bundle(cache, tmp_path):
    rng = np.random.default_rng(0)
    b, X = tx._train(rng, "binary:logistic", n=200, rounds=3)
    m = fm.import_model(b)
    assert not trees_jit.is_cached(m.settings, m.n_features, m._arrays, tmp_path)
    m.set_engine("jit", cache_dir=tmp_path)
    info = m.jit_info
    assert info["path"].startswith(str(tmp_path)) and not info["cached"]
    assert trees_jit.is_cached(m.settings, m.n_features, m._arrays, tmp_path)
    bm = rng.standard_normal(len(X))
    ref = b.predict(xgb.DMatrix(X, base_margin=bm), output_margin=True)
    assert tx._ulps(m.predict_raw(X, base_margin=bm), ref) == 0
    # Bundles hold arrays only: the JIT is regenerated, here found in the cache.
    meta, arrays = m.to_parts()
    assert "engine" not in meta["settings"] and all(isinstance(a, np.ndarray) for a in arrays.values())
    m2 = fm.model_from_parts(meta, arrays)
    assert m2.engine == "native"
    if m2._core.simd:  # the SIMD kernel takes every tree: auto keeps it
        assert m2.set_engine("auto", cache_dir=tmp_path).engine == "native"
        m2._core.simd = False
    m2.set_engine("auto", cache_dir=tmp_path)
    assert m2.engine == "jit" and m2.jit_info["cached"]
    np.testing.assert_array_equal(m2.predict_raw(X), m.predict_raw(X))
    # One row and zero rows go through the native row path / an empty result.
    assert m2.predict_raw(X[:1]).shape == (1,)
    assert m2.predict_raw(X[:0]).shape == (0,)


def test_auto_rule(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    b, X = tl._train(rng, "binary", n=200, rounds=3)
    m = fm.import_model(b)
    monkeypatch.setattr(trees_mod, "JIT_AUTO_COMPILE", True)
    if m._core.simd:  # the AVX-512 kernel takes every tree here: auto keeps the native engine
        assert m._core.n_qs_trees == m.n_trees
        assert m.set_engine("auto", cache_dir=tmp_path).engine == "native"
    monkeypatch.setattr(trees_mod, "JIT_AUTO_SIMD_FIRST", False)
    monkeypatch.setattr(trees_mod, "JIT_AUTO_COMPILE", False)
    # Not cached and JIT_AUTO_COMPILE off: auto never compiles behind the caller's back.
    assert m.set_engine("auto", cache_dir=tmp_path).engine == "native"
    monkeypatch.setattr(trees_mod, "JIT_AUTO_COMPILE", True)
    assert m.set_engine("auto", cache_dir=tmp_path).engine == "jit"
    monkeypatch.setattr(trees_mod, "JIT_AUTO_MAX_NODES", 1)
    assert m.set_engine("auto", cache_dir=tmp_path).engine == "native"
    monkeypatch.setattr(trees_mod, "JIT_AUTO_MAX_NODES", 10**9)
    monkeypatch.setattr(trees_jit, "numba_available", lambda: False)
    assert m.set_engine("auto", cache_dir=tmp_path).engine == "native"
    with pytest.raises(ValueError, match="engine must be"):
        m.set_engine("fast")


def test_without_numba(tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    b, X = tl._train(rng, "binary", n=200, rounds=2)
    m = fm.import_model(b)
    monkeypatch.setitem(sys.modules, "numba", None)  # import numba now raises ImportError
    monkeypatch.setattr(trees_jit, "numba_available", lambda: False)
    with pytest.raises(CompileError, match="needs numba"):
        m.set_engine("jit", cache_dir=tmp_path)
    assert m.set_engine("auto", cache_dir=tmp_path).engine == "native"
    assert m.predict_raw(X).shape == (len(X),)


def test_generator_limits(tmp_path):
    rng = np.random.default_rng(3)
    b, X = tl._train(rng, "binary", n=200, rounds=2)
    m = fm.import_model(b)
    with pytest.raises(CompileError, match="deeper than"):
        gen = trees_jit._Gen(m.settings, m.n_features, m._arrays)
        old = trees_jit.MAX_DEPTH
        trees_jit.MAX_DEPTH = 0
        try:
            gen.source()
        finally:
            trees_jit.MAX_DEPTH = old
    wide = dict(m.settings, n_outputs=trees_jit.MAX_OUTPUTS + 1)
    with pytest.raises(CompileError, match="at most"):
        trees_jit.JitEnsemble(wide, m.n_features, m._arrays, cache_dir=tmp_path)


def test_scorer_set_engine(tmp_path):
    import forgeline as fl

    rng = np.random.default_rng(4)
    b, X = tl._train(rng, "multiclass", n=300, rounds=3)
    scorer = fl.compile(b, sample=X)
    ref = scorer.predict_proba(X)
    assert scorer.set_engine("jit", cache_dir=tmp_path) is scorer
    assert scorer.model.engine == "jit"
    np.testing.assert_array_equal(scorer.predict_proba(X), ref)
    np.testing.assert_array_equal(scorer.predict_proba(X, n_threads=1), ref)
    path = tmp_path / "m.forge"
    scorer.save(path)
    assert fl.load(path).model.engine == "native"
    with pytest.raises(ValueError, match="engine must be"):
        scorer.set_engine("turbo")


def test_pred_contrib_is_named_unsupported():
    from forgeline.errors import UnsupportedModelError

    rng = np.random.default_rng(5)
    b, X = tl._train(rng, "binary", n=200, rounds=2)
    with pytest.raises(UnsupportedModelError, match="pred_contrib"):
        fm.import_model(b, pred_contrib=True)
    with pytest.raises(UnsupportedModelError, match="pred_contrib"):
        fm.import_model(b).predict_contrib(X)


def test_predict_one_lean_path():
    rng = np.random.default_rng(6)
    for objective in ("binary", "multiclass", "regression"):
        b, X = tl._train(rng, objective, n=200, rounds=3)
        m = fm.import_model(b)
        for Z in (X, X.astype(np.float32)):
            for i in (0, 7):
                np.testing.assert_array_equal(m.predict_one(Z[i], output="raw"),
                                              m.predict_raw(Z[i:i + 1]).reshape(-1))
                np.testing.assert_array_equal(m.predict_one(Z[i]),
                                              m._linked(Z[i:i + 2], 1)[0])
        # Strided rows and non-float rows are read correctly; wrong shapes are SchemaErrors.
        np.testing.assert_array_equal(m.predict_one(np.asfortranarray(X)[3]), m.predict_one(X[3].copy()))
        from forgeline.errors import SchemaError
        with pytest.raises(SchemaError):
            m.predict_one(X[0, :2])
        with pytest.raises(SchemaError):
            m.predict_one(np.array(["a"] * X.shape[1]))


def test_scorer_one_row_numpy_path():
    import pandas as pd

    import forgeline as fl

    rng = np.random.default_rng(7)
    b, X = tl._train(rng, "multiclass", n=300, rounds=3)
    scorer = fl.compile(b, sample=X)
    for Z in (X, X.astype(np.float32)):
        for i in (0, 5):
            for method in ("predict_proba", "predict_raw", "predict"):
                one = getattr(scorer, method)(Z[i:i + 1])
                ref = getattr(scorer, method)(Z[i:i + 2])[:1]
                np.testing.assert_array_equal(one, ref)
    # Named columns: a positional numpy row does not match the schema, so the general path
    # reports it as before.
    df = pd.DataFrame(X, columns=[f"f{j}" for j in range(X.shape[1])])
    named = fl.compile(b, sample=df)
    np.testing.assert_array_equal(named.predict_proba(df.iloc[:1]), scorer.predict_proba(X[:1]))
    with pytest.raises(fl.SchemaError):
        named.predict_proba(X[:1])
