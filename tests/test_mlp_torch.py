"""torch nn.Sequential → MLPModel, against torch's own eval-mode forward pass, with
hypothesis-generated architectures, weights and inputs (NaN included), float32 and float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import forgeline as fl
from forgeline.models import import_model, model_from_parts
from forgeline.models.mlp import MLPModel

RTOL = {torch.float32: 1e-6, torch.float64: 1e-12}
DTYPES = [torch.float32, torch.float64]

ACTS = {
    "relu": nn.ReLU, "leaky": lambda: nn.LeakyReLU(0.07), "gelu": nn.GELU,
    "gelu_tanh": lambda: nn.GELU(approximate="tanh"), "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
    "silu": nn.SiLU, "dropout": lambda: nn.Dropout(0.5), "identity": nn.Identity,
}


def _randomise_norms(model, gen):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.normal_(generator=gen)
                m.running_var.uniform_(0.3, 3.0, generator=gen)
                if m.weight is not None:
                    m.weight.normal_(generator=gen)
                    m.bias.normal_(generator=gen)
            elif isinstance(m, nn.LayerNorm) and m.weight is not None:
                m.weight.normal_(generator=gen)
                if m.bias is not None:
                    m.bias.normal_(generator=gen)


def _torch_out(model, X, dtype):
    with torch.inference_mode():
        return model(torch.from_numpy(X).to(dtype)).numpy()


def _compare(model, X, dtype, n_threads=2):
    ours_model = import_model(model)
    ours = ours_model.predict(X, n_threads=n_threads)
    ref = _torch_out(model, X, dtype)
    ref = ref[:, 0] if ref.shape[1] == 1 else ref
    assert ours.dtype == ref.dtype and ours.shape == ref.shape
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    scale = ours_model.error_scale(X)
    ok = ~np.isnan(ref)
    rtol = RTOL[dtype]
    err = np.abs(ours[ok] - ref[ok])
    assert np.all(err <= rtol * (np.abs(ref[ok]) + scale[ok])), err.max()
    return ours_model


@st.composite
def architectures(draw):
    n_in = draw(st.integers(1, 24))
    mods, width = [], n_in
    if draw(st.booleans()):
        mods.append(("bn", width))
    for _ in range(draw(st.integers(1, 4))):
        out = draw(st.integers(1, 40))
        mods.append(("linear", width, out, draw(st.booleans())))
        width = out
        if draw(st.booleans()):
            mods.append(("bn", width))
        if draw(st.integers(0, 4)) == 0:
            mods.append(("ln", width, draw(st.booleans())))
        mods.append((draw(st.sampled_from(sorted(ACTS))),))
    if draw(st.booleans()):
        mods.append(("softmax",))
    return n_in, mods


def _build(n_in, mods):
    layers = []
    for spec in mods:
        kind = spec[0]
        if kind == "linear":
            layers.append(nn.Linear(spec[1], spec[2], bias=spec[3]))
        elif kind == "bn":
            layers.append(nn.BatchNorm1d(spec[1]))
        elif kind == "ln":
            layers.append(nn.LayerNorm(spec[1], elementwise_affine=spec[2]))
        elif kind == "softmax":
            layers.append(nn.Softmax(dim=1))
        else:
            layers.append(ACTS[kind]())
    return nn.Sequential(*layers)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arch=architectures(), seed=st.integers(0, 2**31 - 1), dtype=st.sampled_from(DTYPES),
       n=st.integers(1, 40), nan=st.booleans())
def test_hypothesis_architectures_match_torch(arch, seed, dtype, n, nan):
    n_in, mods = arch
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = _build(n_in, mods).to(dtype)
    _randomise_norms(model, gen)
    model.eval()
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in)) * rng.uniform(0.1, 5)
    if nan:
        X[rng.random(X.shape) < 0.1] = np.nan
    _compare(model, X, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bench_shape_relu_mlp_all_threads(dtype):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(50, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                          nn.Linear(128, 1)).to(dtype).eval()
    X = np.random.default_rng(0).normal(size=(2000, 50))
    m = _compare(model, X, dtype)
    base = m.predict(X, n_threads=1)
    for t in (2, 3):
        assert np.array_equal(m.predict(X, n_threads=t), base)
    assert np.array_equal(m.predict(X[7:8]), base[7:8])
    assert m.n_features == 50 and m.feature_names[0] == "x0"


@pytest.mark.parametrize("dtype", DTYPES)
def test_batchnorm_after_linear_is_exact(dtype):
    # Applied in the epilogue as torch does (x * alpha + beta), not folded into W.
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(30, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 3),
                          nn.BatchNorm1d(3, affine=False)).to(dtype)
    _randomise_norms(model, torch.Generator().manual_seed(1))
    model.eval()
    m = _compare(model, np.random.default_rng(1).normal(size=(300, 30)), dtype)
    assert m.layers[0].get("affine") and m.layers[0]["act"] == "relu"


def test_float64_input_is_cast_to_float32_model():
    model = nn.Sequential(nn.Linear(4, 3), nn.Tanh()).eval()
    X = np.random.default_rng(2).normal(size=(10, 4))
    m = import_model(model)
    out = m.predict(X)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, m.predict(X.astype(np.float32)))


def test_unsupported_layers_are_named():
    with pytest.raises(fl.UnsupportedModelError, match=r"layer 1: .*Conv1d"):
        import_model(nn.Sequential(nn.Linear(3, 3), nn.Conv1d(1, 1, 1)))
    with pytest.raises(fl.UnsupportedModelError, match=r"layer 2\.0: .*ELU"):
        import_model(nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Sequential(nn.ELU())))
    with pytest.raises(fl.UnsupportedModelError, match="Softmax"):
        import_model(nn.Sequential(nn.Linear(3, 3), nn.Softmax(dim=0)))
    with pytest.raises(fl.UnsupportedModelError, match="running statistics"):
        import_model(nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3, track_running_stats=False)))
    with pytest.raises(fl.UnsupportedModelError, match="dtype"):
        import_model(nn.Sequential(nn.Linear(3, 3)).half())
    with pytest.raises(fl.UnsupportedModelError, match="expects 4 inputs"):
        import_model(nn.Sequential(nn.Linear(3, 3), nn.Linear(4, 2)))
    with pytest.raises(fl.UnsupportedModelError, match="input width"):
        import_model(nn.Sequential(nn.ReLU()))
    m = import_model(nn.Sequential(nn.ReLU()), n_features=2, feature_names=["a", "b"])
    np.testing.assert_array_equal(m.predict(np.array([[-1.0, 2.0]])), np.array([[0.0, 2.0]], np.float32))


def test_round_trip_parts():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(5, 8), nn.LayerNorm(8), nn.GELU(), nn.Linear(8, 2)).double().eval()
    m = import_model(model, feature_names=list("abcde"))
    back = model_from_parts(*m.to_parts())
    assert type(back) is MLPModel and back.feature_names == list("abcde")
    X = np.random.default_rng(3).normal(size=(30, 5))
    assert np.array_equal(back.predict(X), m.predict(X))


def test_frameworks_are_imported_lazily():
    import subprocess
    import sys

    code = ("import sys, numpy as np\n"
            "from sklearn.linear_model import Ridge\n"
            "from forgeline.models import import_model\n"
            "m = import_model(Ridge().fit(np.eye(3), [1.0, 2.0, 3.0]))\n"
            "assert 'torch' not in sys.modules and 'keras' not in sys.modules, "
            "[k for k in ('torch', 'keras') if k in sys.modules]\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
