"""Tuning workload: forgeline.tune.search vs GridSearchCV / HalvingGridSearchCV, same run.

The T2 pipeline (bench/peers_transforms.py: 30 numeric impute -> log1p -> scale, 10 numeric
impute -> quantile bins, 10 categorical one-hot) with LogisticRegression and with
HistGradientBoostingClassifier; a 24-candidate grid over a transform parameter (the number
of quantile bins) and model parameters; 5-fold CV on 100k rows (``--quick``: 2k rows and a
4-candidate grid, for CI). Every engine gets the same ``n_jobs`` (``--jobs``, default 2):
sklearn's searches run joblib processes (loky pins each worker's BLAS/OpenMP to
cores // n_jobs), forgeline runs threads with BLAS/OpenMP pinned to 1 thread per fit.

Rows:
  * sklearn GridSearchCV and HalvingGridSearchCV on the sklearn pipeline;
  * ``forgeline grid (sklearn CT)``: the same sklearn pipeline, so the only difference is
    the per-fold transform cache (a prefix is fitted once per (fold, n_bins));
  * ``forgeline grid (native CT)``: forgeline's own ColumnTransformer (exact equivalent of
    the sklearn one), so the cache plus the native transform kernels;
  * ``forgeline grid warm-start path (opt-in, inexact)`` (LogisticRegression only):
    ``warm_start_path="model__C"``, each fold's C values fitted in ascending order from the
    previous fit's coefficients; its note carries its own and GridSearchCV's best;
  * ``forgeline halving (native CT)``: successive halving on rows (LogisticRegression) or on
    boosting rounds (HistGradientBoosting, max_iter) with the cache.
The note carries each run's best mean CV score (roc_auc), best parameters, the ratio to
GridSearchCV in the same run (wall, and CPU seconds of the process and its workers, which
the other tenants of a shared box do not inflate), and the cache hit counts (prefix; HGB
binned data).

Usage: python bench/peers_tune.py [--quick] [--model lr|hgb] [--rows N] [--jobs N]
       [--skip-sklearn-ct]
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _timing import add_source_tree, row  # noqa: E402

add_source_tree()  # the checkout's in-place build, when there is one
from peers_pipeline import _target  # noqa: E402
from peers_transforms import forgeline_ct, make_data, sklearn_ct  # noqa: E402

BINS = (8, 16)


def _native_variants(sparse: bool):
    """forgeline's ColumnTransformer has no nested params: one whole branch list per n_bins."""
    out = []
    for b in BINS:
        ct = forgeline_ct(sparse=sparse)
        branches = []
        for name, t, cols in ct.transformers:
            if name == "bins":
                t[1].set_params(n_bins=b)
            branches.append((name, t, cols))
        out.append(branches)
    return out


def _spaces(model: str, quick: bool):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    if model == "lr":
        est = LogisticRegression(max_iter=100)
        grid = {"model__C": [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0,
                             100.0, 300.0]}
        if quick:  # a smoke run: tiny grid
            grid = {"model__C": grid["model__C"][::6]}
    else:
        est = HistGradientBoostingClassifier(max_iter=30, early_stopping=False, random_state=0)
        grid = {"model__learning_rate": [0.05, 0.1, 0.3], "model__max_leaf_nodes": [15, 31],
                "model__l2_regularization": [0.0, 1.0]}
        if quick:
            grid = {"model__learning_rate": [0.1], "model__max_leaf_nodes": [15],
                    "model__l2_regularization": [0.0]}
    return est, grid


class _Rows(list):
    def __init__(self, echo):
        super().__init__()
        self.echo = echo

    def append(self, r):
        super().append(r)
        if self.echo:
            _print(r)


def _pipe(ct, est):
    from sklearn.pipeline import Pipeline
    return Pipeline([("ct", ct), ("model", est)])


def _fmt(score, params):
    short = {k.split("__")[-1]: (v if not isinstance(v, list) else
                                 f"bins{[t for n, t, _ in v if n == 'bins'][0][1].n_bins}")
             for k, v in params.items()}
    return f"best roc_auc {score:.6f} {short}"


