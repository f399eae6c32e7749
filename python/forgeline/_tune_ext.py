"""Optional integrations of :mod:`forgeline.tune`: the Optuna loop and MLflow logging.

Both libraries are imported lazily, only when the feature is asked for.
"""

from __future__ import annotations

import math
import time

import numpy as np

from ._tune_cv import fit_score_fold
from ._tune_run import Progress, inner_limits
from .errors import InputError

_PRIMITIVE = (type(None), bool, int, float, str)


def _distributions(optuna, space: dict):
    """Optuna distributions for the space, plus decoders for non-primitive choices."""
    dists, decode = {}, {}
    for k, v in space.items():
        if isinstance(v, optuna.distributions.BaseDistribution):
            dists[k] = v
        elif isinstance(v, (list, tuple, np.ndarray)):
            choices = [c.item() if isinstance(c, np.generic) else c for c in v]
            if all(isinstance(c, _PRIMITIVE) for c in choices):
                dists[k] = optuna.distributions.CategoricalDistribution(choices)
            else:  # Optuna stores choices as plain data: sample the position instead
                dists[k] = optuna.distributions.CategoricalDistribution(
                    list(range(len(choices))))
                decode[k] = choices
        else:
            raise InputError(f"strategy='optuna' needs a list of values or an "
                             f"optuna.distributions object for {k!r}, got {type(v).__name__}")
    return dists, decode


def optuna_loop(task, space, X, y, folds, *, n_iter, random_state, cache, pruner, progress,
                seeds, inner_threads=1):
    """Ask/tell loop: TPE proposes, folds run in order, the running mean is reported after
    each fold so the pruner can stop a poor trial early."""
    try:
        import optuna
    except ImportError as exc:  # pragma: no cover - optuna is installed in CI
        raise InputError("strategy='optuna' needs optuna: pip install optuna") from exc
    dists, decode = _distributions(optuna, space)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=random_state),
        pruner=pruner if pruner is not None else optuna.pruners.MedianPruner())
    n_folds = len(folds)
    recs, interrupted = [], False
    prog = Progress(progress, n_iter, n_folds, "tune[optuna]")
    try:
        for i in range(n_iter):
            trial = study.ask(dists)
            params = {k: (decode[k][v] if k in decode else v) for k, v in trial.params.items()}
            sd = seeds(i)
            scores = np.full(n_folds, np.nan)
            fit_t = score_t = 0.0
            hits = mhits = 0
            state = "complete"
            try:
                for f, (train, valid) in enumerate(folds):
                    with inner_limits(inner_threads):
                        fs = fit_score_fold(task, params, sd, X, y, train, valid, f, cache)
                    scores[f] = fs.score
                    fit_t += fs.fit_time
                    score_t += fs.score_time
                    hits += int(fs.hit)
                    mhits += int(fs.model_hit)
                    prog.fold_done()
                    trial.report(float(np.nanmean(scores)), f)
                    if f < n_folds - 1 and trial.should_prune():
                        state = "pruned"
                        break
            except KeyboardInterrupt:
                interrupted = True
                state = "partial"
            done = ~np.isnan(scores)
            mean = float(np.mean(scores[done])) if done.any() else math.nan
            if state == "complete":
                study.tell(trial, mean)
            elif state == "pruned":
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            else:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            r = {"trial": i, "params": params}
            r.update({f"param_{k}": v for k, v in params.items()})
            r.update({f"split{f}_score": scores[f] for f in range(n_folds)})
            r.update(mean_score=mean, std_score=float(np.std(scores[done])) if done.any()
                     else math.nan, fit_time=fit_t, score_time=score_t, cache_hits=hits,
                     model_cache_hits=mhits,
                     n_folds_done=int(done.sum()), state=state)
            recs.append(r)
            if interrupted:
                break
    except KeyboardInterrupt:
        interrupted = True
    finally:
        prog.close()
        optuna.logging.set_verbosity(verbosity)
    return recs, interrupted, {"study": study}


def _param_str(v) -> str:
    s = repr(v) if not isinstance(v, str) else v
    return s if len(s) <= 500 else s[:497] + "..."


def log_mlflow(result, recs, experiment: str, tracking_uri: str | None):
    """One parent run (search summary) with one child run per trial, via MlflowClient so
    the caller's active run and global tracking URI are left alone."""
    try:
        from mlflow.entities import Metric, Param
        from mlflow.tracking import MlflowClient
    except ImportError as exc:  # pragma: no cover - mlflow is installed in CI
        raise InputError("mlflow_experiment needs mlflow: pip install mlflow") from exc
    client = MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    exp_id = exp.experiment_id if exp is not None else client.create_experiment(experiment)
    ts = int(time.time() * 1000)

    def metrics(d: dict):
        return [Metric(k, float(v), ts, 0) for k, v in d.items()
                if v is not None and not (isinstance(v, float) and math.isnan(v))]

    parent = client.create_run(exp_id, run_name=f"forgeline.tune[{result.strategy}]",
                               tags={"forgeline.tune": "search"})
    pid = parent.info.run_id
    summary = {"best_score": result.best_score_, "cache_hits": result.cache_hits_,
               "model_cache_hits": result.model_cache_hits_,
               "n_trials": len(recs), "interrupted": float(result.interrupted)}
    client.log_batch(pid, metrics=metrics(summary),
                     params=[Param("strategy", result.strategy),
                             Param("n_splits", str(result.n_splits_)),
                             Param("scoring", _param_str(result.scoring))]
                     + [Param(f"best.{k}", _param_str(v)) for k, v in result.best_params_.items()])
    for r in recs:
        child = client.create_run(exp_id, run_name=f"trial-{r['trial']}"
                                  + (f"-round-{r['round']}" if "round" in r else ""),
                                  tags={"mlflow.parentRunId": pid, "forgeline.tune": "trial",
                                        "state": r["state"]})
        m = {k: r[k] for k in ("mean_score", "std_score", "fit_time", "score_time",
                               "cache_hits", "model_cache_hits", "n_folds_done")}
        m.update({k: v for k, v in r.items() if k.startswith("split")})
        if "n_resources" in r:
            m["n_resources"] = r["n_resources"]
        client.log_batch(child.info.run_id, metrics=metrics(m),
                         params=[Param(k, _param_str(v)) for k, v in r["params"].items()])
        client.set_terminated(child.info.run_id,
                              "FINISHED" if r["state"] == "complete" else "KILLED")
    client.set_terminated(pid, "KILLED" if result.interrupted else "FINISHED")
    result.extra["mlflow_run_id"] = pid
