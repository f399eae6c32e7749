"""LinearModel / DenseModel itself: random models against a float64 reference, threads,
persistence through parts and hostile parts (BundleError)."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import forgeline as fl
from forgeline.models import model_from_parts
from forgeline.models.linear import LinearModel, expit, softmax_rows
from forgeline.models.mlp import MLPModel


def _model(seed=0, n_out=3, p=12, **kw):
    rng = np.random.default_rng(seed)
    kw.setdefault("task", "multiclass" if n_out > 1 else "binary")
    kw.setdefault("classes", np.arange(max(n_out, 2)))
    kw.setdefault("proba", "softmax" if n_out > 1 else "logistic")
    return LinearModel.from_coef(rng.normal(size=(n_out, p)), rng.normal(size=n_out), **kw)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n_out=st.integers(1, 20), p=st.integers(1, 300),
       n=st.integers(1, 40), dtype=st.sampled_from([np.float32, np.float64]),
       nan_frac=st.sampled_from([0.0, 0.05]))
def test_random_linear_models_match_float64_reference(seed, n_out, p, n, dtype, nan_frac):
    rng = np.random.default_rng(seed)
    coef = (rng.normal(size=(n_out, p)) * 10.0 ** rng.uniform(-3, 3, size=(n_out, p))).astype(dtype)
    b = rng.normal(size=n_out).astype(dtype)
    model = LinearModel.from_coef(coef, b, input_cast="cast", finite_only=False)
    X = rng.normal(size=(n, p)).astype(dtype)
    X[rng.random(X.shape) < nan_frac] = np.nan
    out = model.predict_raw(X, n_threads=2)
    ref = X.astype(np.float64) @ coef.T.astype(np.float64) + b
    ref = ref[:, 0] if n_out == 1 else ref
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    scale = model.error_scale(X)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
    ok = ~np.isnan(ref)
    assert np.all(np.abs(out[ok] - ref[ok]) <= rtol * (np.abs(ref[ok]) + scale[ok]))


def test_links_and_shapes():
    m = _model(n_out=1)
    X = np.random.default_rng(1).normal(size=(50, 12))
    z = m.predict_raw(X)
    assert z.shape == (50,)
    p = m.predict_proba(X)
    np.testing.assert_array_equal(p[:, 1], expit(z))
    np.testing.assert_array_equal(m.predict(X), (z > 0).astype(int))
    m3 = _model(n_out=3)
    np.testing.assert_array_equal(m3.predict_proba(X), softmax_rows(m3.predict_raw(X)))
    r = LinearModel.from_coef(np.ones(12), 0.5, link="exp")
    np.testing.assert_allclose(r.predict(X), np.exp(X.sum(1) + 0.5), rtol=1e-12)
    with pytest.raises(NotImplementedError):
        r.predict_proba(X)


def test_threads_do_not_change_bits():
    m = _model(n_out=5, p=40)
    X = np.random.default_rng(2).normal(size=(5000, 40))
    base = m.predict_raw(X, n_threads=1)
    for t in (2, 3, None):
        assert np.array_equal(m.predict_raw(X, n_threads=t), base)
    assert np.array_equal(m.predict_raw(X[10:11]), base[10:11])


def test_pickle_round_trip():
    m = _model()
    X = np.random.default_rng(3).normal(size=(20, 12))
    m.predict(X)
    back = pickle.loads(pickle.dumps(m))
    assert np.array_equal(back.predict_proba(X), m.predict_proba(X))


def test_parts_are_json_safe_and_round_trip():
    m = _model(classes=np.array(["a", "b", "c"]))
    meta, arrays = m.to_parts()
    meta2 = json.loads(json.dumps(meta))
    assert all(isinstance(a, np.ndarray) and a.dtype.kind == "f" for a in arrays.values())
    back = model_from_parts(meta2, arrays)
    X = np.random.default_rng(4).normal(size=(20, 12))
    assert np.array_equal(back.predict(X), m.predict(X))
    assert back.classes_.dtype == m.classes_.dtype


def _corrupt(mutate):
    meta, arrays = _model().to_parts()
    meta = json.loads(json.dumps(meta))
    arrays = dict(arrays)
    mutate(meta, arrays)
    return meta, arrays


@pytest.mark.parametrize("mutate", [
    lambda m, a: m.update(kind="nope"),
    lambda m, a: m.update(layers=[]),
    lambda m, a: m.update(layers="dense"),
    lambda m, a: m["layers"][0].update(op="conv"),
    lambda m, a: m["layers"][0].update(out=4),
    lambda m, a: m["layers"][0].update(out=-1),
    lambda m, a: m["layers"][0].update(out=True),
    lambda m, a: m["layers"][0].update(act="swish"),
    lambda m, a: m["layers"][0].update(alpha=float("nan")),
    lambda m, a: m["layers"][0].update(affine=1),
    lambda m, a: m["layers"][0].update(affine=True),
    lambda m, a: m["layers"].append({"op": "layernorm", "eps": -1, "has_weight": False, "has_bias": False}),
    lambda m, a: m["layers"].append({"op": "layernorm", "eps": 1e-5, "has_weight": "yes", "has_bias": False}),
    lambda m, a: m["layers"].append({"op": "affine"}),
    lambda m, a: a.pop("l0.bias"),
    lambda m, a: a.update({"l0.weight": a["l0.weight"].astype(np.float32)}),
    lambda m, a: a.update({"l0.weight": a["l0.weight"].T.copy()}),
    lambda m, a: a.update({"l0.bias": np.array(["x"] * 3)}),
    lambda m, a: m.update(feature_names=[]),
    lambda m, a: m.update(feature_names=[1] * 12),
    lambda m, a: m.update(feature_names=["a"] * 13),
    lambda m, a: m.update(task="clustering"),
    lambda m, a: m.update(dtype="float16"),
    lambda m, a: m.update(input_cast="maybe"),
    lambda m, a: m.update(proba="sigmoid"),
    lambda m, a: m.update(link="log"),
    lambda m, a: m.update(finite_only="yes"),
    lambda m, a: m.update(classes=None),
    lambda m, a: m.update(classes={"values": [1, 2]}),
    lambda m, a: m.update(classes={"values": [[1], 2, 3]}),
    lambda m, a: m.update(classes={"values": [1, 2, 3], "dtype": "datetime64[ns]"}),
    lambda m, a: m.update(classes={"values": [1, 2, 3], "dtype": "not a dtype"}),
    lambda m, a: m.update(source="sklearn"),
    lambda m, a: m.update(layers=[{"op": "dense", "out": 1}] * 1001),
])
def test_hostile_parts_raise_bundle_error(mutate):
    meta, arrays = _corrupt(mutate)
    with pytest.raises(fl.BundleError):
        model_from_parts(meta, arrays)


def test_mlp_kind_is_registered():
    m = MLPModel.from_layers(
        [{"op": "dense", "out": 4, "act": "identity"}, {"op": "activation", "act": "relu"},
         {"op": "dense", "out": 1}],
        {"l0.weight": np.ones((3, 4)), "l0.bias": np.zeros(4), "l2.weight": np.ones((4, 1)),
         "l2.bias": np.zeros(1)}, feature_names=["a", "b", "c"], task="regression")
    assert [L["op"] for L in m.layers] == ["dense", "dense"] and m.layers[0]["act"] == "relu"
    back = model_from_parts(*m.to_parts())
    assert type(back) is MLPModel
    np.testing.assert_array_equal(back.predict(np.array([[1.0, -2, 0.5]])), [0.0])


def test_empty_and_strided_inputs():
    m = LinearModel.from_coef(np.ones((2, 6)), np.zeros(2), finite_only=True)
    assert m.predict_raw(np.empty((0, 6))).shape == (0, 2)
    X = np.random.default_rng(5).normal(size=(30, 12))[:, ::2]
    np.testing.assert_array_equal(m.predict_raw(X), m.predict_raw(np.ascontiguousarray(X)))
    X = X.copy(order="F")
    X[7, 4] = np.inf
    with pytest.raises(fl.DataError, match=r"infinity \(row 7, column 'x4'\)"):
        m.predict_raw(X[:, :])


@pytest.mark.parametrize("model_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("input_cast", ["promote", "cast"])
def test_one_row_path_equals_batch_path(model_dtype, input_cast):
    rng = np.random.default_rng(8)
    for n_out, output_2d in ((1, False), (1, True), (4, False)):
        m = LinearModel.from_coef(rng.normal(size=(n_out, 7)).astype(model_dtype), rng.normal(size=n_out),
                                  input_cast=input_cast, output_2d=output_2d, finite_only=False)
        for in_dtype in (np.float32, np.float64, ">f8", np.int64):
            X = (rng.normal(size=(6, 7)) * 4).astype(in_dtype)
            batch = m.predict_raw(X)
            for r in range(6):
                one = m.predict_raw(X[r:r + 1])
                assert one.shape == batch[r:r + 1].shape
                assert one.dtype == batch.dtype
                np.testing.assert_array_equal(one, batch[r:r + 1])
            np.testing.assert_array_equal(m.predict_raw(np.asfortranarray(X[:, ::-1][:, ::-1])[2:3]), batch[2:3])


def test_one_row_path_reports_bad_input_like_the_batch_path():
    m = _model(n_out=1, finite_only=True, source={"estimator": "LogisticRegression"})
    X = np.random.default_rng(4).normal(size=(3, 12))
    X[1, 5] = np.nan
    with pytest.raises(fl.DataError, match="row 0, column 'x5'"):
        m.predict_raw(X[1:2])
    with pytest.raises(fl.DataError, match="NaN"):
        m.predict(X[1:2])
    with pytest.raises(fl.SchemaError, match="expected 12 feature columns"):
        m.predict_raw(X[:1, :5])
    lenient = _model(n_out=1, finite_only=False)
    assert np.isnan(lenient.predict_raw(X[1:2])).all()
