"""Cross-validation machinery of :mod:`forgeline.tune`: the per-fold transform cache.

A candidate is a dict of ``step__param`` values. The pipeline is cut in two: the *prefix*
(every step but the last) and the *suffix* (the final estimator). The prefix is fitted once
per ``(fold, prefix key)``, where the prefix key is the candidate's values of the prefix
parameters, and its transformed train/validation matrices are kept in a byte-bounded LRU
cache. Every other candidate with the same prefix key on that fold only fits the suffix on
the cached matrices. Scoring uses the fitted suffix on the cached validation matrix, which is
what ``Pipeline.predict`` would compute, minus the repeated transform.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from .errors import InputError


def n_rows(X) -> int:
    """Row count of any container ``search`` accepts."""
    if hasattr(X, "shape") and X.shape is not None and len(X.shape) >= 1:
        return int(X.shape[0])
    if hasattr(X, "num_rows"):
        return int(X.num_rows)
    if isinstance(X, dict):
        return len(next(iter(X.values()))) if X else 0
    try:
        return len(X)
    except TypeError as exc:
        raise InputError(f"cannot count the rows of {type(X).__name__}") from exc


def take(X, idx: np.ndarray):
    """Rows ``idx`` of X, keeping the container type (pandas, polars, pyarrow, numpy, dict)."""
    if X is None:
        return None
    if hasattr(X, "iloc"):
        return X.iloc[idx]
    if hasattr(X, "num_rows") and hasattr(X, "take"):  # pyarrow Table / RecordBatch
        return X.take(idx)
    if isinstance(X, np.ndarray):
        return X[idx]
    if isinstance(X, dict):
        return {k: np.asarray(v)[idx] for k, v in X.items()}
    if type(X).__module__.startswith("polars"):
        return X[idx]
    return np.asarray(X)[idx]


def freeze(value):
    """A hashable stand-in for a parameter value, equal for equal values."""
    if isinstance(value, np.ndarray):
        return ("nd", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(freeze(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple(sorted((str(k), freeze(v)) for k, v in value.items())))
    try:
        hash(value)
    except TypeError:
        return ("id", id(value))
    if isinstance(value, float) and value != value:
        return ("nan",)
    return value


def nbytes(obj) -> int:
    if obj is None:
        return 0
    if hasattr(obj, "data") and hasattr(obj, "indices"):  # scipy sparse
        return int(obj.data.nbytes + obj.indices.nbytes + obj.indptr.nbytes)
    if hasattr(obj, "memory_usage"):
        return int(obj.memory_usage(index=False, deep=False).sum())
    return int(getattr(obj, "nbytes", 0))


@dataclass
class Split:
    """Pipeline cut: the prefix step names and the final step's name (prefix may be empty)."""
    prefix: list
    final: str | None

    @classmethod
    def of(cls, estimator) -> "Split":
        from sklearn.pipeline import Pipeline
        if isinstance(estimator, Pipeline) and len(estimator.steps) >= 2:
            names = [n for n, _ in estimator.steps]
            return cls(prefix=names[:-1], final=names[-1])
        return cls(prefix=[], final=None)

    def prefix_key(self, params: dict):
        """The candidate's prefix parameters, frozen; ``None`` when there is no prefix."""
        if not self.prefix:
            return None
        pre = set(self.prefix)
        items = []
        for k, v in params.items():
            head = k.split("__", 1)[0]
            # pipeline-level params (memory, steps, ...) can change anything: key on them too
            if head in pre or head not in (self.final,) and "__" not in k:
                items.append((k, freeze(v)))
        return tuple(sorted(items, key=lambda kv: kv[0]))


@dataclass
class FoldScore:
    score: float
    fit_time: float
    score_time: float
    hit: bool
    model_hit: bool = False


