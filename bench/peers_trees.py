"""Tree-ensemble inference side by side: forgeline vs LightGBM / XGBoost / sklearn predict,
ONNX Runtime, treelite (GTIL) / tl2cgen and lleaves (from its own venv).

Workload T1 (DESIGN.md): LightGBM binary, 300 trees, num_leaves 63, 50 float32 features with
2% NaN, 200k rows; plus an XGBoost model of the same shape and a sklearn RandomForest (100
trees, depth 12). Rows: batch throughput (all threads), single-row latency, load / compile.

lleaves needs ``llvmlite<0.44``, so it runs in ``bench/.venv-lleaves``::

    python -m venv bench/.venv-lleaves
    bench/.venv-lleaves/bin/pip install "llvmlite<0.44" lleaves lightgbm

Trained models are cached in ``~/.cache/forgeline-bench`` (training is not what we time).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _timing import add_source_tree, best_of, forgeline_root, per_call, row

HERE = Path(__file__).parent
CACHE = Path(os.environ.get("FORGELINE_BENCH_CACHE", Path.home() / ".cache" / "forgeline-bench"))
F = 50
THREADS = os.cpu_count() or 1


def _data(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, F)).astype(np.float32)
    X[rng.random((n, F)) < 0.02] = np.nan
    logit = np.nansum(X[:, :10] * np.arange(1, 11), axis=1) + np.sin(np.nan_to_num(X[:, 10]) * 3)
    y = (logit + rng.standard_normal(n) > 0).astype(np.int32)
    return X, y


def _sizes(quick):
    if quick:
        return dict(n=5_000, train=5_000, train_other=5_000, trees=20, leaves=15, rf_trees=10, rf_depth=6,
                    lat=200)
    # The XGBoost and RandomForest models train on fewer rows: inference cost depends on the
    # model's shape (trees, leaves, depth), and training them is not what this measures.
    return dict(n=200_000, train=100_000, train_other=30_000, trees=300, leaves=63, rf_trees=100,
                rf_depth=12, lat=2000)


def _lgb_model(s):
    import lightgbm as lgb
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"t1_lgb_{s['train']}_{s['trees']}_{s['leaves']}_{lgb.__version__}.txt"
    if not path.exists():
        Xtr, ytr = _data(s["train"], 0)
        b = lgb.train(dict(objective="binary", num_leaves=s["leaves"], learning_rate=0.1, verbose=-1),
                      lgb.Dataset(Xtr, ytr), num_boost_round=s["trees"])
        b.save_model(str(path))
    return path


def _xgb_model(s):
    import xgboost as xgb
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"t1_xgb_{s['train_other']}_{s['trees']}_{s['leaves']}_{xgb.__version__}.json"
    if not path.exists():
        Xtr, ytr = _data(s["train_other"], 0)
        b = xgb.train(dict(objective="binary:logistic", max_leaves=s["leaves"], max_depth=0,
                           grow_policy="lossguide", tree_method="hist", eta=0.1),
                      xgb.DMatrix(Xtr, ytr), s["trees"])
        b.save_model(str(path))
    return path


def _rf_model(s):
    import pickle

    import sklearn
    from sklearn.ensemble import RandomForestClassifier
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"rf_{s['train_other']}_{s['rf_trees']}_{s['rf_depth']}_{sklearn.__version__}.pkl"
    if not path.exists():
        Xtr, ytr = _data(s["train_other"], 0)
        rf = RandomForestClassifier(s["rf_trees"], max_depth=s["rf_depth"], n_jobs=-1, random_state=0)
        rf.fit(Xtr, ytr)
        path.write_bytes(pickle.dumps(rf))
    return pickle.loads(path.read_bytes())


_JIT_LOAD_SCRIPT = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
t = time.perf_counter()
import numpy as np
import forgeline.models as fm
meta = json.loads(open(sys.argv[2]).read())
arrays = dict(np.load(sys.argv[3]))
m = fm.model_from_parts(meta, arrays)
m.set_engine("jit", cache_dir=sys.argv[4])
print(json.dumps({"seconds": time.perf_counter() - t, "cached": m.jit_info["cached"],
                  "compile": m.jit_info["compile_seconds"]}))
"""


