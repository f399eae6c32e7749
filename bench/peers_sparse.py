"""Exact sparse products inside tune's fits: forgeline's packed CSR kernel vs scipy, same run.

The matrix is the T2 pipeline's sklearn ColumnTransformer output (CSR, 80k x 340, ~49.4
nonzeros a row; ``--quick``: 5k rows). Rows:
  * ``X @ w`` and ``X.T @ g`` (scipy's csr_matvec / csc_matvec over the transposed view vs
    forgeline's ``_SpPacked.matvec``), 1 thread in CPU seconds (the tuning loop already runs
    one fit per core), and 2 threads in wall seconds;
  * one ``LogisticRegression(C=30, max_iter=100).fit`` (lbfgs, binary) on the plain matrix
    vs on ``forgeline._tune_sparse.wrap(X)``; the note says whether coef_/intercept_/n_iter_
    are bit-identical (they must be).
Notes carry the load average (the box is shared: compare ratios within one run).

Usage: python bench/peers_sparse.py [--quick]
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _timing import add_source_tree, best_of, print_rows, row  # noqa: E402

add_source_tree()
from peers_pipeline import _target  # noqa: E402
from peers_transforms import make_data, sklearn_ct  # noqa: E402


def _load() -> str:
    return "load %.2f" % os.getloadavg()[0]


def run(quick: bool) -> list[dict]:
    from sklearn.linear_model import LogisticRegression

    from forgeline._native import core
    from forgeline._tune_sparse import wrap

    n = 5_000 if quick else 80_000
    df = make_data(n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        X = sklearn_ct(sparse=True).fit_transform(df[:n]).tocsr()
    y = _target(df[:n])
    shape = f"T2 CSR {X.shape[0]}x{X.shape[1]}, {X.nnz / X.shape[0]:.1f} nnz/row"
    rng = np.random.default_rng(0)
    w, g = rng.standard_normal(X.shape[1]), rng.standard_normal(X.shape[0])
    t0 = time.perf_counter()
    fwd = core._SpPacked(X.indptr, X.indices, X.data, X.shape[1])
    t1 = time.perf_counter()
    bwd = core._SpPacked(X.indptr, X.indices, X.data, X.shape[1], True)
    t2 = time.perf_counter()
    same = (np.array_equal((X @ w).view(np.int64), fwd.matvec(w, 1).view(np.int64))
            and np.array_equal((X.T @ g).view(np.int64), bwd.matvec(g, 1).view(np.int64)))
    reps = 9 if quick else 15
    cpu = time.process_time
    rows = []
    for wl, ref, mine in (
        (f"sparse X @ w ({shape})", lambda: X @ w, lambda t: fwd.matvec(w, t)),
        (f"sparse X.T @ g ({shape})", lambda: X.T @ g, lambda t: bwd.matvec(g, t)),
        (f"sparse X @ w + X.T @ g per evaluation ({shape})",
         lambda: (X @ w, X.T @ g), lambda t: (fwd.matvec(w, t), bwd.matvec(g, t))),
    ):
        s_ref = best_of(ref, reps, clock=cpu)
        s1 = best_of(lambda: mine(1), reps, clock=cpu)
        s2 = best_of(lambda: mine(2), reps)
        rows.append(row(wl, "forgeline 1 thread (CPU s)", s1,
                        f"{s_ref / s1:.2f}x scipy; bit-identical: {same}; {_load()}"))
        rows.append(row(wl, "forgeline 2 threads (wall s)", s2, f"{s_ref / s2:.2f}x scipy"))
        rows.append(row(wl, "scipy (CPU s)", s_ref, ""))
    wl = f"LogisticRegression(C=30, max_iter=100).fit on {shape}"
    W = wrap(X, n_threads=1)
    fits = {}

    def fit(M, key):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits[key] = LogisticRegression(C=30, max_iter=100).fit(M, y)

    fit(W, "fl")  # builds the packed copies once, as the first fit on a cached matrix does
    s_fl = best_of(lambda: fit(W, "fl"), 3, warmup=0, clock=cpu)
    s_sk = best_of(lambda: fit(X, "sk"), 3, warmup=0, clock=cpu)
    a, b = fits["fl"], fits["sk"]
    ident = (np.array_equal(a.coef_.view(np.int64), b.coef_.view(np.int64))
             and np.array_equal(a.intercept_.view(np.int64), b.intercept_.view(np.int64))
             and np.array_equal(a.n_iter_, b.n_iter_))
    rows.append(row(wl, "forgeline wrap(X), 1 thread (CPU s)", s_fl,
                    f"{s_sk / s_fl:.2f}x sklearn; n_iter {int(a.n_iter_[0])}; coef/intercept/"
                    f"n_iter bit-identical: {ident}; packing X {t1 - t0:.3f} s, X.T {t2 - t1:.3f} s "
                    f"(once per cached matrix); {_load()}"))
    rows.append(row(wl, "sklearn on scipy CSR (CPU s)", s_sk, ""))
    return rows


if __name__ == "__main__":
    print_rows(run("--quick" in sys.argv))
