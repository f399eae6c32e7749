"""atheris (libFuzzer) harness for ``forgeline.load`` beyond the zip layer: hostile *content*.

``fuzz_bundle.py`` attacks the container; here the container is always valid (the checksums
match) and the fuzzer rewrites what is inside it: one manifest value (a tree count, a
feature index, a layer width, a vocabulary, ...) or one array (a child index set to -1 or
2**31, a truncated threshold array, a dtype change, NaN). This is what an attacker who can
recompute SHA-256 can do. The outcome must be a ``ForgelineError`` from loading, or a Scorer
whose predictions on a fixed sample either succeed or raise a ``ForgelineError``. A Python
exception of any other type, a MemoryError, or a crash in the native code is a finding.

Run: ``tools/fuzz.sh 20000 fuzz_load``. Seeds (LightGBM pipeline, logistic regression,
random forest, MLP) are compiled at start-up; that needs scikit-learn and LightGBM.
"""

from __future__ import annotations

import copy
import math
import os
import sys
import warnings

import atheris
import numpy as np

import _srcpath  # noqa: E402,F401  (the in-place build when there is one)

import pandas  # noqa: E402,F401  (heavy third-party imports stay uninstrumented)
import pyarrow  # noqa: E402,F401
import sklearn  # noqa: E402,F401

with atheris.instrument_imports(include=["forgeline"]):
    import forgeline as fl  # noqa: E402
    from forgeline.errors import ForgelineError  # noqa: E402
    from forgeline.scorer import Scorer  # noqa: E402
    import forgeline.models  # noqa: E402,F401
    import forgeline.drift  # noqa: E402,F401

STATS = {"load_error": 0, "loaded": 0, "predict_ok": 0, "predict_error": 0}

INTS = [-1, -2, 0, 1, 2, 3, 255, 2**31 - 1, -2**31, 2**32, 2**53, 10**12, 2**63 - 1]
FLOATS = [np.nan, np.inf, -np.inf, -0.0, 1e308, -1e308, 5e-324]
JSON_VALUES = INTS + [0.5, -1.5, None, True, False, "", "x", "numeric", "categorical", [], {},
                      [0], [1, 2, 3], {"a": 1}, float("nan")]


def _fuzz_ratio(a, b):
    return math.log1p(abs(a)) / (b * b + 1.0) if a == a else 0.0


def _seeds():
    ratio = fl.udf(_fuzz_ratio, name="ratio")
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(0)
    n = 400
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n),
                      "c": rng.choice(["x", "y", "z"], size=n)})
    X.loc[::17, "a"] = np.nan
    y = (X["b"] + (X["c"] == "y") > 0.3).astype(int)
    pre = ColumnTransformer([("num", Pipeline([("imp", SimpleImputer()), ("sc", StandardScaler())]),
                              ["a", "b"]),
                             ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["c"])])
    models = [Pipeline([("pre", pre), ("m", LogisticRegression())]),
              Pipeline([("pre", pre), ("m", MLPClassifier(hidden_layer_sizes=(5,), max_iter=50,
                                                          random_state=0))])]
    try:
        import lightgbm as lgb
        models.append(Pipeline([("pre", pre), ("m", lgb.LGBMClassifier(
            n_estimators=5, num_leaves=7, verbose=-1, n_jobs=1, random_state=0))]))
    except ImportError:
        pass
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for m in models:
            m.fit(X, y)
            out.append(fl.compile(m, X.iloc[:200]).to_parts())
        rf = Pipeline([("pre", pre), ("m", RandomForestRegressor(n_estimators=3, max_depth=4,
                                                                  random_state=0))]).fit(X, X["b"])
        out.append(fl.compile(rf, X.iloc[:200]).to_parts())
        # udfs: the manifest carries source; loads below alternate allow_code False/True
        from sklearn.preprocessing import FunctionTransformer
        ud = ColumnTransformer([("u", FunctionTransformer(ratio), ["a", "b"]),
                                ("cat", OneHotEncoder(handle_unknown="ignore",
                                                      sparse_output=False), ["c"])])
        udm = Pipeline([("pre", ud), ("m", LogisticRegression())]).fit(X.fillna(0.0), y)
        out.append(fl.compile(udm, X.iloc[:200].fillna(0.0)).to_parts())
    return out, X.iloc[:40].reset_index(drop=True)