def _jit_rows(wl, m, X, ref_secs):
    """The Numba-JIT engine beside the native one: batch time, cold compile, cached load.

    ``m`` may be a prefix of the workload's model (``FORGELINE_BENCH_JIT_TREES``): Numba
    compiles about 2 s of CPU per 1000 nodes, so the full T1 model takes minutes; the
    speed ratio per tree is what the ``auto`` rule needs."""
    if os.environ.get("FORGELINE_BENCH_JIT", "1") == "0":
        return [row(wl, "forgeline jit (numba)", None, "skipped: FORGELINE_BENCH_JIT=0")]
    try:
        import numba  # noqa: F401
    except ImportError:
        return [row(wl, "forgeline jit (numba)", None, "pip install 'forgeline[jit]' (numba)")]
    cache = CACHE / "jit"
    t = time.perf_counter()
    c = time.process_time()
    m.set_engine("jit", cache_dir=cache)
    info = dict(m.jit_info, wall=time.perf_counter() - t, cpu=time.process_time() - c)
    p = m.predict_proba(X)
    m.set_engine("native")
    same = bool(np.array_equal(p, m.predict_proba(X)))
    m.set_engine("jit", cache_dir=cache)
    secs = best_of(lambda: m.predict_proba(X), repeats=3)
    # Wall time on a loaded 2-core machine also measures thread scheduling: CPU time of one
    # thread compares the kernels themselves.
    cpu_jit = best_of(lambda: m.predict_proba(X, n_threads=1), repeats=3, clock=time.process_time)
    m.set_engine("native")
    cpu_nat = best_of(lambda: m.predict_proba(X, n_threads=1), repeats=3, clock=time.process_time)
    # Cached load in a fresh process: numba import + loading the machine code from disk.
    tmp = tempfile.mkdtemp()
    meta, arrays = m.to_parts()
    Path(tmp, "meta.json").write_text(json.dumps(meta))
    np.savez(Path(tmp, "arrays.npz"), **arrays)
    try:
        res = subprocess.run([sys.executable, "-c", _JIT_LOAD_SCRIPT, forgeline_root(),
                              str(Path(tmp, "meta.json")), str(Path(tmp, "arrays.npz")), str(cache)],
                             capture_output=True, text=True, timeout=3600, check=True)
        cached = json.loads(res.stdout.strip().splitlines()[-1])
        cached_note = f"cached load {cached['seconds']:.2f}s in a new process (incl. numba import)"
    except Exception as exc:  # noqa: BLE001
        cached_note = f"cached load failed: {type(exc).__name__}"
    cold = ("cold compile" if not info["cached"] else "cache hit; cold compile was in an earlier run")
    return [row(wl, "forgeline jit (numba)", secs,
                f"bit-identical to native: {same}; {cold} {info['wall']:.1f}s wall / {info['cpu']:.1f}s cpu; "
                f"{cached_note}; native/jit = {ref_secs / secs:.2f} (wall), "
                f"{cpu_nat / cpu_jit:.2f} (1-thread CPU)")]


