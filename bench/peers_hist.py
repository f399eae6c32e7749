"""HistGradientBoosting histograms inside forgeline.tune: the native, bit-identical kernel
(forgeline/_tune_hist.py) against sklearn's own HistogramBuilder, same run, one thread.

The fold matrix is bench/peers_tune.py's: ``make_data(100_000)``, forgeline's dense
ColumnTransformer fitted on the first 80k rows (340 columns, most of them one-hot), the T2
target. Rows:
  * the root histogram (all 80k rows) and a typical half-size node, sklearn's builder vs
    ``_core._hist_brute``;
  * one HistGradientBoostingClassifier(max_iter=30, early_stopping=False, random_state=0,
    max_leaf_nodes=31) fit, with the binned matrix cached as the tuner caches it (so the
    time is tree growing), with and without the drop-in; the note says whether the two
    fits' trees and predict_proba bits are identical.
Every time is the best of 3 under ``threadpool_limits(1)`` (sklearn's OpenMP loops pinned to
one thread, as the tuner pins its fits). ``--quick``: 20k rows, 10 iterations.

Usage: python bench/peers_hist.py [--quick]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _timing import add_source_tree, best_of, print_rows, row  # noqa: E402

add_source_tree()
import numpy as np  # noqa: E402
from peers_pipeline import _target  # noqa: E402
from peers_transforms import forgeline_ct, make_data  # noqa: E402


class _OneEntryCache:
    """The tuner's cache interface (get_or_fit) holding the fold's binned matrix."""

    def __init__(self):
        self._store = {}

    def get_or_fit(self, key, fit):
        if key in self._store:
            return self._store[key], True, 0
        value = self._store[key] = fit()
        return value, False, 0


def _fold(n_rows: int):
    df = make_data(int(n_rows * 1.25))
    train = df[:n_rows]
    X = np.asarray(forgeline_ct(sparse=False).fit_transform(train))
    return X, _target(train)


def run(quick: bool) -> list[dict]:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.ensemble._hist_gradient_boosting.common import HISTOGRAM_DTYPE
    from sklearn.ensemble._hist_gradient_boosting.histogram import HistogramBuilder
    from threadpoolctl import threadpool_limits

    from forgeline import _core, _tune_hist
    from forgeline._tune_model import install_bin_cache, remove_bin_cache

    n_rows, iters = (20_000, 10) if quick else (80_000, 30)
    X, y = _fold(n_rows)
    rows = []
    with threadpool_limits(1):
        est = HistGradientBoostingClassifier(max_iter=iters, early_stopping=False,
                                             random_state=0, max_leaf_nodes=31)
        cache = _OneEntryCache()

        def fit(fast: bool):
            model = est.__class__(**est.get_params())
            install_bin_cache(model, X, cache, "fold0")
            try:
                if fast:
                    with _tune_hist.enabled():
                        model.fit(X, y)
                else:
                    model.fit(X, y)
            finally:
                remove_bin_cache(model)
            return model

        fit(False)  # fills the binned-matrix cache (and warms both paths)
        holder = {}
        t_sk = best_of(lambda: holder.__setitem__("sk", fit(False)), repeats=3, warmup=0)
        t_fl = best_of(lambda: holder.__setitem__("fl", fit(True)), repeats=3, warmup=0)
        a, b = holder["sk"], holder["fl"]
        same = all(ta.nodes.tobytes() == tb.nodes.tobytes()
                   for pa, pb in zip(a._predictors, b._predictors) for ta, tb in zip(pa, pb))
        same = same and a.predict_proba(X).tobytes() == b.predict_proba(X).tobytes()
        wl = (f"HGB fit, cached bins ({X.shape[0]} x {X.shape[1]}, {iters} iters, 31 leaves), "
              "1 thread")
        rows.append(row(wl, "sklearn HistogramBuilder", t_sk))
        rows.append(row(wl, "forgeline histograms", t_fl,
                        f"{t_sk / t_fl:.2f}x sklearn; identical trees and predict_proba "
                        f"bits: {same}"))

        # the histogram kernel alone, on the fold's binned matrix and real gradients
        Xb = cache._store[next(iter(cache._store))][1]
        rng = np.random.default_rng(0)
        g = rng.standard_normal(Xb.shape[0]).astype(np.float32)
        h = rng.random(Xb.shape[0]).astype(np.float32)
        n = Xb.shape[0]
        nodes = {"root": np.arange(n, dtype=np.uint32),
                 "half-size node": np.sort(rng.choice(n, n // 2, replace=False)).astype(np.uint32),
                 "1/64-size node": np.sort(rng.choice(n, n // 64, replace=False)).astype(np.uint32)}
        Xr, counts = _tune_hist._matrix_aux(Xb)  # what the drop-in passes (once per matrix)
        for name, idx in nodes.items():
            sk = HistogramBuilder(Xb, 256, g, h, False, 1)
            out = np.empty((Xb.shape[1], 256), HISTOGRAM_DTYPE)
            og, oh = g.copy(), h.copy()
            t_sk = best_of(lambda: sk.compute_histograms_brute(idx), repeats=3)
            t_fl = best_of(lambda: _core._hist_brute(Xb, g, h, False, og, oh, idx, None, out, 1,
                                                     Xr, root_counts=counts), repeats=3)
            same = _tune_hist._as_array(sk.compute_histograms_brute(idx)).tobytes() == out.tobytes()
            wl = f"HGB histogram, {name} ({len(idx)} x {Xb.shape[1]}), 1 thread"
            rows.append(row(wl, "sklearn HistogramBuilder", t_sk))
            rows.append(row(wl, "forgeline _hist_brute", t_fl,
                            f"{t_sk / t_fl:.2f}x sklearn; same bytes: {same}"))
    return rows


if __name__ == "__main__":
    t0 = time.perf_counter()
    print_rows(run("--quick" in sys.argv))
    print(f"({time.perf_counter() - t0:.0f} s)")
