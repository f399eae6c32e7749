"""Keras 3 Sequential → MLPModel, against Keras' own inference forward pass (torch
backend, so TensorFlow is not needed)."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

keras = pytest.importorskip("keras") if os.environ["KERAS_BACKEND"] != "torch" else __import__("keras")
L = keras.layers

import forgeline as fl  # noqa: E402
from forgeline.models import import_model, model_from_parts  # noqa: E402

RTOL = {"float32": 1e-6, "float64": 1e-12}
ACTS = ["linear", "relu", "leaky_relu", "gelu", "tanh", "sigmoid", "silu", "swish"]


def _compare(model, X, dtype):
    m = import_model(model)
    ours = m.predict(X, n_threads=2)
    ref = model(X.astype(dtype), training=False).detach().cpu().numpy()  # torch backend tensor
    ref = ref[:, 0] if ref.shape[1] == 1 else ref
    # Keras computes float64 layers in float32 on the torch backend; so does forgeline.
    assert ours.dtype == np.float32 and ours.shape == ref.shape
    dtype = "float32"
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    ok = ~np.isnan(ref)
    scale = m.error_scale(X)
    err = np.abs(ours[ok] - ref[ok])
    assert np.all(err <= RTOL[dtype] * (np.abs(ref[ok]) + scale[ok])), err.max()
    return m


def _set_bn_stats(model, rng):
    for lay in model.layers:
        if isinstance(lay, L.BatchNormalization):
            n = lay.moving_mean.shape[0]
            lay.moving_mean.assign(rng.normal(size=n))
            lay.moving_variance.assign(rng.uniform(0.3, 3, size=n))
            lay.gamma.assign(rng.normal(size=n))
            lay.beta.assign(rng.normal(size=n))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), dtype=st.sampled_from(["float32", "float64"]),
       widths=st.lists(st.integers(1, 24), min_size=1, max_size=3),
       acts=st.lists(st.sampled_from(ACTS), min_size=3, max_size=3),
       extras=st.lists(st.sampled_from(["bn", "ln", "dropout", "relu_layer", "leaky_layer", "none"]),
                       min_size=3, max_size=3),
       softmax=st.booleans(), n=st.integers(1, 20), nan=st.booleans())
def test_hypothesis_sequential_matches_keras(seed, dtype, widths, acts, extras, softmax, n, nan):
    keras.utils.set_random_seed(seed % (2**31))
    n_in = widths[0] + 1
    layers = [keras.Input((n_in,), dtype=dtype)]
    for w, a, e in zip(widths, acts, extras):
        layers.append(L.Dense(w, activation=a, dtype=dtype))
        extra = {"bn": lambda: L.BatchNormalization(dtype=dtype), "ln": lambda: L.LayerNormalization(dtype=dtype),
                 "dropout": lambda: L.Dropout(0.4, dtype=dtype), "relu_layer": lambda: L.ReLU(dtype=dtype),
                 "leaky_layer": lambda: L.LeakyReLU(0.15, dtype=dtype), "none": lambda: None}[e]()
        if extra is not None:
            layers.append(extra)
    if softmax and widths[-1] > 1:  # keras refuses a softmax over one unit
        layers.append(L.Softmax(dtype=dtype))
    model = keras.Sequential(layers)
    rng = np.random.default_rng(seed)
    _set_bn_stats(model, rng)
    X = rng.normal(size=(n, n_in))
    if nan:
        X[rng.random(X.shape) < 0.1] = np.nan
    _compare(model, X, dtype)


def test_bench_shape_and_activation_layers():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((50,)), L.Dense(256, activation="relu"),
                              L.Dense(128), L.Activation("gelu"), L.Dense(4, activation="softmax")])
    X = np.random.default_rng(0).normal(size=(500, 50))
    m = _compare(model, X, "float32")
    back = model_from_parts(*m.to_parts())
    assert np.array_equal(back.predict(X), m.predict(X))


def test_unsupported_layers_and_activations_are_named():
    with pytest.raises(fl.UnsupportedModelError, match=r"layer 0 \(Dense.*'elu'"):
        import_model(keras.Sequential([keras.Input((3,)), L.Dense(2, activation="elu")]))
    with pytest.raises(fl.UnsupportedModelError, match=r"layer 1 .*Conv1D"):
        import_model(keras.Sequential([keras.Input((4, 3)), L.Dense(2), L.Conv1D(2, 1)]))
    with pytest.raises(fl.UnsupportedModelError, match="ReLU"):
        import_model(keras.Sequential([keras.Input((3,)), L.Dense(2), L.ReLU(max_value=6.0)]))
    with pytest.raises(fl.UnsupportedModelError, match="activation"):
        import_model(keras.Sequential([keras.Input((3,)), L.Dense(2, activation=lambda x: x * 2)]))
    inp = keras.Input((3,))
    functional = keras.Model(inp, L.Dense(2)(inp))
    with pytest.raises(fl.UnsupportedModelError, match="Sequential"):
        import_model(functional)