def _forgeline_rows(wl, model_src, X, proba_ref, lat_n, import_fn, jit=False, scorer_row=False):
    import forgeline.models as fm
    rows = []
    t = time.perf_counter()
    m = import_fn(model_src)
    t_import = time.perf_counter() - t
    meta, arrays = m.to_parts()
    t_load = best_of(lambda: fm.model_from_parts(meta, arrays), repeats=3)
    p = m.predict_proba(X)[:, 1]
    err = float(np.max(np.abs(p - proba_ref))) if len(p) else 0.0
    secs = best_of(lambda: m.predict_proba(X), repeats=3)
    n_qs = int(m._core.n_qs_trees)
    rows.append(row(wl, "forgeline", secs, f"max|dp|={err:.1e}, {THREADS} threads, "
                    f"{n_qs}/{m.n_trees} trees on the SIMD kernel (simd={m._core.simd})"))
    cpu1 = best_of(lambda: m.predict_proba(X, n_threads=1), repeats=3, clock=time.process_time)
    rows.append(row(wl + " 1-thread cpu", "forgeline", cpu1, "CPU seconds, n_threads=1"))
    if m._core.simd:
        m._core.simd = False
        try:
            walk = best_of(lambda: m.predict_proba(X, n_threads=1), repeats=2, clock=time.process_time)
        finally:
            m._core.simd = True
        rows.append(row(wl + " 1-thread cpu", "forgeline walk (simd off)", walk,
                        f"the tree-walk engine; SIMD kernel speed-up {walk / cpu1:.2f}x"))
    x1 = np.ascontiguousarray(X[0])
    rows.append(row(wl + " single-row", "forgeline predict_one", per_call(lambda: m.predict_one(x1), lat_n),
                    "1-D row, no thread pool"))
    rows.append(row(wl + " single-row", "forgeline core.predict_one", per_call(lambda: m._core.predict_one(x1, True), lat_n),
                    "the bare native call: kernel + pybind11 + output array"))
    if scorer_row:
        import forgeline as fl
        scorer = fl.compile(m, sample=X[:1000], profile=False)
        X1 = X[:1]
        rows.append(row(wl + " single-row", "forgeline Scorer.predict_proba",
                        per_call(lambda: scorer.predict_proba(X1), lat_n), "compiled Scorer, 1-row numpy"))
    if jit:
        n_jit = int(os.environ.get("FORGELINE_BENCH_JIT_TREES", "30"))
        mj = import_fn(model_src, num_iteration=n_jit) if 0 < n_jit < m.n_trees else m
        wj = wl if mj is m else f"{wl} [first {mj.n_trees} trees]"
        native_j = best_of(lambda: mj.predict_proba(X), repeats=3)
        rows.append(row(wj, "forgeline native", native_j, "the C++ engine on the same trees"))
        rows += _jit_rows(wj, mj, X, native_j)
    rows.append(row(wl + " load", "forgeline from_parts", t_load, f"import from source {t_import:.3f}s"))
    return rows, m


def _onnx_rows(wl, convert, X, proba_ref, lat_n):
    try:
        import onnxruntime as ort
    except ImportError:
        return [row(wl, "onnxruntime", None, "pip install onnxruntime onnxmltools skl2onnx")]
    try:
        t = time.perf_counter()
        onx = convert()
        so = ort.SessionOptions()
        so.intra_op_num_threads = THREADS
        sess = ort.InferenceSession(onx.SerializeToString(), so, providers=["CPUExecutionProvider"])
        t_load = time.perf_counter() - t
        outs = sess.run(None, {"x": X})
        prob = outs[1]
        prob = np.array([d[1] for d in prob]) if isinstance(prob, list) else prob[:, 1]
        err = float(np.max(np.abs(prob - proba_ref)))
        secs = best_of(lambda: sess.run(None, {"x": X}), repeats=3)
        so1 = ort.SessionOptions()
        so1.intra_op_num_threads = 1
        s1 = ort.InferenceSession(onx.SerializeToString(), so1, providers=["CPUExecutionProvider"])
        one = X[:1]
        cpu1 = best_of(lambda: s1.run(None, {"x": X}), repeats=2, clock=time.process_time)
        return [row(wl, "onnxruntime", secs, f"max|dp|={err:.1e}"),
                row(wl + " 1-thread cpu", "onnxruntime", cpu1, "CPU seconds, intra_op_num_threads=1"),
                row(wl + " single-row", "onnxruntime", per_call(lambda: s1.run(None, {"x": one}), lat_n), ""),
                row(wl + " load", "onnxruntime convert+session", t_load, "")]
    except Exception as exc:  # noqa: BLE001 - a failing peer is reported, not fatal
        return [row(wl, "onnxruntime", None, f"failed: {type(exc).__name__}: {str(exc)[:80]}")]


