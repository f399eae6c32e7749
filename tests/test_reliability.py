"""Reliability: shared Scorers under many threads, several Scorers at once, flat memory over
load/score/free loops, and bit-identical results across thread counts and chunk sizes for
every model kind."""

from __future__ import annotations

import concurrent.futures as cf
import gc
import os
import warnings

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import forgeline as fl
import forgeline.scorer as scorer_mod


def _pipe(model, X, y):
    from forgeline import _demo

    ct = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), _demo.NUMERIC),
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), _demo.CATEGORICAL)])
    return make_pipeline(ct, model).fit(X, y)


@pytest.fixture(scope="module")
def scorers(churn_pipeline, churn_data, churn_scorer):
    from forgeline import _demo

    train, _ = churn_data
    _, X = churn_pipeline
    y = train[_demo.TARGET]
    linear = fl.compile(_pipe(LogisticRegression(max_iter=300), X, y), X.iloc[:1000])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a small, quickly trained network
        mlp = fl.compile(_pipe(MLPClassifier(hidden_layer_sizes=(16,), max_iter=50, random_state=0),
                               X, y), X.iloc[:1000])
    return {"trees": churn_scorer, "linear": linear, "mlp": mlp}


def test_sixteen_threads_share_each_scorer_and_scorers_run_together(scorers, churn_data):
    _, current = churn_data
    cur = current[list(scorers["trees"].schema.names)]
    parts = [cur.iloc[i::16] for i in range(16)]
    expected = {k: [s.predict_proba(p) for p in parts] for k, s in scorers.items()}
    jobs = [(k, i) for k in scorers for i in range(16)] * 2
    with cf.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda ki: (ki, scorers[ki[0]].predict_proba(parts[ki[1]])), jobs))
    for (k, i), got in results:
        np.testing.assert_array_equal(got, expected[k][i])


@pytest.mark.parametrize("kind", ["trees", "linear", "mlp"])
def test_bit_identical_across_threads_and_chunk_sizes(scorers, churn_data, kind, monkeypatch):
    _, current = churn_data
    s = scorers[kind]
    cur = current[list(s.schema.names)]
    ref = s.predict_raw(cur, n_threads=1)
    for n_threads in (2, 3, 8):
        np.testing.assert_array_equal(s.predict_raw(cur, n_threads=n_threads), ref)
    for chunk_bytes in (1, 1 << 16, 1 << 30):
        monkeypatch.setattr(scorer_mod, "CHUNK_BYTES", chunk_bytes)
        np.testing.assert_array_equal(s.predict_raw(cur, n_threads=2), ref)


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
def test_load_score_free_loop_keeps_memory_flat(scorers, churn_data, tmp_path):
    _, current = churn_data
    path = tmp_path / "m.forge"
    scorers["trees"].save(path)
    cur = current[list(scorers["trees"].schema.names)].iloc[:500]

    def once():
        s = fl.load(path)
        s.predict_proba(cur)
        del s

    for _ in range(20):  # warm-up: allocator pools, caches, lazy imports
        once()
    gc.collect()
    before = _rss_mib()
    for _ in range(200):
        once()
    gc.collect()
    grown = _rss_mib() - before
    # a leak of even one tree ensemble per loop (~100 KiB) would add ~20 MiB here
    assert grown < 15, f"RSS grew by {grown:.1f} MiB over 200 load/score/free loops"
