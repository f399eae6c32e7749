"""T2 transforms workload: forgeline's ColumnTransformer vs scikit-learn's, same run.

Workload T2 (DESIGN.md): 500k rows; 30 numeric columns median-impute -> log1p -> standard
scale; 10 numeric columns median-impute -> 16 quantile bins (ordinal); 10 categorical
columns with 30 levels one-hot encoded with handle_unknown="ignore" (340 outputs).
Also a chunked ``partial_fit`` over 10M rows (rows/s and peak RSS). ``--quick`` shrinks all.

Usage: python bench/peers_transforms.py [--quick]
"""

from __future__ import annotations

import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _timing import best_of, row  # noqa: E402

NUM, CAT, LEVELS = 40, 10, 30


def make_data(n: int, seed: int = 0):
    import pandas as pd
    rng = np.random.default_rng(seed)
    d = {f"n{i}": rng.lognormal(0, 1, n) for i in range(NUM)}
    for i in range(NUM):
        d[f"n{i}"][rng.random(n) < 0.05] = np.nan
    for i in range(CAT):
        d[f"c{i}"] = rng.choice([f"v{k}" for k in range(LEVELS)], n).astype(object)
    return pd.DataFrame(d)


def forgeline_ct(n_threads=None):
    from forgeline import transforms as ft
    num = [f"n{i}" for i in range(NUM)]
    cat = [f"c{i}" for i in range(CAT)]
    return ft.ColumnTransformer([
        ("num", [ft.SimpleImputer(strategy="median"), ft.Log1p(), ft.StandardScaler()], num[:30]),
        ("bins", [ft.SimpleImputer(strategy="median"),
                  ft.KBinsDiscretizer(n_bins=16, encode="ordinal", strategy="quantile",
                                      subsample=None)], num[30:]),
        ("cat", ft.OneHotEncoder(handle_unknown="ignore", sparse_output=False), cat),
    ], n_threads=n_threads)


def sklearn_ct():
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import (FunctionTransformer, KBinsDiscretizer, OneHotEncoder,
                                       StandardScaler)
    num = [f"n{i}" for i in range(NUM)]
    cat = [f"c{i}" for i in range(CAT)]
    return ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), FunctionTransformer(np.log1p),
                              StandardScaler()), num[:30]),
        ("bins", make_pipeline(SimpleImputer(strategy="median"),
                               KBinsDiscretizer(n_bins=16, encode="ordinal", strategy="quantile",
                                                subsample=None)), num[30:]),
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), cat),
    ])


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def t2(quick: bool) -> list[dict]:
    n = 20_000 if quick else 500_000
    df = make_data(n)
    wl_fit, wl_tr = f"T2 fit ({n} rows)", f"T2 transform ({n} rows)"
    rows = []
    fl = forgeline_ct()
    fl_fit = best_of(lambda: forgeline_ct().fit(df), repeats=1 if quick else 3)
    fl.fit(df)
    fl_tr = best_of(lambda: fl.transform(df), repeats=3)
    out_fl = fl.transform(df)
    try:
        import sklearn  # noqa: F401
    except ImportError:
        rows += [row(wl_fit, "forgeline", fl_fit), row(wl_tr, "forgeline", fl_tr),
                 row(wl_fit, "sklearn", None, "pip install scikit-learn")]
        return rows
    sk = sklearn_ct()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk_fit = _timed(lambda: sk.fit(df))
        sk_tr = best_of(lambda: sk.transform(df), repeats=1 if quick else 2)
        out_sk = sk.transform(df)
    equal = out_sk.shape == out_fl.shape and np.allclose(out_fl, out_sk, rtol=1e-12, atol=0,
                                                         equal_nan=True)
    maxdiff = float(np.nanmax(np.abs(out_fl - out_sk))) if out_sk.shape == out_fl.shape else np.inf
    note = f"output {'identical' if equal else 'DIFFERS'} (rtol 1e-12; max |diff| {maxdiff:.2e}); {out_fl.shape[1]} cols"
    rows += [row(wl_fit, "forgeline ColumnTransformer", fl_fit, note),
             row(wl_fit, "sklearn ColumnTransformer", sk_fit),
             row(wl_tr, "forgeline ColumnTransformer", fl_tr, note),
             row(wl_tr, "sklearn ColumnTransformer", sk_tr)]
    return rows


def chunked(quick: bool) -> list[dict]:
    """partial_fit over many chunks (numeric branch statistics + one-hot frequencies)."""
    from forgeline import transforms as ft
    total = 200_000 if quick else 10_000_000
    chunk = 50_000 if quick else 500_000
    base = make_data(chunk, seed=1)
    num = [f"n{i}" for i in range(NUM)]
    cat = [f"c{i}" for i in range(CAT)]
    imp = ft.SimpleImputer(strategy="median", sketch_exact_limit=0)
    sc = ft.StandardScaler()
    ohe = ft.OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    done = 0
    while done < total:
        imp.partial_fit(base[num])
        sc.partial_fit(base[num])
        ohe.partial_fit(base[cat])
        done += chunk
    dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    wl = f"T2 chunked partial_fit ({total} rows, {chunk}-row chunks)"
    note = (f"{total / dt / 1e6:.2f} Mrows/s; peak RSS {rss / 1024:.0f} MiB (before: "
            f"{rss0 / 1024:.0f} MiB); median sketch k=4096")
    return [row(wl, "forgeline partial_fit", dt, note)]


def run(quick: bool) -> list[dict]:
    # The chunked run goes first so that its peak-RSS reading is not sklearn's T2 peak.
    rows = chunked(quick)
    return t2(quick) + rows


if __name__ == "__main__":
    for r in run("--quick" in sys.argv):
        secs = "skipped" if r["seconds"] is None else f"{r['seconds']:.3f}s"
        print(f"{r['workload']:<55} {r['engine']:<30} {secs:>10}  {r['note']}")
