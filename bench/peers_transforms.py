"""T2 transforms workload: forgeline's ColumnTransformer vs scikit-learn's, same run.

Workload T2 (DESIGN.md): 500k rows; 30 numeric columns median-impute -> log1p -> standard
scale; 10 numeric columns median-impute -> 16 quantile bins (ordinal); 10 categorical
columns with 30 levels one-hot encoded with handle_unknown="ignore" (340 outputs).
Also a chunked ``partial_fit`` over 10M rows (rows/s and peak RSS). ``--quick`` shrinks all.

Usage: python bench/peers_transforms.py [--quick]
"""

from __future__ import annotations

import os
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _timing import add_source_tree, best_of, row  # noqa: E402

add_source_tree()  # the checkout's in-place build, when there is one

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


def forgeline_ct(n_threads=None, sparse=False):
    from forgeline import transforms as ft
    num = [f"n{i}" for i in range(NUM)]
    cat = [f"c{i}" for i in range(CAT)]
    kw = {"n_threads": n_threads}  # every step too: n_threads=1 means one thread throughout
    return ft.ColumnTransformer([
        ("num", [ft.SimpleImputer(strategy="median", **kw), ft.Log1p(**kw),
                 ft.StandardScaler(**kw)], num[:30]),
        ("bins", [ft.SimpleImputer(strategy="median", **kw),
                  ft.KBinsDiscretizer(n_bins=16, encode="ordinal", strategy="quantile",
                                      subsample=None, **kw)], num[30:]),
        ("cat", ft.OneHotEncoder(handle_unknown="ignore", sparse_output=sparse, **kw), cat),
    ], n_threads=n_threads)


def sklearn_ct(sparse=False):
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
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=sparse), cat),
    ])


def _best_wall_cpu(fn, repeats: int) -> tuple[float, float]:
    """Best wall time and best process CPU time (all threads) over ``repeats`` calls.

    On the shared 2-core machine wall time moves with the other tenants' load; CPU time
    does much less, and it charges forgeline for every thread it uses, so the CPU-time
    ratio is the conservative one.
    """
    wall = cpu = float("inf")
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - w0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, cpu


def _same(a, b) -> tuple[bool, str]:
    from scipy import sparse
    if sparse.issparse(a) != sparse.issparse(b) or a.shape != b.shape:
        return False, f"DIFFERS: {type(a).__name__}{a.shape} vs {type(b).__name__}{b.shape}"
    if sparse.issparse(a):
        same = (np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
                and np.array_equal(a.data, b.data, equal_nan=True))
        return same, f"CSR {'identical' if same else 'DIFFERS'} (indptr, indices, data)"
    same = np.array_equal(a, b, equal_nan=True)
    maxdiff = float(np.nanmax(np.abs(a - b)))
    return same, f"dense {'identical' if same else 'DIFFERS'} (max |diff| {maxdiff:.1e})"


