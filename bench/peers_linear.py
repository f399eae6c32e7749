"""Linear and MLP inference: forgeline against torch, ONNX Runtime, scikit-learn and numpy.

Workloads:

* ``mlp 50-256-128-1 relu, batch B`` for B in 1, 64, 100k: a float32 ReLU MLP built in torch
  (eval mode). Peers: torch with 1 and 2 threads, ONNX Runtime on the torch export
  (``torch.onnx.export``) with 1 and 2 threads, scikit-learn ``MLPRegressor.predict`` with
  the same weights, and plain numpy (BLAS matmul + bias + ReLU) as the "call BLAS"
  alternative. Batch 1 also reports the Scorer (``forgeline.compile``) on a 1-row numpy
  array and the bare native binding. Batch 100k also runs the float64 path (the same
  network in ``.double()``) and single-thread CPU-time rows, which other tenants of a
  shared machine do not inflate.
* ``dense layer N x K -> M`` (the MLP's layer shapes, batch 64 and 100k, float32 and
  float64): one fused dense+ReLU layer against numpy's BLAS matmul + bias + ReLU, at
  1 thread (threadpoolctl limits BLAS) and all threads. This is the measurement behind
  the "own kernel or BLAS" rule in cpp/include/forgeline/linear.hpp.
* ``logistic 340 features``: LogisticRegression ``predict_proba`` against scikit-learn's.

Latency rows are the best mean of 200 short loops (100 calls each), so a loop that the
scheduler interrupted does not count; big batches are best-of-N wall time. ``--quick``
shrinks the row counts.
"""

from __future__ import annotations

import io
import os
import time
import warnings

import numpy as np
from _timing import add_source_tree, best_of, row

BATCHES = (1, 64, 100_000)


def _cpu_best_of(fn, repeats: int = 5) -> float:
    """Best process CPU time of ``repeats`` calls (all threads of this process summed).

    On a shared machine, wall time also measures the other tenants; CPU time of a
    single-threaded run does not, so the 1-thread CPU rows compare the kernels themselves.
    """
    return best_of(fn, repeats=repeats, clock=time.process_time)


def _latency(fn, loops: int = 200, calls: int = 100) -> float:
    """Best mean seconds per call over ``loops`` loops of ``calls`` calls."""
    fn()
    best = float("inf")
    for _ in range(loops):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - t0) / calls)
    return best


def _blas_limits():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits


def _onnx_sessions(torch, model, x_example):
    try:
        import onnxruntime as ort

        buf = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, torch.from_numpy(x_example), buf, input_names=["x"], output_names=["y"],
                              dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, dynamo=False)
        sessions = {}
        for th in (1, 2):
            so = ort.SessionOptions()
            so.intra_op_num_threads = th
            sessions[th] = ort.InferenceSession(buf.getvalue(), so, providers=["CPUExecutionProvider"])
        return sessions, ""
    except Exception as exc:  # noqa: BLE001 - any export/runtime problem becomes a note
        return {}, f"onnx export/runtime unavailable: {type(exc).__name__}: {exc}"[:200]