def _one(model: str, quick: bool, df, y, echo=False, n_jobs=2, sklearn_ct_row=True
         ) -> list[dict]:
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    from forgeline import tune
    try:
        from sklearn.experimental import enable_halving_search_cv  # noqa: F401
        from sklearn.model_selection import HalvingGridSearchCV
    except ImportError:  # pragma: no cover
        HalvingGridSearchCV = None
    est, grid = _spaces(model, quick)
    # LogisticRegression gets sklearn's default CSR output (one-hot sparse_output=True; the
    # ColumnTransformer's total density is under its 0.3 threshold); HistGradientBoosting
    # rejects sparse input, so its pipeline is dense.
    sparse = model == "lr"
    sk_space = {"ct__bins__kbinsdiscretizer__n_bins": list(BINS), **grid}
    fl_space = {"ct__transformers": _native_variants(sparse), **grid}
    n_cand = len(BINS) * int(__import__("math").prod(len(v) for v in grid.values()))
    name = "LogisticRegression" if model == "lr" else "HistGradientBoosting"
    wl = f"tune {name} ({len(y)} rows, {n_cand} candidates, 5-fold)"
    cv = StratifiedKFold(5)
    rows, ref = _Rows(echo), None

    cpu: dict = {}

    def timed(fn):
        c0, t0 = _cpu_seconds(), time.perf_counter()
        out = fn()
        t = time.perf_counter() - t0
        cpu["last"] = _cpu_seconds() - c0
        return t, out

    def ratio(t):
        """Wall ratio to GridSearchCV, plus the CPU-seconds ratio (load-independent)."""
        c = cpu["last"]
        return (f"{ref / t:.2f}x vs GridSearchCV (CPU {c:.0f}s, {ref_cpu / c:.2f}x CPU)"
                if c > 0 else f"{ref / t:.2f}x vs GridSearchCV")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t, gs = timed(lambda: GridSearchCV(_pipe(sklearn_ct(sparse=sparse), est), sk_space, cv=cv,
                                           scoring="roc_auc", n_jobs=n_jobs).fit(df, y))
        ref, ref_cpu = t, cpu["last"]
        rows.append(row(wl, "sklearn GridSearchCV", t, f"CPU {ref_cpu:.0f}s; "
                        + _fmt(gs.best_score_, gs.best_params_)))
        if HalvingGridSearchCV is not None:
            t, hs = timed(lambda: HalvingGridSearchCV(
                _pipe(sklearn_ct(sparse=sparse), est), sk_space, cv=cv, scoring="roc_auc", n_jobs=n_jobs,
                random_state=0).fit(df, y))
            rows.append(row(wl, "sklearn HalvingGridSearchCV", t,
                            f"{ratio(t)}; " + _fmt(hs.best_score_, hs.best_params_)))
        if sklearn_ct_row:
            t, r = timed(lambda: tune.search(_pipe(sklearn_ct(sparse=sparse), est), sk_space, df, y, cv=cv,
                                             scoring="roc_auc", n_jobs=n_jobs, progress=False))
            rows.append(row(wl, "forgeline grid (sklearn CT)", t,
                            f"{ratio(t)}; {_hits(r)}; "
                            + _fmt(r.best_score_, r.best_params_)))
        t, r = timed(lambda: tune.search(_pipe(forgeline_ct(sparse=sparse), est), fl_space, df, y, cv=cv,
                                         scoring="roc_auc", n_jobs=n_jobs, progress=False))
        rows.append(row(wl, "forgeline grid (native CT)", t,
                        f"{ratio(t)}; {_hits(r)}; "
                        + _fmt(r.best_score_, r.best_params_)))
        if "warm_start" in est.get_params() and model == "lr":
            # opt-in and inexact: the fold's C values fitted in order with warm starts
            t, w = timed(lambda: tune.search(
                _pipe(forgeline_ct(sparse=sparse), est), fl_space, df, y, cv=cv, scoring="roc_auc",
                n_jobs=n_jobs, progress=False, warm_start_path="model__C"))
            rows.append(row(wl, "forgeline grid warm-start path (opt-in, inexact)", t,
                            f"{ratio(t)}; {_hits(w)}; "
                            + _fmt(w.best_score_, w.best_params_)
                            + f"; GridSearchCV {_fmt(gs.best_score_, gs.best_params_)}"
                            + f"; best-score diff {w.best_score_ - gs.best_score_:+.2e}"))
        t, r = timed(lambda: tune.search(_pipe(forgeline_ct(sparse=sparse), est), fl_space, df, y, cv=cv,
                                         scoring="roc_auc", strategy="halving",
                                         random_state=0, n_jobs=n_jobs, progress=False))
        rows.append(row(wl, "forgeline halving (native CT)", t,
                        f"{ratio(t)}; on {r.extra['halving_resource']}; "
                        f"{_hits(r)}; " + _fmt(r.best_score_, r.best_params_)))
    return list(rows)


def _cpu_seconds() -> float:
    """CPU seconds of this process, its live child processes (sklearn's loky workers) and
    its reaped children. On a loaded shared box wall time moves with the other tenants;
    CPU time charges each engine for the work it did on every core, so its ratio holds."""
    import os
    import resource
    total = sum(getattr(resource.getrusage(w), f) for w in (resource.RUSAGE_SELF,
                resource.RUSAGE_CHILDREN) for f in ("ru_utime", "ru_stime"))
    me, tick = os.getpid(), os.sysconf("SC_CLK_TCK")
    try:
        pids = [d for d in os.listdir("/proc") if d.isdigit()]
    except OSError:  # pragma: no cover - not Linux: own CPU only
        return total
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me:  # ppid; utime and stime are fields 14 and 15 of stat
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _hits(r) -> str:
    return f"cache hits {r.cache_hits_} prefix / {r.model_cache_hits_} bins"


def _print(r):
    s = "n/a" if r["seconds"] is None else f"{r['seconds']:.2f}s"
    print(f"{r['workload']:<55} {r['engine']:<30} {s:>9}  {r['note']}", flush=True)


def run(quick: bool, models=("lr", "hgb"), n: int | None = None, echo=False, n_jobs=2,
        sklearn_ct_row=True) -> list[dict]:
    n = n or (2_000 if quick else 100_000)
    df = make_data(n)
    y = _target(df)
    rows = []
    for model in models:
        rows += _one(model, quick, df, y, echo=echo, n_jobs=n_jobs,
                     sklearn_ct_row=sklearn_ct_row)
    return rows


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--model", choices=["lr", "hgb"], action="append")
    ap.add_argument("--rows", type=int, default=None)
    ap.add_argument("--jobs", type=int, default=2, help="n_jobs given to every engine")
    ap.add_argument("--skip-sklearn-ct", action="store_true",
                    help="leave out the forgeline-on-the-sklearn-pipeline row")
    a = ap.parse_args()
    import os
    print(f"# uptime: {os.getloadavg()}", flush=True)
    run(a.quick, tuple(a.model or ("lr", "hgb")), a.rows, echo=True, n_jobs=a.jobs,
        sklearn_ct_row=not a.skip_sklearn_ct)
    print(f"# uptime: {os.getloadavg()}", flush=True)