def _treelite_rows(wl, load_tl, X, proba_ref, compile_c):
    try:
        import treelite
    except ImportError:
        return [row(wl, "treelite.gtil", None, "pip install treelite tl2cgen")]
    rows = []
    try:
        tm = load_tl()
        out = treelite.gtil.predict(tm, X, nthread=THREADS).reshape(len(X), -1)[:, -1]
        err = float(np.max(np.abs(out - proba_ref)))
        rows.append(row(wl, "treelite.gtil", best_of(lambda: treelite.gtil.predict(tm, X, nthread=THREADS), repeats=2),
                        f"max|dp|={err:.1e}"))
    except Exception as exc:  # noqa: BLE001
        return [row(wl, "treelite.gtil", None, f"failed: {type(exc).__name__}: {str(exc)[:80]}")]
    if not compile_c:
        rows.append(row(wl, "tl2cgen", None, "not compiled for this model (C compile takes minutes); see T1"))
        return rows
    try:
        import tl2cgen
        lib = os.path.join(tempfile.mkdtemp(), "tl.so")
        t = time.perf_counter()
        tl2cgen.export_lib(tm, toolchain="gcc", libpath=lib, params={"parallel_comp": 8}, nthread=THREADS)
        t_comp = time.perf_counter() - t
        pred = tl2cgen.Predictor(lib, nthread=THREADS)
        secs = best_of(lambda: pred.predict(tl2cgen.DMatrix(X, dtype="float32")), repeats=2)
        rows.append(row(wl, "tl2cgen (compiled C)", secs, f"compile {t_comp:.1f}s"))
    except Exception as exc:  # noqa: BLE001
        rows.append(row(wl, "tl2cgen", None, f"failed: {type(exc).__name__}: {str(exc)[:80]}"))
    return rows


_LLEAVES_SCRIPT = r"""
import json, sys, time, numpy as np, lleaves
model, data, cache = sys.argv[1], sys.argv[2], sys.argv[3]
X = np.load(data).astype(np.float64)
m = lleaves.Model(model_file=model)
t = time.perf_counter(); m.compile(cache=cache); comp = time.perf_counter() - t
out = m.predict(X)
best = 1e9
for _ in range(3):
    t = time.perf_counter(); m.predict(X); best = min(best, time.perf_counter() - t)
cpu1 = 1e9
for _ in range(3):
    t = time.process_time(); m.predict(X, n_jobs=1); cpu1 = min(cpu1, time.process_time() - t)
one = X[:1]
m.predict(one, n_jobs=1)
n = 2000
t = time.perf_counter()
for _ in range(n): m.predict(one, n_jobs=1)
lat = (time.perf_counter() - t) / n
np.save(data + ".out.npy", out)
print(json.dumps({"compile": comp, "secs": best, "lat": lat, "cpu1": cpu1}))
"""


def _lleaves_rows(wl, model_path, X, proba_ref):
    py = HERE / ".venv-lleaves" / "bin" / "python"
    if not py.exists():
        return [row(wl, "lleaves", None, "no bench/.venv-lleaves: python -m venv bench/.venv-lleaves && "
                    "bench/.venv-lleaves/bin/pip install 'llvmlite<0.44' lleaves lightgbm")]
    tmp = tempfile.mkdtemp()
    data = os.path.join(tmp, "X.npy")
    np.save(data, X)
    cache = CACHE / (Path(model_path).stem + ".lleaves.o")
    try:
        res = subprocess.run([str(py), "-c", _LLEAVES_SCRIPT, str(model_path), data, str(cache)],
                             capture_output=True, text=True, timeout=3600, check=True)
        r = json.loads(res.stdout.strip().splitlines()[-1])
        out = np.load(data + ".out.npy")
        err = float(np.max(np.abs(out - proba_ref)))
        return [row(wl, "lleaves", r["secs"], f"max|dp|={err:.1e}, compile {r['compile']:.1f}s (cached after first run)"),
                row(wl + " 1-thread cpu", "lleaves", r["cpu1"], "CPU seconds, n_jobs=1"),
                row(wl + " single-row", "lleaves", r["lat"], "")]
    except Exception as exc:  # noqa: BLE001
        return [row(wl, "lleaves", None, f"failed: {type(exc).__name__}: {str(exc)[:100]}")]