def _mlp_workloads(quick: bool) -> list[dict]:
    rows: list[dict] = []
    try:
        import torch
    except ImportError:
        return [row("mlp 50-256-128-1 relu", "torch", None, "pip install torch==2.13.0")]
    import forgeline as fl
    from forgeline.models import import_model

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(50, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128),
                                torch.nn.ReLU(), torch.nn.Linear(128, 1)).eval()
    model64 = torch.nn.Sequential(*[torch.nn.Linear(m.in_features, m.out_features) if isinstance(m, torch.nn.Linear)
                                    else torch.nn.ReLU() for m in model]).double().eval()
    model64.load_state_dict({k: v.double() for k, v in model.state_dict().items()})
    fl_model = import_model(model)
    fl_model64 = import_model(model64)
    net = fl_model._net(np.dtype(np.float32))
    rng = np.random.default_rng(0)
    X_all = rng.normal(size=(max(BATCHES), 50)).astype(np.float32)
    scorer = fl.compile(model, sample=X_all[:500])
    ort_sess, ort_note = _onnx_sessions(torch, model, X_all[:2])
    ort_sess64, ort_note64 = _onnx_sessions(torch, model64, X_all[:2].astype(np.float64))

    sk = None
    try:
        from sklearn.neural_network import MLPRegressor

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sk = MLPRegressor(hidden_layer_sizes=(256, 128), max_iter=1).fit(X_all[:64], np.zeros(64, np.float32))
        lin = [m for m in model if isinstance(m, torch.nn.Linear)]
        sk.coefs_ = [m.weight.detach().numpy().T.copy() for m in lin]
        sk.intercepts_ = [m.bias.detach().numpy().copy() for m in lin]
    except ImportError:
        pass

    Ws = [fl_model.arrays[f"l{i}.weight"] for i in range(3)]
    bs = [fl_model.arrays[f"l{i}.bias"] for i in range(3)]

    def numpy_mlp(X):
        h = np.maximum(X @ Ws[0] + bs[0], 0)
        h = np.maximum(h @ Ws[1] + bs[1], 0)
        return h @ Ws[2] + bs[2]

    repeats = 3 if quick else 7
    for b in BATCHES:
        n = b if not quick or b < 1000 else 5_000
        wl = f"mlp 50-256-128-1 relu, batch {n}"
        X = np.ascontiguousarray(X_all[:n])
        Xt = torch.from_numpy(X)
        big = n >= 1000
        if big:
            def timer(f):
                return best_of(f, repeats=repeats)
        else:
            def timer(f):
                return _latency(f, loops=20 if quick else 200, calls=20 if quick else 100)
        ours = fl_model.predict_raw(X)
        if n == 1:
            rows.append(row(wl, "forgeline predict_raw", timer(lambda: fl_model.predict_raw(X)),
                            "public model API on a (1, 50) float32 ndarray"))
            rows.append(row(wl, "forgeline Scorer.predict_raw", timer(lambda: scorer.predict_raw(X)),
                            "fl.compile(model, sample); 1-row numpy array, schema-checked"))
            x1 = X[0]
            rows.append(row(wl, "forgeline native binding", timer(lambda: net.predict_one(x1)),
                            "_Network32.predict_one: one row, no pool, GIL held"))
        else:
            rows.append(row(wl, "forgeline", timer(lambda: fl_model.predict_raw(X)), "all threads (2)"))
            rows.append(row(wl, "forgeline 1 thread", timer(lambda: fl_model.predict_raw(X, n_threads=1)), ""))
        for th in (1, 2):
            torch.set_num_threads(th)
            with torch.inference_mode():
                ref = model(Xt).numpy()[:, 0]
                err = float(np.max(np.abs(ref - ours) / (1 + np.abs(ref))))
                rows.append(row(wl, f"torch {th} thread{'s' if th > 1 else ''}",
                                timer(lambda: model(Xt)), f"max rel diff {err:.1e}"))
        torch.set_num_threads(2)
        for th, sess in ort_sess.items():
            rows.append(row(wl, f"onnxruntime {th} thread{'s' if th > 1 else ''}",
                            timer(lambda: sess.run(None, {"x": X})), "torch.onnx.export(dynamo=False)"))
        if not ort_sess:
            rows.append(row(wl, "onnxruntime", None, ort_note or "pip install onnxruntime onnx"))
        if sk is not None:
            rows.append(row(wl, "sklearn MLPRegressor.predict", timer(lambda: sk.predict(X)), "float32 weights"))
        else:
            rows.append(row(wl, "sklearn MLPRegressor.predict", None, "pip install scikit-learn"))
        rows.append(row(wl, "numpy BLAS matmul", timer(lambda: numpy_mlp(X)),
                        f"OpenBLAS via numpy, {os.environ.get('OPENBLAS_NUM_THREADS', 'default')} threads"))
        if big:
            wl_cpu = f"{wl}, 1-thread CPU time"
            rows.append(row(wl_cpu, "forgeline 1 thread", _cpu_best_of(lambda: fl_model.predict_raw(X, n_threads=1)),
                            "process CPU time, robust to other tenants"))
            torch.set_num_threads(1)
            with torch.inference_mode():
                rows.append(row(wl_cpu, "torch 1 thread", _cpu_best_of(lambda: model(Xt)), ""))
            torch.set_num_threads(2)
            if 1 in ort_sess:
                rows.append(row(wl_cpu, "onnxruntime 1 thread", _cpu_best_of(lambda: ort_sess[1].run(None, {"x": X})), ""))
            rows += _float64_rows(n, X.astype(np.float64), fl_model64, model64, torch, ort_sess64, ort_note64, timer)
    return rows


