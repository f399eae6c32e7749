"""The native dense kernels (forgeline._core._Network32/_Network64): tile edges, both
instruction sets, thread-count determinism, batch-1 equals batch, input dtypes, NaN."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forgeline._native import core
from forgeline.models.linear import ACTIVATIONS, _np_activation

RTOL = {np.float32: 1e-6, np.float64: 1e-12}
ISAS = sorted({0, core._nn_active_isa()})


@pytest.fixture(params=ISAS, ids=lambda i: "avx2" if i else "portable")
def isa(request):
    core._nn_set_isa(request.param)
    yield request.param
    core._nn_set_isa(-1)


def _net(dtype, layers, n_in):
    net = (core._Network32 if dtype == np.float32 else core._Network64)(n_in)
    for W, b, act, alpha in layers:
        net.add_dense(W.astype(dtype), b.astype(dtype), ACTIVATIONS[act], alpha)
    return net


def _reference(X, layers):
    h = X.astype(np.float64)
    m = np.abs(h)
    for W, b, act, alpha in layers:
        h = _np_activation(act, h @ W.astype(np.float64) + b, alpha)
        m = (m @ np.abs(W) + np.abs(b)) * 1.2
    return h, m


def _random_layers(rng, n_in, widths, acts):
    layers, k = [], n_in
    for w, a in zip(widths, acts):
        layers.append((rng.normal(size=(k, w)), rng.normal(size=w), a, 0.01))
        k = w
    return layers


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_rows", [1, 2, 5, 6, 7, 13, 250, 251])
@pytest.mark.parametrize("n_out", [1, 3, 4, 8, 16, 17, 33, 70])
def test_tile_edges_match_float64_reference(isa, dtype, n_rows, n_out):
    rng = np.random.default_rng(n_rows * 100 + n_out)
    layers = _random_layers(rng, 11, [n_out], ["identity"])
    X = rng.normal(size=(n_rows, 11)).astype(dtype)
    out, bad = _net(dtype, layers, 11).predict(X, 2)
    assert bad == -1 and out.dtype == dtype and out.shape == (n_rows, n_out)
    ref, scale = _reference(X, layers)
    np.testing.assert_allclose(out, ref, rtol=RTOL[dtype], atol=RTOL[dtype] * scale.max())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), dtype=st.sampled_from([np.float32, np.float64]),
       n_in=st.integers(1, 40), widths=st.lists(st.integers(1, 40), min_size=1, max_size=3),
       n_rows=st.integers(1, 30), act=st.sampled_from(sorted(ACTIVATIONS)))
def test_random_networks_match_reference(seed, dtype, n_in, widths, n_rows, act):
    rng = np.random.default_rng(seed)
    layers = _random_layers(rng, n_in, widths, [act] * (len(widths) - 1) + ["identity"])
    X = rng.normal(size=(n_rows, n_in)).astype(dtype)
    out, _ = _net(dtype, layers, n_in).predict(X, 1)
    ref, scale = _reference(X, layers)
    np.testing.assert_allclose(out, ref, rtol=RTOL[dtype], atol=RTOL[dtype] * scale.max() + 1e-300)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bit_identical_for_any_thread_count_and_batch_size(isa, dtype):
    rng = np.random.default_rng(7)
    layers = _random_layers(rng, 50, [64, 32, 1], ["relu", "tanh", "identity"])
    X = rng.normal(size=(3001, 50)).astype(dtype)
    net = _net(dtype, layers, 50)
    base, _ = net.predict(X, 1)
    for threads in (2, 3, 0):
        assert np.array_equal(net.predict(X, threads)[0], base)
    for r in (0, 5, 3000):
        assert np.array_equal(net.predict_one(X[r]), base[r])
        assert np.array_equal(net.predict_one(X[r:r + 1], True), base[r:r + 1])
    assert np.array_equal(net.predict(X[5:11], 2)[0], base[5:11])


@pytest.mark.parametrize("model_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("in_dtype", [np.float32, np.float64])
def test_input_dtype_and_strides_are_converted(model_dtype, in_dtype):
    rng = np.random.default_rng(3)
    layers = _random_layers(rng, 9, [20, 2], ["relu", "identity"])
    net = _net(model_dtype, layers, 9)
    X = rng.normal(size=(40, 18)).astype(in_dtype)[:, ::2]  # non-contiguous view
    out, _ = net.predict(X, 2)
    expect, _ = net.predict(np.ascontiguousarray(X, dtype=model_dtype), 2)
    assert np.array_equal(out, expect)
    assert np.array_equal(net.predict_one(X[3]), expect[3])
    assert np.array_equal(net.predict_one(X[3:4]), expect[3:4])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_propagates_and_is_reported(dtype):
    rng = np.random.default_rng(1)
    layers = _random_layers(rng, 5, [16, 3], ["relu", "identity"])
    net = _net(dtype, layers, 5)
    X = rng.normal(size=(600, 5)).astype(dtype)
    X[450, 2] = np.nan
    X[500, 1] = np.inf
    out, bad = net.predict(X, 2, True)
    assert bad == 450
    assert np.isnan(out[450]).all()
    assert np.isfinite(np.delete(out, [450, 500], axis=0)).all()
    assert net.predict(X, 2)[1] == -1  # no check requested
    with pytest.raises(ValueError, match="non-finite"):
        net.predict_one(X[500], True)
    assert np.isinf(net.predict_one(X[500])).any() or np.isnan(net.predict_one(X[500])).any()


def test_layer_ops_layernorm_softmax_affine():
    rng = np.random.default_rng(5)
    net = core._Network64(6)
    g, b, s, t = rng.normal(size=6), rng.normal(size=6), rng.normal(size=6), rng.normal(size=6)
    net.add_affine(s, t)
    net.add_layernorm(g, b, 1e-5)
    net.add_activation(ACTIVATIONS["gelu"], 0.0)
    net.add_softmax()
    X = rng.normal(size=(9, 6))
    h = X * s + t
    h = (h - h.mean(1, keepdims=True)) / np.sqrt(h.var(1, keepdims=True) + 1e-5) * g + b
    h = _np_activation("gelu", h)
    h = np.exp(h - h.max(1, keepdims=True))
    h /= h.sum(1, keepdims=True)
    np.testing.assert_allclose(net.predict(X, 1)[0], h, rtol=1e-12, atol=1e-15)
    # the input array is never written to by in-place ops
    X0 = X.copy()
    net.predict(X, 1)
    assert np.array_equal(X, X0)


def test_native_validation_errors():
    net = core._Network64(3)
    with pytest.raises(ValueError, match="input size"):
        net.add_dense(np.ones((4, 2)), np.ones(2))
    with pytest.raises(ValueError, match="bias"):
        net.add_dense(np.ones((3, 2)), np.ones(3))
    with pytest.raises(ValueError, match="activation"):
        net.add_dense(np.ones((3, 2)), np.ones(2), 99)
    net.add_dense(np.ones((3, 2)), np.ones(2))
    with pytest.raises(ValueError, match="columns"):
        net.predict(np.ones((4, 5)), 1)
    with pytest.raises(ValueError, match="one row of 3"):
        net.predict_one(np.ones(5))
    with pytest.raises(ValueError, match="one row of 3"):
        net.predict_one(np.ones((2, 3)))
    with pytest.raises(ValueError, match="float32 or float64"):
        net.predict_one(np.ones(3, dtype=np.int64))
    with pytest.raises(ValueError, match="float32 or float64"):
        net.predict_one(np.ones(3, dtype=">f8"))
    one = net.predict_one(np.ones((1, 3)), False, True)
    assert one.shape == (1, 2)  # squeeze only drops a single output column
    net1 = core._Network64(3)
    net1.add_dense(np.ones((3, 1)), np.ones(1))
    assert net1.predict_one(np.ones((1, 3)), False, True).shape == (1,)
    assert net1.predict_one(np.ones((1, 3))).shape == (1, 1)
    assert net1.predict_one(np.ones(6)[::2]).tolist() == [4.0]