def run(quick: bool) -> list[dict]:
    add_source_tree()
    s = _sizes(quick)
    X, _ = _data(s["n"], 1)
    rows: list[dict] = []
    import forgeline.models as fm

    # -- T1: LightGBM ---------------------------------------------------------------------
    wl = f"T1 trees: LightGBM {s['trees']} trees x {s['leaves']} leaves, {s['n']} rows"
    import lightgbm as lgb
    path = _lgb_model(s)
    booster = lgb.Booster(model_file=str(path))
    ref = booster.predict(X, num_threads=THREADS)
    rs, _ = _forgeline_rows(wl, path, X, ref, s["lat"], fm.import_model, jit=True, scorer_row=True)
    rows += rs
    rows.append(row(wl, "lightgbm.predict", best_of(lambda: booster.predict(X, num_threads=THREADS), repeats=2), ""))
    rows.append(row(wl + " 1-thread cpu", "lightgbm.predict",
                    best_of(lambda: booster.predict(X, num_threads=1), repeats=1, clock=time.process_time),
                    "CPU seconds, num_threads=1"))
    one = X[:1]
    rows.append(row(wl + " single-row", "lightgbm.predict", per_call(lambda: booster.predict(one, num_threads=1), s["lat"] // 4), ""))
    t = time.perf_counter()
    lgb.Booster(model_file=str(path))
    rows.append(row(wl + " load", "lightgbm Booster(model_file)", time.perf_counter() - t, ""))

    def conv_lgb():
        import onnxmltools
        from onnxmltools.convert.common.data_types import FloatTensorType
        return onnxmltools.convert_lightgbm(booster, initial_types=[("x", FloatTensorType([None, F]))],
                                            target_opset=15, zipmap=False)
    rows += _onnx_rows(wl, conv_lgb, X, ref, s["lat"])
    rows += _treelite_rows(wl, lambda: __import__("treelite").frontend.load_lightgbm_model(str(path)), X, ref,
                           compile_c=not quick)
    rows += _lleaves_rows(wl, path, X, ref)

    # -- XGBoost, same shape ----------------------------------------------------------------
    import xgboost as xgb
    wl = f"T1x trees: XGBoost {s['trees']} trees x {s['leaves']} leaves, {s['n']} rows"
    xpath = _xgb_model(s)
    xb = xgb.Booster(model_file=str(xpath))
    xb.set_param({"nthread": THREADS})
    ref = xb.predict(xgb.DMatrix(X))
    rs, _ = _forgeline_rows(wl, xpath, X, ref, s["lat"], fm.import_model)
    rows += rs
    rows.append(row(wl, "xgboost.predict", best_of(lambda: xb.predict(xgb.DMatrix(X)), repeats=2), "incl. DMatrix"))
    rows.append(row(wl + " single-row", "xgboost inplace_predict",
                    per_call(lambda: xb.inplace_predict(one), s["lat"] // 4), ""))

    def conv_xgb():
        import onnxmltools
        from onnxmltools.convert.common.data_types import FloatTensorType
        return onnxmltools.convert_xgboost(xb, initial_types=[("x", FloatTensorType([None, F]))], target_opset=15)
    rows += _onnx_rows(wl, conv_xgb, X, ref, s["lat"])
    rows += _treelite_rows(wl, lambda: __import__("treelite").frontend.load_xgboost_model(str(xpath)), X, ref,
                           compile_c=False)

    # -- sklearn RandomForest ------------------------------------------------------------------
    wl = f"RF trees: sklearn RandomForest {s['rf_trees']} trees depth {s['rf_depth']}, {s['n']} rows"
    rf = _rf_model(s)
    Xf = np.nan_to_num(X)
    rf.set_params(n_jobs=THREADS)
    ref = rf.predict_proba(Xf)[:, 1]
    rs, _ = _forgeline_rows(wl, rf, Xf, ref, s["lat"], fm.import_model)
    rows += rs
    rows.append(row(wl, "sklearn predict_proba", best_of(lambda: rf.predict_proba(Xf), repeats=2), f"n_jobs={THREADS}"))
    rf1 = __import__("copy").copy(rf).set_params(n_jobs=1)
    rows.append(row(wl + " single-row", "sklearn predict_proba",
                    per_call(lambda: rf1.predict_proba(Xf[:1]), max(s["lat"] // 20, 5)), ""))

    def conv_rf():
        from skl2onnx import to_onnx
        from skl2onnx.common.data_types import FloatTensorType
        return to_onnx(rf, initial_types=[("x", FloatTensorType([None, F]))], target_opset=15,
                       options={id(rf): {"zipmap": False}})
    rows += _onnx_rows(wl, conv_rf, Xf, ref, s["lat"])

    def tl_rf():
        import treelite
        return treelite.sklearn.import_model(rf)
    rows += _treelite_rows(wl, tl_rf, Xf, ref, compile_c=False)
    return rows


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    quick = "--quick" in sys.argv
    for r in run(quick):
        secs = "skipped" if r["seconds"] is None else f"{r['seconds']:.4g}"
        print(f"{r['workload']:70s} | {r['engine']:32s} | {secs:>10s} | {r['note']}")
