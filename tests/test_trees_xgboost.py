"""XGBoost importer: oracle tests against Booster.predict (float32 margins and links exact)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import forgeline.models as fm
from forgeline.errors import SchemaError, UnsupportedModelError

xgb = pytest.importorskip("xgboost")

OBJECTIVES = ["binary:logistic", "reg:logistic", "binary:logitraw", "reg:squarederror",
              "count:poisson", "reg:gamma", "reg:tweedie", "multi:softprob", "multi:softmax",
              "rank:pairwise", "rank:ndcg"]


def _data(rng, n, f, nan_frac, n_cat):
    X = rng.standard_normal((n, f)).astype(np.float64)
    X[rng.random(X.shape) < nan_frac] = np.nan
    for j in range(n_cat):
        X[:, j] = rng.integers(0, 10, n)
        X[rng.random(n) < nan_frac, j] = np.nan
    return X


def _target(rng, X, objective):
    s = np.nan_to_num(X[:, 0]) * 0.3 + np.nan_to_num(X[:, -1]) + 0.3 * rng.standard_normal(len(X))
    if objective.startswith("multi"):
        return np.digitize(s, [-0.5, 0.5])
    if objective in ("binary:logistic", "binary:logitraw", "reg:logistic"):
        return (s > 0).astype(float)
    if objective in ("count:poisson", "reg:gamma", "reg:tweedie"):
        return np.exp(s / 2)
    if objective.startswith("rank"):
        return np.clip(np.digitize(s, [-1, 0, 1]), 0, 3)
    return s


def _dm(X, n_cat, y=None):
    types = ["c"] * n_cat + ["q"] * (X.shape[1] - n_cat)
    return xgb.DMatrix(X, y, feature_types=types, enable_categorical=n_cat > 0)


def _train(rng, objective, n=400, f=5, n_cat=0, nan_frac=0.05, rounds=6, extra=None):
    X = _data(rng, n, f, nan_frac, n_cat)
    d = _dm(X, n_cat, _target(rng, X, objective))
    if objective.startswith("rank"):
        d.set_group([n // 2, n - n // 2])
    params = dict(objective=objective, max_depth=4, nthread=1, max_cat_to_onehot=1)
    if objective.startswith("multi"):
        params["num_class"] = 3
    params.update(extra or {})
    return xgb.train(params, d, rounds), X


def _ulps(a, b):
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    return np.abs(a.view(np.int32).astype(np.int64) - b.view(np.int32).astype(np.int64)).max(initial=0)


def _check(booster, X, n_cat=0, **kw):
    m = fm.import_model(booster, **kw)
    pk = {"iteration_range": kw["iteration_range"]} if "iteration_range" in kw else {}
    ref = booster.predict(_dm(X, n_cat), output_margin=True, **pk)
    raw = m.predict_raw(X)
    assert raw.shape == ref.shape
    assert _ulps(raw, ref) == 0
    ref_p = booster.predict(_dm(X, n_cat), **pk)
    obj = m.source["objective"]
    if obj == "multi:softmax":
        assert (m.predict(X) == ref_p).all()
    elif m.task in ("binary", "multiclass"):
        p = m.predict_proba(X)
        p = p[:, 1] if p.shape[1] == 2 and ref_p.ndim == 1 else p
        assert _ulps(p, ref_p) == 0
    else:
        assert _ulps(m.predict(X), ref_p) == 0
    return m


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), objective=st.sampled_from(OBJECTIVES),
       n_cat=st.integers(0, 2), nan_frac=st.sampled_from([0.0, 0.1, 0.4]),
       booster=st.sampled_from(["gbtree", "dart"]), parallel=st.sampled_from([1, 2]))
def test_random_models_match(seed, objective, n_cat, nan_frac, booster, parallel):
    rng = np.random.default_rng(seed)
    extra = dict(booster=booster, num_parallel_tree=parallel)
    if booster == "dart":
        extra.update(rate_drop=0.3, skip_drop=0.0)
    bst, X = _train(rng, objective, n_cat=n_cat, nan_frac=nan_frac, extra=extra)
    Xt = _data(rng, 200, X.shape[1], 0.1, n_cat)
    Xt[0, n_cat:] = 1e30  # XGBoost refuses inf; huge values round to float32 max / inf-free
    Xt[1, n_cat:] = -3e38
    Xt[2, n_cat:] = 1e-40
    Xt[3, :n_cat] = 55.0  # unseen category
    _check(bst, Xt, n_cat)
    _check(bst, Xt.astype(np.float32), n_cat)


def test_iteration_range_and_base_margin():
    rng = np.random.default_rng(1)
    bst, X = _train(rng, "multi:softprob", rounds=8)
    _check(bst, X, iteration_range=(2, 6))
    _check(bst, X, iteration_range=(0, 3))
    m = fm.import_model(bst)
    bm = rng.standard_normal((len(X), 3)).astype(np.float32)
    ref = bst.predict(xgb.DMatrix(X, base_margin=bm), output_margin=True)
    assert _ulps(m.predict_raw(X, base_margin=bm), ref) == 0
    with pytest.raises(SchemaError):
        m.predict_raw(X, base_margin=bm[:3])


def test_vector_base_score_and_files(tmp_path):
    rng = np.random.default_rng(2)
    bst, X = _train(rng, "binary:logistic", extra=dict(base_score=0.3))
    ref = bst.predict(xgb.DMatrix(X), output_margin=True)
    for ext in ("json", "ubj"):
        p = tmp_path / f"m.{ext}"
        bst.save_model(str(p))
        assert _ulps(fm.import_model(str(p)).predict_raw(X), ref) == 0
    assert _ulps(fm.import_model(bytes(bst.save_raw("json"))).predict_raw(X), ref) == 0
    assert _ulps(fm.import_model(bytes(bst.save_raw("ubj"))).predict_raw(X), ref) == 0
    # 3.x stores base_score as a vector string; a plain scalar string reads the same.
    js = json.loads(bst.save_raw("json"))
    bs = js["learner"]["learner_model_param"]["base_score"]
    js["learner"]["learner_model_param"]["base_score"] = bs.strip("[]")
    assert _ulps(fm.import_model(json.dumps(js).encode()).predict_raw(X), ref) == 0


def test_sklearn_wrappers():
    rng = np.random.default_rng(3)
    X = _data(rng, 300, 4, 0.1, 0)
    y = np.array(["a", "b", "c"])[np.digitize(np.nan_to_num(X[:, 0]), [-0.5, 0.5])]
    from sklearn.preprocessing import LabelEncoder
    yi = LabelEncoder().fit_transform(y)
    clf = xgb.XGBClassifier(n_estimators=5, max_depth=3, n_jobs=1).fit(X, yi)
    m = fm.import_model(clf)
    assert _ulps(m.predict_proba(X), clf.predict_proba(X)) == 0
    assert (m.predict(X) == clf.predict(X)).all()
    reg = xgb.XGBRegressor(n_estimators=5, max_depth=3, n_jobs=1).fit(X, np.nan_to_num(X[:, 1]))
    assert _ulps(fm.import_model(reg).predict(X), reg.predict(X)) == 0


def test_unsupported():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((200, 3))
    b = xgb.train(dict(objective="reg:squarederror", booster="gblinear"), xgb.DMatrix(X, X[:, 0]), 2)
    with pytest.raises(UnsupportedModelError, match="gblinear"):
        fm.import_model(b)
    b = xgb.train(dict(objective="survival:cox"), xgb.DMatrix(X, np.abs(X[:, 0]) + 1), 2)
    with pytest.raises(UnsupportedModelError, match="survival:cox"):
        fm.import_model(b)
    b = xgb.train(dict(objective="reg:squarederror", multi_strategy="multi_output_tree",
                       tree_method="hist"), xgb.DMatrix(X, X[:, :2]), 2)
    with pytest.raises(UnsupportedModelError, match="multi"):
        fm.import_model(b)


def test_rows_and_threads():
    rng = np.random.default_rng(5)
    bst, X = _train(rng, "binary:logistic", n=2000, rounds=20)
    m = fm.import_model(bst)
    assert m.predict_raw(X[:0]).shape == (0,)
    assert _ulps(m.predict_raw(X[:1]), bst.predict(xgb.DMatrix(X[:1]), output_margin=True)) == 0
    big = np.repeat(X, 3, axis=0)
    assert m.predict_raw(big, n_threads=1).tobytes() == m.predict_raw(big, n_threads=2).tobytes()
    assert _ulps(m.predict_one(X[3]), bst.predict(xgb.DMatrix(X[3:4]))) == 0


def test_malformed_json():
    rng = np.random.default_rng(6)
    bst, X = _train(rng, "binary:logistic")
    js = json.loads(bst.save_raw("json"))
    js["learner"]["gradient_booster"]["model"]["trees"][0]["left_children"] = [5, 7]
    with pytest.raises(UnsupportedModelError):
        fm.import_model(json.dumps(js).encode())
    js = json.loads(bst.save_raw("json"))
    del js["learner"]["learner_model_param"]["num_feature"]
    with pytest.raises(UnsupportedModelError, match="malformed"):
        fm.import_model(json.dumps(js).encode())
