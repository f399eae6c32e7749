"""Cross-validated hyper-parameter search that reuses fitted transforms.

:func:`search` tunes any scikit-learn compatible estimator or ``Pipeline`` whose final
model is a scikit-learn, LightGBM or XGBoost (sklearn-wrapper) estimator. The speed-up over
``GridSearchCV``: for a ``Pipeline``, every step but the last (the *prefix*) is fitted once
per ``(fold, prefix parameters)`` and its transformed train/validation matrices are cached;
every candidate that shares those prefix parameters only fits the final estimator. Cache
hits are counted per trial (``trials_["cache_hits"]``) and in total (``cache_hits_``). A
``HistGradientBoosting*`` final model also bins each fold's training matrix only once per
prefix (``model_cache_hits_``) and grows its trees on histograms from a native kernel that
reproduces sklearn's ``HistogramBuilder`` byte for byte (``forgeline/_tune_hist.py``), with
bit-identical models. A ``LogisticRegression`` final
model on a sparse (CSR) fold matrix fits its candidates in *lockstep*: the fits of one
``(fold, prefix)`` run side by side and every lbfgs evaluation of all of them shares one
native pass over the matrix (instead of two scipy mat-vecs per fit), with coefficients,
scores and the best candidate bit-identical to ``GridSearchCV``'s (see
``forgeline/_tune_logistic.py``). Fold fits pin BLAS / OpenMP to one
thread and run in parallel across candidates, so scores do not depend on ``n_jobs``.

Strategies: ``"grid"`` (every combination), ``"random"`` (``n_iter`` draws, lists or scipy
distributions), ``"halving"`` (successive halving, see :func:`search`) and ``"optuna"``
(Optuna's TPE sampler and median pruner through its ask/tell interface).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from ._tune_cv import PrefixCache, Split, Task, n_rows, take
from ._tune_run import Progress, fold_table, run_candidates
from .errors import InputError, ParameterError

__all__ = ["search", "TuneResult"]

_STRATEGIES = ("grid", "random", "halving", "optuna")
_BOOSTING_ROUNDS = {  # final-model class name prefix -> its boosting-rounds parameter
    "LGBM": "n_estimators", "XGB": "n_estimators", "GradientBoosting": "n_estimators",
    "HistGradientBoosting": "max_iter",
}


@dataclass
class TuneResult:
    """Outcome of :func:`search`.

    Attributes
    ----------
    best_params_ : dict
        Parameters of the best candidate.
    best_score_ : float
        Its mean cross-validated score (greater is better, sklearn's scorer convention).
    best_estimator_ : estimator or None
        A clone with ``best_params_`` refitted on all of X, y (``None`` when ``refit=False``
        or when the search was interrupted).
    trials_ : pandas.DataFrame or pyarrow.Table
        One row per trial (per candidate and round for halving): ``trial``, ``params``,
        ``param_<name>`` columns, ``split<k>_score``, ``mean_score``, ``std_score``,
        ``fit_time``, ``score_time``, ``cache_hits``, ``model_cache_hits``, ``state`` and
        ``rank``. A pandas frame
        when pandas is importable, else a pyarrow Table.
    cache_hits_ : int
        Fold fits that reused a cached, already fitted prefix.
    model_cache_hits_ : int
        Fold fits of a HistGradientBoosting model that reused the fold's binned matrix.
    interrupted : bool
        True when Ctrl-C stopped the loop; the trials done so far are kept.
    """

    best_params_: dict
    best_score_: float
    best_estimator_: object
    trials_: object
    cache_hits_: int
    interrupted: bool = False
    strategy: str = "grid"
    n_splits_: int = 0
    scoring: object = None
    extra: dict = field(default_factory=dict)
    model_cache_hits_: int = 0

    def compile(self, sample=None, **options):
        """``forgeline.compile(best_estimator_, sample)``: the tuned pipeline as a Scorer."""
        if self.best_estimator_ is None:
            raise InputError("no refitted best estimator to compile (refit=False or the "
                             "search was interrupted); refit best_params_ yourself")
        from .compile import compile as _compile
        return _compile(self.best_estimator_, sample, **options)


# ---------------------------------------------------------------- validation
def _check_inputs(estimator, X, y, groups):
    if not hasattr(estimator, "fit") or not hasattr(estimator, "get_params"):
        raise InputError(f"estimator must be a scikit-learn compatible estimator, got "
                         f"{type(estimator).__name__}")
    n = n_rows(X)
    if n == 0:
        raise InputError("X has no rows")
    if y is not None:
        y = np.asarray(y)
        if len(y) != n:
            raise InputError(f"X and y have different lengths: X has {n} rows, y has {len(y)}")
    if groups is not None:
        groups = np.asarray(groups)
        if len(groups) != n:
            raise InputError(f"X and groups have different lengths: {n} vs {len(groups)}")
    return n, y, groups


def _space_names(space) -> list:
    if isinstance(space, dict):
        return list(space)
    return [k for d in space for k in d]


def _check_space(estimator, space, strategy):
    if space is None or (isinstance(space, dict) and not space) or (
            isinstance(space, (list, tuple)) and (not space or not all(space))):
        raise InputError("the search space is empty: give at least one parameter with at "
                         "least one value, e.g. {'model__C': [0.1, 1.0]}")
    dicts = [space] if isinstance(space, dict) else list(space)
    if strategy == "optuna" and len(dicts) != 1:
        raise InputError("strategy='optuna' takes a single dict space")
    for d in dicts:
        if not isinstance(d, dict):
            raise InputError(f"the space must be a dict (or a list of dicts), got "
                             f"{type(d).__name__}")
        for k, v in d.items():
            if isinstance(v, (list, tuple, np.ndarray)) and len(v) == 0:
                raise InputError(f"the search space is empty: parameter {k!r} has no values")
            if strategy == "grid" and not isinstance(v, (list, tuple, np.ndarray)):
                raise InputError(f"strategy='grid' needs a list of values for {k!r}, got "
                                 f"{type(v).__name__} (use strategy='random' for "
                                 f"distributions)")
    valid = sorted(estimator.get_params(deep=True))
    unknown = [k for k in dict.fromkeys(_space_names(space)) if k not in valid]
    if unknown:
        raise ParameterError(f"unknown parameter name(s) {unknown} for "
                             f"{type(estimator).__name__}; valid names are: "
                             f"{', '.join(valid)}", unknown=unknown, valid=valid)
    return dicts


def _make_cv(cv, estimator, y):
    from sklearn.base import is_classifier
    from sklearn.model_selection import check_cv
    if isinstance(cv, int) and cv < 2:
        raise InputError(f"cv must be >= 2 folds, got {cv}")
    try:
        return check_cv(cv, y, classifier=is_classifier(estimator))
    except (ValueError, TypeError) as exc:
        raise InputError(f"cannot use cv={cv!r}: {exc}") from exc


def _check_warm_path(estimator, split: Split, space_dicts, strategy, path):
    """``(parameter name, descending)`` of the opt-in warm-start path, or ``(None, False)``."""
    if path is None:
        return None, False
    if not isinstance(path, str) or not path.lstrip("-"):
        raise InputError(f"warm_start_path must be a parameter name such as 'model__C', "
                         f"got {path!r}")
    if strategy == "optuna":
        raise InputError("warm_start_path works with strategy='grid', 'random' or "
                         "'halving', not 'optuna' (its trials run one at a time)")
    desc = path.startswith("-")
    name = path[1:] if desc else path
    names = _space_names(space_dicts)
    if name not in names:
        raise InputError(f"warm_start_path {name!r} is not a parameter of the search space "
                         f"({', '.join(dict.fromkeys(names))})")
    if split.final and not name.startswith(f"{split.final}__") or (
            not split.final and "__" in name):
        raise InputError(f"warm_start_path {name!r} must be a parameter of the final model "
                         f"({split.final or type(estimator).__name__}), not of the prefix")
    final = _final(estimator, split)
    if "warm_start" not in final.get_params(deep=False):
        raise InputError(f"warm_start_path needs a final model with a warm_start parameter; "
                         f"{type(final).__name__} has none")
    for d in space_dicts:
        values = d.get(name)
        if isinstance(values, (list, tuple, np.ndarray)) and not all(
                isinstance(v, (int, float, np.integer, np.floating))
                and not isinstance(v, bool) for v in values):
            raise InputError(f"warm_start_path {name!r} needs numeric values to order, got "
                             f"{list(values)!r}")
    return name, desc


def _final(estimator, split: Split):
    return estimator.steps[-1][1] if split.final else estimator


def _seeds(estimator, split: Split, random_state, index: int) -> dict:
    """Per-candidate seeds for estimators left at ``random_state=None`` (none otherwise)."""
    if random_state is None:
        return {}
    out = {}
    params = estimator.get_params(deep=True)
    name = f"{split.final}__random_state" if split.final else "random_state"
    if name in params and params[name] is None:
        out[name] = int(np.random.SeedSequence([int(random_state), index]).generate_state(1)[0]
                        >> 1)
    for step in split.prefix:  # prefix seeds are shared so the prefix stays cacheable
        pname = f"{step}__random_state"
        if pname in params and params[pname] is None:
            out[pname] = int(random_state)
    return out


# ---------------------------------------------------------------- candidates
def _candidates(space_dicts, strategy, n_iter, random_state):
    from sklearn.model_selection import ParameterGrid, ParameterSampler
    all_lists = all(isinstance(v, (list, tuple, np.ndarray)) for d in space_dicts
                    for v in d.values())
    if strategy == "grid" or (strategy == "halving" and all_lists):
        return list(ParameterGrid(space_dicts))
    return list(ParameterSampler(space_dicts if len(space_dicts) > 1 else space_dicts[0],
                                 n_iter=n_iter, random_state=random_state))


def _groups(cands, split: Split):
    """Candidate positions grouped by prefix key, groups in order of first appearance."""
    order: dict = {}
    for pos, (_, params, seeds) in enumerate(cands):
        order.setdefault(split.prefix_key({**seeds, **params}), []).append(pos)
    return list(order.values())


# ---------------------------------------------------------------- result frame
def _frame(records: list[dict]):
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is installed wherever tests run
        import pyarrow as pa
        cols = {k: [r.get(k) for r in records] for r in records[:1] for k in r}
        cols["params"] = [repr(p) for p in cols.get("params", [])]
        return pa.table(cols)
    return pd.DataFrame.from_records(records)


def _records(cands, scores, fit_t, score_t, hits, states, extra_cols=None):
    recs = []
    n_folds = scores.shape[1]
    for row, (ci, params, _) in enumerate(cands):
        done = ~np.isnan(scores[row])
        r = {"trial": ci, "params": dict(params)}
        for k, v in params.items():
            r[f"param_{k}"] = v
        for f in range(n_folds):
            r[f"split{f}_score"] = scores[row, f]
        r["mean_score"] = float(np.mean(scores[row, done])) if done.any() else np.nan
        r["std_score"] = float(np.std(scores[row, done])) if done.any() else np.nan
        r["fit_time"] = fit_t[row]
        r["score_time"] = score_t[row]
        r["cache_hits"] = int(hits[row, 0])
        r["model_cache_hits"] = int(hits[row, 1])
        r["n_folds_done"] = int(done.sum())
        r["state"] = states[row] if states is not None else (
            "complete" if done.all() else "partial")
        if extra_cols:
            r.update(extra_cols[row])
        recs.append(r)
    return recs


def _rank(recs):
    """Add ``rank`` (1 = best, among complete trials first) and return the best record."""
    def key(r):
        ok = r["state"] == "complete"
        m = r["mean_score"]
        return (not ok, -r.get("round", 0), -(m if m == m else -np.inf), r["trial"])
    ordered = sorted(range(len(recs)), key=lambda i: key(recs[i]))
    for rank, i in enumerate(ordered, 1):
        recs[i]["rank"] = rank
    best = recs[ordered[0]] if recs else None
    if best is not None and best["n_folds_done"] == 0:
        best = None
    return best


# ---------------------------------------------------------------- halving
def _halving_resource(estimator, split, space_names, resource):
    """``(param name or None, max rounds)``: rounds for boosting models, else rows."""
    if resource == "n_samples":
        return None, None
    final = _final(estimator, split)
    prefix = f"{split.final}__" if split.final else ""
    if resource not in (None, "auto"):
        name = resource if resource.startswith(prefix) else prefix + resource
        return name, int(estimator.get_params()[name])
    cls = type(final).__name__
    for stem, pname in _BOOSTING_ROUNDS.items():
        full = prefix + pname
        if cls.startswith(stem) and full not in space_names:
            value = estimator.get_params().get(full)
            if isinstance(value, (int, np.integer)) and value >= 2:
                return full, int(value)
    return None, None


def _halving(ctx, cands, factor, min_resources, resource):
    """Successive halving; returns per-round ``(cands, results, extra_cols)`` and flag."""
    space_names = {k for _, p, _ in cands for k in p}
    rparam, max_r = _halving_resource(ctx["estimator"], ctx["split"], space_names, resource)
    n = ctx["n"]
    if rparam is None:
        max_r = n
        min_r = min_resources or max(20, 2 * ctx["cv"].get_n_splits() * ctx["n_classes"])
    else:
        min_r = min_resources or 1
    n_rounds = 1 + int(math.floor(math.log(max(len(cands), 1), factor)))
    while n_rounds > 1 and max_r // factor ** (n_rounds - 1) < min_r:
        n_rounds -= 1
    perm = np.random.default_rng(ctx["random_state"]).permutation(n)
    alive = list(range(len(cands)))
    recs, interrupted = [], False
    for rnd in range(n_rounds):
        r = max_r if rnd == n_rounds - 1 else max(min_r, max_r // factor ** (n_rounds - 1 - rnd))
        sub = [cands[i] for i in alive]
        if rparam is None:
            ctx["cache"].clear()  # rows change every round: nothing to reuse
            rows = np.sort(perm[:r])
            X, y = take(ctx["X"], rows), None if ctx["y"] is None else ctx["y"][rows]
            g = None if ctx["groups"] is None else ctx["groups"][rows]
            folds = list(ctx["cv"].split(X, y, g))
            extra = None
        else:
            X, y, folds, extra = ctx["X"], ctx["y"], ctx["folds"], {rparam: r}
        res, interrupted = ctx["run"](sub, X, y, folds, extra)
        scores, fit_t, score_t, hits = fold_table(sub, res, len(folds))
        cols = [{"round": rnd, "n_resources": r, "resource": rparam or "n_samples"}
                for _ in sub]
        rr = _records(sub, scores, fit_t, score_t, hits, None, cols)
        recs += rr
        if interrupted:
            break
        means = np.array([x["mean_score"] for x in rr])
        keep = max(1, int(math.ceil(len(alive) / factor)))
        order = sorted(range(len(alive)), key=lambda i: (-means[i], alive[i]))
        alive = sorted(alive[i] for i in order[:keep])
    return recs, interrupted, {"halving_resource": rparam or "n_samples",
                               "halving_rounds": n_rounds}


# ---------------------------------------------------------------- search
def _default_cache_bytes() -> int:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 // 4
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        pass
    return 1 << 30  # pragma: no cover


def search(estimator, space, X, y=None, *, cv=5, strategy: str = "grid", scoring=None,
           n_iter: int = 10, n_jobs: int | None = None, backend: str = "threads",
           random_state: int | None = None, groups=None, refit: bool = True,
           factor: int = 3, min_resources: int | None = None, resource: str = "auto",
           cache_bytes: int | None = None, mlflow_experiment: str | None = None,
           mlflow_tracking_uri: str | None = None, progress: bool | None = None,
           optuna_pruner=None, inner_threads: int | None = 1,
           reuse_model_bins: bool = True,
           warm_start_path: str | None = None) -> TuneResult:
    """Cross-validated search over ``space``, reusing fitted transforms across candidates.

    Parameters
    ----------
    estimator : sklearn-compatible estimator or Pipeline
        Final model from scikit-learn, LightGBM or XGBoost (sklearn wrappers). For a
        ``Pipeline``, every step but the last is the cached prefix.
    space : dict or list of dicts
        Parameter names as in ``estimator.get_params()`` (``step__param``). ``"grid"`` and
        ``"halving"`` take lists of values; ``"random"`` lists or scipy distributions;
        ``"optuna"`` lists (categorical) or ``optuna.distributions`` objects.
    X, y : array-like
        Any container the estimator accepts (pandas, numpy, ...), and the target.
    cv : int or sklearn splitter
        Folds (stratified for classifiers, as in sklearn) or a splitter such as ``KFold``,
        ``StratifiedKFold``, ``GroupKFold`` (pass ``groups``) or ``TimeSeriesSplit``.
    strategy : {"grid", "random", "halving", "optuna"}
    scoring : str, callable or None
        A sklearn scorer name or a callable ``scorer(model, X, y)``; ``None`` uses the
        estimator's ``score``. For a Pipeline the callable receives the fitted *final step*
        and the transformed validation data (what the pipeline would compute).
    n_iter : int
        Candidates for ``"random"`` and ``"optuna"`` (and ``"halving"`` on distributions).
    n_jobs : int or None
        Parallel workers (threads: over ``(candidate, fold)`` fits, or over whole
        ``(prefix group, fold)`` units when their LogisticRegression fits run in lockstep;
        processes: over units). ``None`` (default) uses
        every core, unlike sklearn's ``n_jobs=None``; negative counts back from the core
        count as in sklearn. Results do not depend on it (see ``inner_threads``).
    backend : {"threads", "processes"}
        Threads (forgeline's native transforms release the GIL, and so do numpy, BLAS and
        sklearn's Cython fits) or joblib processes.
    random_state : int or None
        Seeds the sampler, the halving row subsample and Optuna. Estimators left at
        ``random_state=None`` get a seed derived from ``(random_state, candidate index)``
        (prefix steps: ``random_state`` itself, so the prefix stays cacheable).
    groups : array-like or None
        Group labels for group-aware splitters.
    refit : bool
        Refit the best candidate on all data into ``best_estimator_``.
    factor, min_resources, resource
        Successive halving. Each round keeps the best ``ceil(n / factor)`` candidates and
        multiplies the budget by ``factor``. The budget is boosting rounds when the final
        model is a boosting model (LightGBM/XGBoost/GradientBoosting ``n_estimators``,
        HistGradientBoosting ``max_iter``) whose rounds parameter is not in the space;
        then the prefix cache is reused across rounds too. Otherwise it is rows: a seeded
        random subset (kept in original order, for ``TimeSeriesSplit``) re-split with
        ``cv``. ``resource`` forces ``"n_samples"`` or a parameter name. The last round
        uses the full budget; the best trial is the best of that round.
    cache_bytes : int or None
        Budget of the transform cache (transformed fold matrices, HGB binned matrices).
        ``None``: a quarter of the memory available when the search starts (1 GiB where
        that cannot be read), enough for halving on boosting rounds to keep every fold's
        matrices across rounds instead of refitting them. With threads, the candidates of
        one prefix group run round-robin over the folds, so the budget should hold that
        group's matrices for every fold (else prefixes are refitted: slower, same results).
    mlflow_experiment, mlflow_tracking_uri : str or None
        Log every trial (params, fold scores, mean/std, fit time, cache hits) as a child
        run of one parent run into this MLflow experiment.
    progress : bool or None
        tqdm bar over trials; ``None`` shows it only when stderr is a terminal.
    optuna_pruner : optuna pruner or None
        Defaults to ``optuna.pruners.MedianPruner()``; intermediate values are the running
        mean score after each fold.
    inner_threads : int or None
        BLAS / OpenMP threads inside each fold fit (via threadpoolctl), 1 by default: the
        parallelism comes from ``n_jobs`` across candidates, and models whose result
        depends on their own thread count (HistGradientBoosting's parallel gradient sums,
        BLAS reductions) score the same whatever ``n_jobs`` is. ``None`` leaves the
        libraries' own defaults (then only ``n_jobs=1`` runs are reproducible bit for
        bit). The BLAS limit is process-wide while the search runs. The final refit runs
        with the libraries' defaults, as in ``GridSearchCV``.
    reuse_model_bins : bool
        For a ``HistGradientBoosting*`` final model, bin each fold's training matrix once
        and share the fitted bin mapper and binned matrix with every candidate on that
        fold and prefix (the binning depends only on the rows and ``max_bins``/categorical
        settings). The fitted models are identical to plain fits; ``False`` turns it off.
        Hits are counted in ``trials_["model_cache_hits"]`` and ``model_cache_hits_``.
    warm_start_path : str or None
        **Opt-in, inexact.** The name of a numeric final-model parameter of the space, e.g.
        ``"model__C"`` (ascending) or ``"-model__alpha"`` (a leading ``-``: descending),
        for a final model with a ``warm_start`` parameter (LogisticRegression, ElasticNet,
        SGD*, MLP*). On each fold and prefix, the candidates that differ only in that
        parameter are fitted in its order, each starting from the previous one's fitted
        coefficients (``warm_start=True``), the way a regularisation path is computed.
        A solver that stops at ``max_iter`` or at its tolerance then stops at a different
        point than from a cold start, so scores (and possibly the best candidate) differ
        slightly from ``GridSearchCV``'s; the first candidate of each chain is a cold fit
        and equals it. Results stay independent of ``n_jobs`` and the backend (a chain
        never leaves its unit of work). ``None`` (default): every fit starts cold, exactly
        as ``GridSearchCV``. Not for ``strategy="optuna"``.

    Returns
    -------
    TuneResult
        On Ctrl-C (KeyboardInterrupt) during the loop, the trials done so far with
        ``interrupted=True`` and no refit.

    Raises
    ------
    forgeline.ParameterError
        A parameter name the estimator does not have (the message lists the valid ones).
    forgeline.InputError
        Empty space, X/y length mismatch, unknown strategy, bad ``cv``.
    """
    if strategy not in _STRATEGIES:
        raise InputError(f"unknown strategy {strategy!r}; choose one of {list(_STRATEGIES)}")
    if backend not in ("threads", "processes"):
        raise InputError(f"backend must be 'threads' or 'processes', got {backend!r}")
    if n_iter < 1:
        raise InputError(f"n_iter must be >= 1, got {n_iter}")
    if inner_threads is not None and (not isinstance(inner_threads, (int, np.integer))
                                      or inner_threads < 1):
        raise InputError(f"inner_threads must be an int >= 1 or None, got {inner_threads!r}")
    n, y, groups = _check_inputs(estimator, X, y, groups)
    space_dicts = _check_space(estimator, space, strategy)
    from sklearn.metrics import check_scoring

    split = Split.of(estimator)
    cv_obj = _make_cv(cv, estimator, y)
    folds = list(cv_obj.split(X, y, groups))
    scorer = check_scoring(_final(estimator, split), scoring=scoring)
    warm_path, warm_desc = _check_warm_path(estimator, split, space_dicts, strategy,
                                            warm_start_path)
    task = Task(estimator=estimator, split=split, scorer=scorer,
                reuse_bins=bool(reuse_model_bins), warm_path=warm_path,
                warm_descending=warm_desc)
    if cache_bytes is not None and (not isinstance(cache_bytes, (int, np.integer))
                                    or cache_bytes < 0):
        raise InputError(f"cache_bytes must be an int >= 0 or None, got {cache_bytes!r}")
    cache = PrefixCache(_default_cache_bytes() if cache_bytes is None else cache_bytes)
    t_start = time.perf_counter()

    def run(sub, X_, y_, folds_, extra):
        prog = Progress(progress, len(sub), len(folds_), f"tune[{strategy}]")
        try:
            return run_candidates(task, sub, _groups(sub, split), X_, y_, folds_,
                                  n_jobs=n_jobs, backend=backend, cache=cache, extra=extra,
                                  progress=prog, inner_threads=inner_threads)
        finally:
            prog.close()

    info: dict = {}
    if strategy == "optuna":
        from ._tune_ext import optuna_loop
        recs, interrupted, info = optuna_loop(
            task, space_dicts[0], X, y, folds, n_iter=n_iter, random_state=random_state,
            cache=cache, pruner=optuna_pruner, progress=progress,
            inner_threads=inner_threads,
            seeds=lambda i: _seeds(estimator, split, random_state, i))
    else:
        raw = _candidates(space_dicts, strategy, n_iter, random_state)
        cands = [(i, p, _seeds(estimator, split, random_state, i)) for i, p in enumerate(raw)]
        if strategy == "halving":
            n_classes = len(np.unique(y)) if y is not None and (
                y.dtype.kind in "biuUSO") else 1
            ctx = {"estimator": estimator, "split": split, "n": n, "cv": cv_obj, "X": X,
                   "y": y, "groups": groups, "folds": folds, "random_state": random_state,
                   "n_classes": n_classes, "run": run, "cache": cache}
            recs, interrupted, info = _halving(ctx, cands, factor, min_resources, resource)
        else:
            res, interrupted = run(cands, X, y, folds, None)
            scores, fit_t, score_t, hits = fold_table(cands, res, len(folds))
            recs = _records(cands, scores, fit_t, score_t, hits, None)
    best = _rank(recs)
    best_params = dict(best["params"]) if best else {}
    best_score = float(best["mean_score"]) if best else float("nan")
    best_est = None
    if refit and best is not None and not interrupted:
        from ._tune_cv import build
        best_est = build(estimator, best_params,
                         _seeds(estimator, split, random_state, best["trial"]))
        from ._tune_hist import histograms_for  # HGB: native, bit-identical histograms
        with histograms_for(_final(best_est, split)):
            best_est.fit(X, y)
    info["search_time"] = time.perf_counter() - t_start
    if warm_path is not None:
        info["warm_start_path"] = ("-" if warm_desc else "") + warm_path
    result = TuneResult(best_params_=best_params, best_score_=best_score,
                        best_estimator_=best_est, trials_=_frame(recs),
                        cache_hits_=int(sum(r["cache_hits"] for r in recs)),
                        model_cache_hits_=int(sum(r.get("model_cache_hits", 0) for r in recs)),
                        interrupted=interrupted, strategy=strategy, n_splits_=len(folds),
                        scoring=scoring, extra=info)
    if mlflow_experiment is not None:
        from ._tune_ext import log_mlflow
        log_mlflow(result, recs, mlflow_experiment, mlflow_tracking_uri)
    return result
