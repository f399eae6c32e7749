"""T2 pipeline scoring: a compiled forgeline Scorer vs the sklearn pipeline it came from, and
ONNX Runtime via skl2onnx, same run. Also single-row latency, compile and load time, and
the same ColumnTransformer in front of LightGBM.

Usage: python bench/peers_pipeline.py [--quick]
"""

from __future__ import annotations

import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _timing import best_of, per_call, print_rows, row  # noqa: E402
from peers_transforms import make_data, sklearn_ct  # noqa: E402  (one T2 definition)


def _target(df):
    return (np.nan_to_num(df["n0"].to_numpy()) + (df["c0"] == "v1").to_numpy() > 1.5).astype(int)


def _onnx_session(pipe, df):
    try:
        import onnxruntime as ort
        from skl2onnx import to_onnx
        from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    except ImportError:
        return None, "pip install onnxruntime skl2onnx"
    inputs = [(c, StringTensorType([None, 1]) if df[c].dtype == object else FloatTensorType([None, 1]))
              for c in df.columns]
    try:
        onx = to_onnx(pipe, initial_types=inputs, options={"zipmap": False}, target_opset=17)
    except Exception as exc:  # noqa: BLE001 - converter coverage varies by version
        return None, f"skl2onnx could not convert: {type(exc).__name__}: {str(exc)[:80]}"
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(onx.SerializeToString(), opts, providers=["CPUExecutionProvider"])

    def feed(d):
        return {c: (d[c].to_numpy().astype(object if d[c].dtype == object else np.float32)
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
    t_fl = best_of(lambda: scorer.predict_proba(df), repeats=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_sk = best_of(lambda: pipe.predict_proba(df), repeats=1 if not quick else 2)
        want = pipe.predict_proba(df)
    got = scorer.predict_proba(df)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dec = pipe.decision_function(df)
    raw = scorer.predict_raw(df)
    rel = float(np.max(np.abs(raw - dec) / np.maximum(np.abs(dec), 1e-300)))
    absp = float(np.max(np.abs(got - want)))
    rows = [row(wl, "forgeline Scorer", t_fl, f"vs sklearn: decision max rel diff {rel:.1e}, proba max "
                f"abs diff {absp:.1e}; compile {t_compile:.2f}s (incl. verification), load "
                f"{t_load * 1e3:.1f} ms"),
            row(wl, "sklearn Pipeline", t_sk)]
    sess, note = _onnx_session(pipe, df)
    if sess is None:
        rows.append(row(wl, "ONNX Runtime (skl2onnx)", None, note))
    else:
        s, feed = sess
        t_onnx = best_of(lambda: s.run(None, feed(df)), repeats=3)
        rows.append(row(wl, "ONNX Runtime (skl2onnx)", t_onnx, "float32 inputs, 2 threads"))
    one = df.iloc[:1]
    wl1 = "T2 pipeline single-row latency (pandas row in, proba out)"
    rows.append(row(wl1, "forgeline Scorer", per_call(lambda: scorer.predict_proba(one), 2000)))
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
    rows.append(row(wl1, "forgeline Scorer (dict of scalars: row path)",
                    per_call(lambda: scorer.predict_proba(r1), 5000)))
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
    wl = f"T2 pipeline + LightGBM (100 trees) predict_proba ({n} rows)"
    t_fl = best_of(lambda: scorer.predict_proba(df), repeats=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_sk = best_of(lambda: pipe.predict_proba(df), repeats=1)
        same = np.allclose(scorer.predict_proba(df), pipe.predict_proba(df), rtol=1e-12, atol=0)
    return [row(wl, "forgeline Scorer", t_fl, "identical to sklearn+LightGBM" if same else "DIFFERS"),
            row(wl, "sklearn Pipeline + LightGBM", t_sk)]


def run(quick: bool) -> list[dict]:
    return t2_logreg(quick) + t2_lightgbm(quick)


if __name__ == "__main__":
    print_rows(run("--quick" in sys.argv))