def _float64_rows(n, X64, fl_model64, model64, torch, ort_sess64, ort_note64, timer) -> list[dict]:
    wl = f"mlp 50-256-128-1 relu float64, batch {n}"
    Xt = torch.from_numpy(X64)
    ours = fl_model64.predict_raw(X64)
    rows = [row(wl, "forgeline", timer(lambda: fl_model64.predict_raw(X64)), "all threads (2), float64 weights"),
            row(wl, "forgeline 1 thread", timer(lambda: fl_model64.predict_raw(X64, n_threads=1)), "")]
    for th in (1, 2):
        torch.set_num_threads(th)
        with torch.inference_mode():
            ref = model64(Xt).numpy()[:, 0]
            err = float(np.max(np.abs(ref - ours) / (1 + np.abs(ref))))
            rows.append(row(wl, f"torch {th} thread{'s' if th > 1 else ''}", timer(lambda: model64(Xt)),
                            f"max rel diff {err:.1e}"))
    torch.set_num_threads(2)
    for th, sess in ort_sess64.items():
        rows.append(row(wl, f"onnxruntime {th} thread{'s' if th > 1 else ''}",
                        timer(lambda: sess.run(None, {"x": X64})), "torch.onnx.export of model.double()"))
    if not ort_sess64:
        rows.append(row(wl, "onnxruntime", None, ort_note64))
    wl_cpu = f"{wl}, 1-thread CPU time"
    rows.append(row(wl_cpu, "forgeline 1 thread", _cpu_best_of(lambda: fl_model64.predict_raw(X64, n_threads=1)),
                    "process CPU time"))
    if 1 in ort_sess64:
        rows.append(row(wl_cpu, "onnxruntime 1 thread", _cpu_best_of(lambda: ort_sess64[1].run(None, {"x": X64})), ""))
    return rows


def _layer_rule_rows(quick: bool) -> list[dict]:
    """One dense+ReLU layer per MLP shape: the own fused kernel against numpy's BLAS."""
    from forgeline._native import core

    limits = _blas_limits()
    rows: list[dict] = []
    rng = np.random.default_rng(3)
    for n in (64, 5_000 if quick else 100_000):
        for k, m in ((50, 256), (256, 128), (128, 1)):
            for dtype in (np.float32, np.float64):
                W = rng.normal(size=(k, m)).astype(dtype)
                b = rng.normal(size=m).astype(dtype)
                X = rng.normal(size=(n, k)).astype(dtype)
                net = (core._Network32 if dtype == np.float32 else core._Network64)(k)
                net.add_dense(W, b, 1)
                wl = f"dense layer {n} x {k} -> {m} relu {np.dtype(dtype).name}"

                def blas(X=X, W=W, b=b):
                    return np.maximum(X @ W + b, 0)

                if n >= 1000:
                    def timer(f):
                        return best_of(f, repeats=3 if quick else 5)
                else:
                    def timer(f):
                        return _latency(f, loops=20 if quick else 100, calls=20)
                rows.append(row(wl, "forgeline 1 thread", timer(lambda: net.predict(X, 1)), "fused bias + ReLU"))
                if limits is not None:
                    with limits(limits=1, user_api="blas"):
                        rows.append(row(wl, "numpy BLAS 1 thread", timer(blas), "matmul, then bias and ReLU passes"))
                rows.append(row(wl, "forgeline 2 threads", timer(lambda: net.predict(X, 2)), ""))
                rows.append(row(wl, "numpy BLAS default threads", timer(blas), ""))
    return rows


def _logistic_workload(quick: bool) -> list[dict]:
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        return [row("logistic 340 features", "sklearn", None, "pip install scikit-learn")]
    from forgeline.models import import_model

    n = 20_000 if quick else 500_000
    wl = f"logistic 340 features x {n} rows, predict_proba"
    rng = np.random.default_rng(1)
    Xf = rng.normal(size=(2000, 340))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = LogisticRegression(max_iter=200).fit(Xf, (Xf[:, :5].sum(1) > 0).astype(int))
    model = import_model(est)
    X = rng.normal(size=(n, 340))
    p = model.predict_proba(X)
    ref = est.predict_proba(X)
    err = float(np.max(np.abs(p - ref)))
    rows = [row(wl, "forgeline", best_of(lambda: model.predict_proba(X), repeats=3), f"max abs diff {err:.1e}"),
            row(wl, "forgeline 1 thread", best_of(lambda: model.predict_proba(X, n_threads=1), repeats=3), ""),
            row(wl, "sklearn predict_proba", best_of(lambda: est.predict_proba(X), repeats=3), "float64")]
    return rows


def run(quick: bool) -> list[dict]:
    """Rows for bench/peers.py (section "linear")."""
    return _mlp_workloads(quick) + _layer_rule_rows(quick) + _logistic_workload(quick)


if __name__ == "__main__":
    import sys

    add_source_tree()
    for r in run("--quick" in sys.argv):
        secs = "skipped" if r["seconds"] is None else f"{r['seconds']:.4g}"
        print(f"{r['workload']:<48} {r['engine']:<32} {secs:>10}  {r['note']}")