SEEDS, SAMPLE = _seeds()
ONE_ROW = SAMPLE.iloc[:1]


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k in sorted(node):
            yield from _paths(node[k], prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node[:8]):
            yield from _paths(v, prefix + (i,))


def _set(root, path, value):
    node = root
    for p in path[:-1]:
        node = node[p]
    if value is _DELETE and isinstance(node, dict):
        del node[path[-1]]
    elif value is not _DELETE:
        node[path[-1]] = value


_DELETE = object()


def _mutate_array(fdp, a: np.ndarray) -> np.ndarray:
    op = fdp.ConsumeIntInRange(0, 6)
    a = np.array(a, copy=True)
    if op == 0 and a.size:
        i = fdp.ConsumeIntInRange(0, a.size - 1)
        flat = a.reshape(-1)
        if a.dtype.kind == "f":
            flat[i] = fdp.PickValueInList(FLOATS + [float(v) for v in INTS[:6]])
        elif a.dtype.kind in "iu":
            info = np.iinfo(a.dtype)
            flat[i] = min(max(fdp.PickValueInList(INTS), info.min), info.max)
        elif a.dtype.kind == "b":
            flat[i] = not flat[i]
        return a
    if op == 1:
        return a.reshape(-1)[:fdp.ConsumeIntInRange(0, max(a.size - 1, 0))]
    if op == 2:
        return np.concatenate([a.reshape(-1), np.zeros(fdp.ConsumeIntInRange(1, 5), a.dtype)])
    if op == 3:
        with np.errstate(all="ignore"):
            return a.astype(fdp.PickValueInList([np.int32, np.int64, np.float32, np.float64,
                                                  np.uint8, np.bool_]))
    if op == 4:
        return a.reshape(-1)
    if op == 5:
        return np.zeros((0,), a.dtype)
    if a.size:  # a whole array of one hostile value
        if a.dtype.kind in "iu":
            info = np.iinfo(a.dtype)
            return np.full(a.shape, min(max(fdp.PickValueInList(INTS[:4]), info.min), info.max),
                           dtype=a.dtype)
        return np.full(a.shape, np.nan, dtype=a.dtype if a.dtype.kind == "f" else np.float64)
    return a


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    body, arrays = SEEDS[fdp.ConsumeIntInRange(0, len(SEEDS) - 1)]
    body = copy.deepcopy(body)
    arrays = dict(arrays)
    for _ in range(fdp.ConsumeIntInRange(1, 3)):
        if fdp.ConsumeBool() and arrays:
            name = fdp.PickValueInList(sorted(arrays))
            arrays[name] = _mutate_array(fdp, arrays[name])
        else:
            paths = [p for p in _paths(body) if p]
            path = fdp.PickValueInList(paths)
            _set(body, path, _DELETE if fdp.ConsumeIntInRange(0, 9) == 0
                 else copy.deepcopy(fdp.PickValueInList(JSON_VALUES)))
    try:
        scorer = Scorer.from_parts(body, arrays, allow_code=fdp.ConsumeBool())
    except ForgelineError:
        STATS["load_error"] += 1
        return
    STATS["loaded"] += 1
    for X in (SAMPLE, ONE_ROW):
        try:
            out = scorer.predict_raw(X, n_threads=2)
            assert len(out) == len(X)
            STATS["predict_ok"] += 1
        except ForgelineError:
            STATS["predict_error"] += 1


def main() -> None:
    warnings.simplefilter("ignore")
    import atexit
    atexit.register(lambda: print(f"fuzz_load outcomes: {STATS}", file=sys.stderr))
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