def t2(quick: bool) -> list[dict]:
    """T2 fit and transform, side by side with sklearn, for both one-hot output layouts.

    ``sparse``: sklearn's defaults (OneHotEncoder(sparse_output=True), ColumnTransformer
    sparse_threshold=0.3). T2's output density is 50/340 < 0.3, so sklearn returns CSR and
    so does forgeline (built natively from the plan, no dense intermediate).
    ``dense``: OneHotEncoder(sparse_output=False) in both: a (n, 340) float64 array.
    """
    n = 20_000 if quick else 500_000
    df = make_data(n)
    rows = []
    try:
        import sklearn  # noqa: F401
    except ImportError:
        sklearn = None
    for layout, sparse in (("sparse, sklearn defaults", True), ("dense", False)):
        wl_fit = f"T2 fit ({n} rows, {layout})"
        wl_tr = f"T2 transform ({n} rows, {layout})"
        fl_fit = _best_wall_cpu(lambda: forgeline_ct(sparse=sparse).fit(df), 1 if quick else 3)
        fl = forgeline_ct(sparse=sparse).fit(df)
        fl.transform(df)  # warm-up
        fl_tr = _best_wall_cpu(lambda: fl.transform(df), 3)
        # one thread: the CPU cost on a shared machine, where the wall-time ratio moves with load
        fl1 = forgeline_ct(n_threads=1, sparse=sparse).fit(df)
        fl1_tr = _best_wall_cpu(lambda: fl1.transform(df), 3)
        out_fl = fl.transform(df)
        if sklearn is None:
            rows += [row(wl_fit, "forgeline ColumnTransformer", fl_fit[0]),
                     row(wl_tr, "forgeline ColumnTransformer", fl_tr[0]),
                     row(wl_fit, "sklearn ColumnTransformer", None, "pip install scikit-learn")]
            continue
        sk = sklearn_ct(sparse=sparse)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sk_fit = _best_wall_cpu(lambda: sklearn_ct(sparse=sparse).fit(df), 1 if quick else 2)
            sk.fit(df)
            sk_tr = _best_wall_cpu(lambda: sk.transform(df), 1 if quick else 2)
            out_sk = sk.transform(df)
        _, same = _same(out_fl, out_sk)
        for wl, f, k in ((wl_fit, fl_fit, sk_fit), (wl_tr, fl_tr, sk_tr)):
            note = (f"{k[0] / f[0]:.1f}x sklearn wall, {k[1] / f[1]:.1f}x CPU "
                    f"(forgeline CPU {f[1]:.3f}s); output {same}")
            rows += [row(wl, "forgeline ColumnTransformer", f[0], note),
                     row(wl, "sklearn ColumnTransformer", k[0], f"CPU {k[1]:.3f}s")]
        if sparse:  # one thread throughout: the CPU-time ratio without any parallel help
            f1 = _best_wall_cpu(lambda: forgeline_ct(n_threads=1, sparse=True).fit(df),
                                1 if quick else 3)
            rows.append(row(wl_fit, "forgeline ColumnTransformer n_threads=1", f1[0],
                            f"{sk_fit[1] / f1[1]:.1f}x sklearn CPU time (forgeline CPU "
                            f"{f1[1]:.3f}s, sklearn CPU {sk_fit[1]:.3f}s), "
                            f"{sk_fit[0] / f1[0]:.1f}x sklearn wall"))
        rows.append(row(wl_tr, "forgeline ColumnTransformer (1 thread)", fl1_tr[0],
                        f"CPU {fl1_tr[1]:.3f}s = {sk_tr[1] / fl1_tr[1]:.1f}x sklearn CPU, "
                        f"{sk_tr[0] / fl1_tr[0]:.1f}x sklearn wall; loadavg {os.getloadavg()[0]:.1f}"))
    return rows


def chunked(quick: bool, total: int | None = None) -> list[dict]:
    """partial_fit over many chunks (numeric branch statistics + one-hot frequencies)."""
    from forgeline import transforms as ft
    total = total or (200_000 if quick else 10_000_000)
    chunk = 50_000 if quick else 500_000
    base = make_data(chunk, seed=1)
    num = [f"n{i}" for i in range(NUM)]
    cat = [f"c{i}" for i in range(CAT)]
    imp = ft.SimpleImputer(strategy="median", sketch_exact_limit=0)
    sc = ft.StandardScaler()
    ohe = ft.OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0, c0 = time.perf_counter(), time.process_time()
    done = 0
    while done < total:
        imp.partial_fit(base[num])
        sc.partial_fit(base[num])
        ohe.partial_fit(base[cat])
        done += chunk
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    wl = f"T2 chunked partial_fit ({total} rows, {chunk}-row chunks)"
    bound = max(s.rank_error_bound() for s in imp._acc["sk"]) / total
    note = (f"{total / dt / 1e6:.2f} Mrows/s wall, {total / cpu / 1e6:.2f} Mrows/s per CPU-s; "
            f"peak RSS {rss / 1024:.0f} MiB (before: {rss0 / 1024:.0f} MiB); median sketch "
            f"k=4096, rank error <= {bound:.2%} of n")
    return [row(wl, "forgeline partial_fit", dt, note)]


def run(quick: bool) -> list[dict]:
    # The chunked run goes first so that its peak-RSS reading is not sklearn's T2 peak.
    rows = chunked(quick)
    return t2(quick) + rows


if __name__ == "__main__":
    for r in run("--quick" in sys.argv):
        secs = "skipped" if r["seconds"] is None else f"{r['seconds']:.3f}s"
        print(f"{r['workload']:<55} {r['engine']:<30} {secs:>10}  {r['note']}")