class PrefixCache:
    """Byte-bounded LRU of fitted prefixes and their transformed fold matrices.

    One lock per key makes concurrent requests for the same key wait for the first fit
    instead of fitting twice; hits and misses are counted.
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = int(max_bytes)
        self._d: OrderedDict = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._key_locks: dict = {}
        self.hits = 0
        self.misses = 0

    def get_or_fit(self, key, fit_fn):
        """``(value, hit, seconds)``: cached value, or ``fit_fn()`` stored under ``key``."""
        with self._lock:
            klock = self._key_locks.setdefault(key, threading.Lock())
        with klock:
            with self._lock:
                if key in self._d:
                    self._d.move_to_end(key)
                    self.hits += 1
                    return self._d[key][0], True, 0.0
            t0 = time.perf_counter()
            value = fit_fn()
            dt = time.perf_counter() - t0
            size = sum(nbytes(v) for v in value[1:])
            with self._lock:
                self.misses += 1
                if size <= self.max_bytes:
                    self._d[key] = (value, size)
                    self._bytes += size
                    while self._bytes > self.max_bytes and len(self._d) > 1:
                        _, (_, s) = self._d.popitem(last=False)
                        self._bytes -= s
            return value, False, dt

    def clear(self):
        with self._lock:
            self._d.clear()
            self._bytes = 0
            self._key_locks.clear()


@dataclass
class Task:
    """Everything one fold fit needs, picklable for the process backend."""
    estimator: object
    split: Split
    scorer: object
    reuse_bins: bool = True
    warm_path: str | None = None  # opt-in warm-start path parameter (full name)
    warm_descending: bool = False


def build(estimator, params: dict, seed_params: dict):
    """A fresh clone of ``estimator`` with the candidate's params (and seeds) set."""
    from sklearn.base import clone
    est = clone(estimator)
    if seed_params:
        est.set_params(**seed_params)
    if params:
        # cloned like GridSearchCV does: a transformer given as a value must not be shared
        # (and mutated by fit) across candidates, folds and threads
        est.set_params(**clone(params, safe=False))
    return est


def fit_prefix(est, split: Split, X_tr, y_tr, X_va, fit_params=None):
    from sklearn.pipeline import Pipeline
    prefix = Pipeline(est.steps[:-1])
    Xt_tr = prefix.fit_transform(X_tr, y_tr, **(fit_params or {}))
    Xt_va = prefix.transform(X_va)
    return prefix, Xt_tr, Xt_va


def final_params(split: Split, params: dict) -> dict:
    """The final step's own parameters (``model__C`` -> ``C``) out of pipeline params."""
    if not split.final:
        return dict(params)
    head = f"{split.final}__"
    return {k[len(head):]: v for k, v in params.items() if k.startswith(head)}


def fit_score_fold(task: Task, params: dict, seed_params: dict, X, y, train, valid,
                   fold: int, cache: PrefixCache | None, extra=None,
                   warm: list | None = None, lockstep=None) -> FoldScore:
    """Fit one candidate on one fold (reusing the cached prefix) and score it.

    ``extra`` holds fixed overrides of the final step (the halving budget). ``warm`` (the
    opt-in warm-start path) is a one-element list holding the previous fitted final model
    of this candidate's chain, or None: the fit then continues from that model's state
    (``warm_start=True``) instead of a fresh clone's, and the list receives this model.
    """
    est = build(task.estimator, params, seed_params)
    if extra:
        est.set_params(**extra)
    y_tr = None if y is None else y[train]
    y_va = None if y is None else y[valid]
    t0 = time.perf_counter()
    hit = False
    key = (fold, len(train), task.split.prefix_key({**seed_params, **params}))
    if task.split.prefix:
        def _fit():
            return fit_prefix(est, task.split, take(X, train), y_tr, take(X, valid))

        if cache is None:
            (_, Xt_tr, Xt_va), hit = _fit(), False
        else:
            (_, Xt_tr, Xt_va), hit, _ = cache.get_or_fit(key, _fit)
        model = est.steps[-1][1]
    else:
        Xt_tr, Xt_va = take(X, train), take(X, valid)
        model = est
    if warm is not None:
        if warm[0] is not None:
            # the chain differs only in the path parameter (and seeds): the previous model
            # gets this candidate's final-step values and keeps its fitted coefficients
            from sklearn.base import clone
            model = warm[0]
            model.set_params(**clone(final_params(task.split, {**seed_params, **params,
                                                               **(extra or {})}), safe=False))
        model.set_params(warm_start=True)
        warm[0] = model
    model_hit = _fit_model(model, Xt_tr, y_tr, cache if task.reuse_bins else None, key,
                           lockstep)
    t1 = time.perf_counter()
    score = float(task.scorer(model, Xt_va, y_va))
    t2 = time.perf_counter()
    return FoldScore(score=score, fit_time=t1 - t0, score_time=t2 - t1, hit=hit,
                     model_hit=model_hit)


def _fit_model(model, X_tr, y_tr, cache, key, lockstep=None) -> bool:
    """Fit the final model, reusing its cached binned training data where it has any, or
    as a member of its unit's lockstep group."""
    if lockstep is not None:
        with lockstep.fitting():
            model.fit(X_tr, y_tr)
        return False
    from ._tune_hist import histograms_for  # HGB: native, bit-identical histograms
    if cache is None:
        with histograms_for(model):
            model.fit(X_tr, y_tr)
        return False
    from ._tune_model import install_bin_cache, remove_bin_cache
    hit = install_bin_cache(model, X_tr, cache, key)
    try:
        with histograms_for(model):
            model.fit(X_tr, y_tr)
    finally:
        remove_bin_cache(model)
    return hit[0]
