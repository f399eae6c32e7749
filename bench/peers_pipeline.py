"""T2 pipeline scoring: a compiled forgeline Scorer vs the sklearn pipeline it came from, and
ONNX Runtime via skl2onnx, same run. Also single-row latency, compile and load time, and
the same ColumnTransformer in front of LightGBM.

Usage: python bench/peers_pipeline.py [--quick]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _timing import add_source_tree, best_of, per_call, print_rows, row  # noqa: E402

add_source_tree()  # the checkout's in-place build, when there is one
from peers_transforms import make_data, sklearn_ct  # noqa: E402  (one T2 definition)


def _target(df):
    return (np.nan_to_num(df["n0"].to_numpy()) + (df["c0"] == "v1").to_numpy() > 1.5).astype(int)


def _register_log1p_converter() -> None:
    """skl2onnx converts FunctionTransformer only for func=None; register one for np.log1p
    (Log(Add(x, 1))) through its public registration API so T2 has an ONNX peer."""
    import copy

    from skl2onnx import update_registered_converter
    from skl2onnx.algebra.onnx_ops import OnnxAdd, OnnxLog
    from skl2onnx.common.data_types import guess_numpy_type
    from sklearn.preprocessing import FunctionTransformer

    def shape(operator):
        operator.outputs[0].type = copy.deepcopy(operator.inputs[0].type)

    def convert(scope, operator, container):
        if operator.raw_operator.func is not np.log1p:
            raise RuntimeError("this bench only registers FunctionTransformer(np.log1p)")
        opv = container.target_opset
        x = operator.inputs[0]
        y = OnnxLog(OnnxAdd(x, np.array([1], dtype=guess_numpy_type(x.type)), op_version=opv),
                    op_version=opv, output_names=operator.outputs[:1])
        y.add_to(scope, container)

    update_registered_converter(FunctionTransformer, "SklearnFunctionTransformer", shape, convert)


def _onnx_session(pipe, df):
    try:
        import onnxruntime as ort
        from skl2onnx import to_onnx
        from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    except ImportError:
        return None, "pip install onnxruntime skl2onnx"
    _register_log1p_converter()
    is_num = {c: df[c].dtype.kind == "f" for c in df.columns}
    inputs = [(c, FloatTensorType([None, 1]) if is_num[c] else StringTensorType([None, 1]))
              for c in df.columns]
    try:
        onx = to_onnx(pipe, initial_types=inputs, options={"zipmap": False}, target_opset=17)
    except Exception as exc:  # noqa: BLE001 - converter coverage varies by version
        return None, f"skl2onnx could not convert: {type(exc).__name__}: {str(exc)[:80]}"
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(onx.SerializeToString(), opts, providers=["CPUExecutionProvider"])

    def feed(d):
        return {c: (d[c].to_numpy().astype(np.float32 if is_num[c] else object)
                    .reshape(-1, 1)) for c in d.columns}
    return (sess, feed), ""


def t2_logreg(quick: bool) -> list[dict]:
    import forgeline as fl
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    n = 20_000 if quick else 500_000
    df = make_data(n)
    y = _target(df)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe = make_pipeline(sklearn_ct(), LogisticRegression(max_iter=200))
        pipe.fit(df[:100_000], y[:100_000])
    t0 = time.perf_counter()
    scorer = fl.compile(pipe, df[:5000])
    t_compile = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as d:
        scorer.save(Path(d) / "t2.forge")
        t_load = best_of(lambda: fl.load(Path(d) / "t2.forge"), repeats=5)
    wl = f"T2 pipeline predict_proba ({n} rows, LogisticRegression)"
    t_fl = best_of(lambda: scorer.predict_proba(df), repeats=5)
    cpu_fl = best_of(lambda: scorer.predict_proba(df, n_threads=1), repeats=3, clock=time.process_time)
    plain = fl.compile(pipe, df[:5000], fold=False, verify=False, profile=False)
    t_plain = best_of(lambda: plain.predict_proba(df), repeats=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_sk = best_of(lambda: pipe.predict_proba(df), repeats=1 if not quick else 2)
        cpu_sk = best_of(lambda: pipe.predict_proba(df), repeats=1, clock=time.process_time)
        want = pipe.predict_proba(df)
    got = scorer.predict_proba(df)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dec = pipe.decision_function(df)
    raw = scorer.predict_raw(df)
    # the linear contract's yardstick: the summed terms' magnitude (folded shifts included)
    m = min(n, 50_000)
    scale = plain.model.error_scale(plain.transform(df[:m])) + scorer.folded.shift_magnitude[0]
    rel = float(np.max(np.abs(raw[:m] - dec[:m]) / (np.abs(dec[:m]) + scale)))
    absp = float(np.max(np.abs(got - want)))
    load = os.getloadavg()[0]
    rows = [row(wl, "forgeline Scorer", t_fl, f"fused folded plan, all cores; vs sklearn: decision max "
                f"diff {rel:.1e} of (|dec| + sum|terms|), proba max abs diff {absp:.1e}; compile "
                f"{t_compile:.2f}s (incl. verification), load {t_load * 1e3:.1f} ms; CPU time 1 thread "
                f"{cpu_fl:.3f}s vs sklearn {cpu_sk:.2f}s = {cpu_sk / cpu_fl:.0f}x; loadavg {load:.1f}"),
            row(wl, "forgeline Scorer (fold=False)", t_plain, "feature matrix + model, same kernels"),
            row(wl, "sklearn Pipeline", t_sk)]
    sess, note = _onnx_session(pipe, df)
    if sess is None:
        rows.append(row(wl, "ONNX Runtime (skl2onnx)", None, note))
    else:
        s, feed = sess
        t_onnx = best_of(lambda: s.run(None, feed(df)), repeats=3)
        f_all = feed(df)
        t_run = best_of(lambda: s.run(None, f_all), repeats=3)
        rows.append(row(wl, "ONNX Runtime (skl2onnx)", t_onnx, "float32 inputs, 2 threads, feed "
                        f"built from pandas in the timing; run alone {t_run:.3f}s; proba max abs "
                        f"diff {float(np.max(np.abs(s.run(None, f_all)[1] - want))):.1e}"))
    one = df.iloc[:1]
    wl1 = "T2 pipeline single-row latency (pandas row in, proba out)"
    rows.append(row(wl1, "forgeline Scorer", per_call(lambda: scorer.predict_proba(one), 2000),
                    "one-row pandas DataFrame"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows.append(row(wl1, "sklearn Pipeline", per_call(lambda: pipe.predict_proba(one), 200)))
    if sess is not None:
        f1 = feed(one)
        rows.append(row(wl1, "ONNX Runtime (skl2onnx)", per_call(lambda: s.run(None, f1), 2000),
                        "feed prepared once"))
    d1 = {c: one[c].to_numpy() for c in one.columns}
    rows.append(row(wl1, "forgeline Scorer (dict of arrays in)",
                    per_call(lambda: scorer.predict_proba(d1), 2000)))
    r1 = one.iloc[0].to_dict()
    t0 = time.process_time()
    for _ in range(5000):
        scorer.predict_proba(r1)
    cpu1 = (time.process_time() - t0) / 5000
    rows.append(row(wl1, "forgeline Scorer (dict of scalars: row path)",
                    per_call(lambda: scorer.predict_proba(r1), 5000),
                    f"CPU time per call {cpu1 * 1e6:.1f} us; loadavg {os.getloadavg()[0]:.1f}"))
    return rows


def t2_lightgbm(quick: bool) -> list[dict]:
    try:
        import lightgbm as lgb
    except ImportError:
        return [row("T2 + LightGBM", "forgeline Scorer", None, "pip install lightgbm")]
    import forgeline as fl
    from sklearn.pipeline import make_pipeline

    n = 20_000 if quick else 500_000
    df = make_data(n)
    y = _target(df)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe = make_pipeline(sklearn_ct(), lgb.LGBMClassifier(n_estimators=100, num_leaves=31,
                                                              verbose=-1, n_jobs=2))
        pipe.fit(df[:100_000], y[:100_000])
    scorer = fl.compile(pipe, df[:5000])
    unfolded = fl.compile(pipe, df[:5000], fold=False)
    wl = f"T2 pipeline + LightGBM (100 trees) predict_proba ({n} rows)"
    t_fl = best_of(lambda: scorer.predict_proba(df), repeats=3)
    t_uf = best_of(lambda: unfolded.predict_proba(df), repeats=3)
    folds = scorer.tree_fold.folds if scorer.tree_fold is not None else []
    n_maps = sum(d.get("kind") == "map" for d in folds)
    n_onehot = len(folds) - n_maps
    # CPU time of one thread: what the fold saves, less exposed to the other tenants' load
    cpu_fl = best_of(lambda: scorer.predict_proba(df, n_threads=1), repeats=3,
                     clock=time.process_time)
    cpu_uf = best_of(lambda: unfolded.predict_proba(df, n_threads=1), repeats=3,
                     clock=time.process_time)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_sk = best_of(lambda: pipe.predict_proba(df), repeats=1)
        same = np.allclose(scorer.predict_proba(df), pipe.predict_proba(df), rtol=1e-12, atol=0)
    return [row(wl, "forgeline Scorer", t_fl, ("identical to sklearn+LightGBM" if same else "DIFFERS")
                + f"; {n_maps} columns' maps folded into tree thresholds, {n_onehot} one-hot "
                f"blocks read as codes; CPU time 1 thread {cpu_fl:.3f}s vs {cpu_uf:.3f}s unfolded; "
                f"loadavg {os.getloadavg()[0]:.1f}"),
            row(wl, "forgeline Scorer (fold=False)", t_uf, "same run, maps and one-hot kept in "
                "the plan"),
            row(wl, "sklearn Pipeline + LightGBM", t_sk)]


def run(quick: bool) -> list[dict]:
    return t2_logreg(quick) + t2_lightgbm(quick)


if __name__ == "__main__":
    print_rows(run("--quick" in sys.argv))
