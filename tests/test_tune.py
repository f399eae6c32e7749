"""forgeline.tune.search: oracle against GridSearchCV, cache, strategies, errors, tracking."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import (GridSearchCV, GroupKFold, KFold, StratifiedKFold,
                                     TimeSeriesSplit)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import KBinsDiscretizer, OneHotEncoder, StandardScaler

import forgeline
from _tune_data import tune_frame
from forgeline import tune
from forgeline.errors import InputError, ParameterError


@pytest.fixture(scope="module")
def data():
    return tune_frame(400, 0, "xyz")


def _pipe(model=None):
    ct = ColumnTransformer([
        ("num", Pipeline([("imp", SimpleImputer(strategy="median")),
                          ("sc", StandardScaler())]), ["a", "b", "c"]),
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["k"]),
    ])
    return Pipeline([("ct", ct), ("model", model or LogisticRegression(max_iter=500))])


SPACE = {"ct__num__imp__strategy": ["median", "mean"], "model__C": [0.01, 0.1, 1.0]}


def _scores(res):
    return res.trials_.sort_values("trial")["mean_score"].to_numpy()


def test_grid_matches_gridsearchcv_and_counts_cache_hits(data):
    X, y = data
    res = tune.search(_pipe(), SPACE, X, y, cv=4)
    ref = GridSearchCV(_pipe(), SPACE, cv=4).fit(X, y)
    order = [ref.cv_results_["params"].index(p) for p in res.trials_.sort_values("trial")["params"]]
    np.testing.assert_allclose(_scores(res), ref.cv_results_["mean_test_score"][order],
                               rtol=1e-12)
    assert res.best_params_ == ref.best_params_
    assert res.best_score_ == pytest.approx(ref.best_score_, rel=1e-12)
    # 2 prefix settings x 4 folds fitted; the other 4 candidates x 4 folds are hits
    assert res.cache_hits_ == 4 * 4
    assert sorted(res.trials_["cache_hits"]) == [0, 0, 4, 4, 4, 4]
    assert res.trials_["state"].eq("complete").all()
    assert {"split0_score", "split3_score", "std_score", "fit_time", "rank",
            "param_model__C"} <= set(res.trials_.columns)
    np.testing.assert_allclose(res.best_estimator_.predict_proba(X),
                               ref.best_estimator_.predict_proba(X), rtol=1e-12)


def test_results_do_not_depend_on_n_jobs(data):
    X, y = data
    from scipy.stats import loguniform
    space = {"ct__num__imp__strategy": ["median", "mean"], "model__C": loguniform(1e-3, 10)}
    one = tune.search(_pipe(), space, X, y, cv=3, strategy="random", n_iter=6,
                      random_state=7, n_jobs=1)
    two = tune.search(_pipe(), space, X, y, cv=3, strategy="random", n_iter=6,
                      random_state=7, n_jobs=2)
    np.testing.assert_array_equal(_scores(one), _scores(two))
    assert one.best_params_ == two.best_params_
    assert one.cache_hits_ == two.cache_hits_


def test_process_backend(data):
    X, y = data
    res = tune.search(_pipe(), SPACE, X, y, cv=3, n_jobs=2, backend="processes")
    ref = tune.search(_pipe(), SPACE, X, y, cv=3)
    np.testing.assert_allclose(_scores(res), _scores(ref), rtol=1e-12)
    assert res.cache_hits_ == ref.cache_hits_ == 4 * 3


@pytest.mark.parametrize("splitter", ["kfold", "stratified", "group", "timeseries"])
def test_sklearn_splitters_match_gridsearchcv(data, splitter):
    X, y = data
    groups = np.arange(len(y)) % 7 if splitter == "group" else None
    cv = {"kfold": KFold(3, shuffle=True, random_state=0), "stratified": StratifiedKFold(3),
          "group": GroupKFold(3), "timeseries": TimeSeriesSplit(3)}[splitter]
    res = tune.search(_pipe(), SPACE, X, y, cv=cv, groups=groups, scoring="roc_auc")
    ref = GridSearchCV(_pipe(), SPACE, cv=cv, scoring="roc_auc").fit(X, y, groups=groups)
    assert res.best_score_ == pytest.approx(ref.best_score_, rel=1e-12)
    assert res.best_params_ == ref.best_params_


def test_regressor_default_score_and_plain_estimator(data):
    X, _ = data
    Xn = X[["a", "b", "c"]].fillna(0.0).to_numpy()
    yr = Xn @ np.array([1.0, -0.5, 0.2]) + 0.1
    res = tune.search(Ridge(), {"alpha": [0.1, 1.0, 10.0]}, Xn, yr, cv=3)
    ref = GridSearchCV(Ridge(), {"alpha": [0.1, 1.0, 10.0]}, cv=3).fit(Xn, yr)
    assert res.best_score_ == pytest.approx(ref.best_score_, rel=1e-12)
    assert res.cache_hits_ == 0


def test_forgeline_native_transformers_in_the_prefix(data):
    X, y = data
    from forgeline import transforms as ft
    pipe = Pipeline([("imp", ft.SimpleImputer(strategy="median")),
                     ("sc", ft.StandardScaler()), ("model", LogisticRegression())])
    Xn = X[["a", "b", "c"]]
    space = {"sc__with_mean": [True, False], "model__C": [0.1, 1.0]}
    res = tune.search(pipe, space, Xn, y, cv=3, n_jobs=2)
    ref = GridSearchCV(pipe, space, cv=3).fit(Xn, y)
    assert res.best_score_ == pytest.approx(ref.best_score_, rel=1e-12)
    assert res.cache_hits_ == 2 * 3


def test_compile_the_best_estimator(data):
    X, y = data
    res = tune.search(_pipe(), SPACE, X, y, cv=3)
    scorer = res.compile(X.iloc[:100])
    assert isinstance(scorer, forgeline.Scorer)
    np.testing.assert_allclose(scorer.predict_proba(X), res.best_estimator_.predict_proba(X),
                               rtol=1e-9, atol=1e-12)


def test_lightgbm_and_xgboost_final_models(data):
    X, y = data
    import lightgbm as lgb
    import xgboost as xgb
    for model, space in [
        (lgb.LGBMClassifier(n_estimators=20, num_leaves=7, verbose=-1, n_jobs=1),
         {"ct__num__imp__strategy": ["median", "mean"], "model__learning_rate": [0.05, 0.2]}),
        (xgb.XGBClassifier(n_estimators=20, max_depth=3, n_jobs=1),
         {"ct__num__imp__strategy": ["median", "mean"], "model__max_depth": [2, 3]}),
    ]:
        res = tune.search(_pipe(model), space, X, y, cv=3, scoring="neg_log_loss")
        ref = GridSearchCV(_pipe(model), space, cv=3, scoring="neg_log_loss").fit(X, y)
        assert res.best_score_ == pytest.approx(ref.best_score_, rel=1e-9)
        assert res.cache_hits_ == 2 * 3


def test_halving_on_rows(data):
    X, y = data
    space = {"ct__num__imp__strategy": ["median", "mean"],
             "model__C": [0.001, 0.01, 0.1, 1.0, 10.0]}
    res = tune.search(_pipe(), space, X, y, cv=3, strategy="halving", random_state=0)
    t = res.trials_
    assert res.extra["halving_resource"] == "n_samples"
    assert t["round"].nunique() == res.extra["halving_rounds"] >= 2
    sizes = t.groupby("round")["n_resources"].first().to_numpy()
    assert np.all(np.diff(sizes) > 0) and sizes[-1] == len(y)
    counts = t.groupby("round").size().to_numpy()
    assert np.all(np.diff(counts) < 0)
    last = t[t["round"] == t["round"].max()]
    assert res.best_score_ == last["mean_score"].max()


def test_halving_on_boosting_rounds_reuses_the_cache(data):
    X, y = data
    import lightgbm as lgb
    model = lgb.LGBMClassifier(n_estimators=9, num_leaves=7, verbose=-1, n_jobs=1)
    space = {"ct__num__imp__strategy": ["median", "mean"],
             "model__learning_rate": [0.02, 0.1, 0.3, 0.5], "model__max_depth": [2, 3]}
    res = tune.search(_pipe(model), space, X, y, cv=3, strategy="halving", factor=3)
    t = res.trials_
    assert res.extra["halving_resource"] == "model__n_estimators"
    assert list(t.groupby("round")["n_resources"].first()) == [1, 3, 9]
    assert list(t.groupby("round").size()) == [16, 6, 2]
    # later rounds fit no prefix: every fold is a cache hit
    assert (t.loc[t["round"] > 0, "cache_hits"] == 3).all()
    assert res.best_estimator_.get_params()["model__n_estimators"] == 9
    last = t[t["round"] == 2]
    assert res.best_score_ == last["mean_score"].max()


def _hgb(**kw):
    from sklearn.ensemble import HistGradientBoostingClassifier
    return HistGradientBoostingClassifier(**{"max_iter": 8, "early_stopping": False,
                                             "random_state": 0, **kw})


HGB_SPACE = {"ct__num__imp__strategy": ["median", "mean"],
             "model__learning_rate": [0.1, 0.3], "model__max_leaf_nodes": [4, 8]}


def test_hist_gradient_boosting_reuses_binned_folds_exactly(data):
    X, y = data
    res = tune.search(_pipe(_hgb()), HGB_SPACE, X, y, cv=3, scoring="roc_auc", n_jobs=2)
    ref = GridSearchCV(_pipe(_hgb()), HGB_SPACE, cv=3, scoring="roc_auc").fit(X, y)
    order = [ref.cv_results_["params"].index(p)
             for p in res.trials_.sort_values("trial")["params"]]
    # same bins, same trees: the fold scores are equal, not merely close
    for f in range(3):
        np.testing.assert_array_equal(
            res.trials_.sort_values("trial")[f"split{f}_score"].to_numpy(),
            ref.cv_results_[f"split{f}_test_score"][order])
    assert res.best_params_ == ref.best_params_
    # 2 prefixes x 3 folds bin once; the other 3 candidates of each group reuse the bins
    assert res.model_cache_hits_ == 2 * 3 * 3
    assert res.trials_["model_cache_hits"].sum() == res.model_cache_hits_
    assert "_bin_data" not in vars(res.best_estimator_.steps[-1][1])
    off = tune.search(_pipe(_hgb()), HGB_SPACE, X, y, cv=3, scoring="roc_auc",
                      reuse_model_bins=False)
    assert off.model_cache_hits_ == 0
    np.testing.assert_array_equal(_scores(off), _scores(res))


def test_bin_reuse_steps_aside_for_early_stopping_and_plain_models(data):
    X, y = data
    es = _hgb(early_stopping=True, validation_fraction=0.2, n_iter_no_change=2)
    space = {"model__learning_rate": [0.1, 0.3]}
    res = tune.search(_pipe(es), space, X, y, cv=3, scoring="roc_auc")
    ref = GridSearchCV(_pipe(es), space, cv=3, scoring="roc_auc").fit(X, y)
    assert res.model_cache_hits_ == 0  # the internal split bins other rows each time
    assert res.best_score_ == ref.best_score_
    Xn = X[["a", "c"]].to_numpy()
    res = tune.search(_hgb(), {"learning_rate": [0.1, 0.3]}, Xn, y, cv=3)
    ref = GridSearchCV(_hgb(), {"learning_rate": [0.1, 0.3]}, cv=3).fit(Xn, y)
    assert res.model_cache_hits_ == 3
    assert res.best_score_ == ref.best_score_


def test_halving_on_hgb_rounds_reuses_prefix_and_bins_across_rounds(data):
    X, y = data
    res = tune.search(_pipe(_hgb(max_iter=9)), HGB_SPACE, X, y, cv=3, strategy="halving",
                      scoring="roc_auc", random_state=0)
    t = res.trials_
    assert res.extra["halving_resource"] == "model__max_iter"
    later = t[t["round"] > 0]
    assert len(later) and (later["cache_hits"] == 3).all()
    assert (later["model_cache_hits"] == 3).all()
    # with no budget nothing is kept, and the scores stay the same
    none = tune.search(_pipe(_hgb(max_iter=9)), HGB_SPACE, X, y, cv=3, strategy="halving",
                       scoring="roc_auc", random_state=0, cache_bytes=0)
    assert none.cache_hits_ == none.model_cache_hits_ == 0
    np.testing.assert_array_equal(none.trials_["mean_score"], t["mean_score"])


def test_hist_gradient_boosting_scores_do_not_depend_on_n_jobs(data):
    X, y = data
    runs = [tune.search(_pipe(_hgb()), HGB_SPACE, X, y, cv=3, scoring="roc_auc", n_jobs=j)
            for j in (1, 2, None)]
    runs.append(tune.search(_pipe(_hgb()), HGB_SPACE, X, y, cv=3, scoring="roc_auc",
                            n_jobs=2, backend="processes"))
    assert runs[-1].model_cache_hits_ == runs[0].model_cache_hits_ == 18
    for r in runs[1:]:
        np.testing.assert_array_equal(_scores(r), _scores(runs[0]))
        assert r.best_params_ == runs[0].best_params_


@pytest.mark.parametrize("cv", [2, 3])
def test_thread_pieces_count_hits_like_the_serial_loop(data, cv):
    # threads run (candidate, fold) pieces; a fold's first candidate fits the prefix and the
    # bins, the others wait for it, so the per-trial hits match the serial loop's exactly,
    # also when there are more workers than folds (cv=2, n_jobs=3)
    X, y = data
    cols = ["mean_score", "cache_hits", "model_cache_hits"]
    one = tune.search(_pipe(_hgb()), HGB_SPACE, X, y, cv=cv, scoring="roc_auc", n_jobs=1)
    for _ in range(2):
        many = tune.search(_pipe(_hgb()), HGB_SPACE, X, y, cv=cv, scoring="roc_auc",
                           n_jobs=3)
        pd.testing.assert_frame_equal(many.trials_[cols], one.trials_[cols])
    assert one.cache_hits_ == one.model_cache_hits_ == 6 * cv


def test_thread_pieces_order():
    from forgeline._tune_cv import Split, Task
    from forgeline._tune_run import thread_pieces
    cands = [(i, {"p": i}, {}) for i in range(3)]
    task = Task(estimator=None, split=Split([], None), scorer=None)
    pieces = thread_pieces(task, cands, [[0, 1], [2]], 2)
    assert [([j[0] for j in jobs], f) for jobs, f, _, _ in pieces] == [
        ([0], 0), ([0], 1), ([1], 0), ([1], 1), ([2], 0), ([2], 1)]
    leads = [lead for _, _, _, lead in pieces]
    assert leads[0] is pieces[2][2] and leads[1] is pieces[3][2]  # later pieces wait on it
    assert pieces[0][2] is None and leads[2] is None


def test_halving_rounds_rule_for_hist_gradient_boosting():
    from sklearn.ensemble import HistGradientBoostingClassifier

    from forgeline._tune_cv import Split
    from forgeline.tune import _halving_resource
    pipe = _pipe(HistGradientBoostingClassifier(max_iter=50))
    split = Split.of(pipe)
    assert _halving_resource(pipe, split, set(), "auto") == ("model__max_iter", 50)
    assert _halving_resource(pipe, split, {"model__max_iter"}, "auto") == (None, None)
    assert _halving_resource(pipe, split, set(), "n_samples") == (None, None)


def test_optuna_strategy(data):
    X, y = data
    import optuna
    space = {"ct__num__imp__strategy": ["median", "mean"],
             "model__C": optuna.distributions.FloatDistribution(1e-3, 10.0, log=True)}
    a = tune.search(_pipe(), space, X, y, cv=3, strategy="optuna", n_iter=8, random_state=1)
    b = tune.search(_pipe(), space, X, y, cv=3, strategy="optuna", n_iter=8, random_state=1)
    assert len(a.trials_) == 8
    assert set(a.trials_["state"]) <= {"complete", "pruned"}
    np.testing.assert_array_equal(a.trials_["mean_score"], b.trials_["mean_score"])
    assert a.best_params_ == b.best_params_
    assert a.cache_hits_ > 0
    complete = a.trials_[a.trials_["state"] == "complete"]
    assert a.best_score_ == complete["mean_score"].max()


def test_optuna_prunes_with_a_pruner(data):
    X, y = data
    import optuna
    space = {"model__C": [1e-4, 1e-3, 1.0, 10.0]}
    res = tune.search(_pipe(), space, X, y, cv=5, strategy="optuna", n_iter=12,
                      random_state=0,
                      optuna_pruner=optuna.pruners.MedianPruner(n_startup_trials=2,
                                                                n_warmup_steps=0))
    assert (res.trials_["state"] == "pruned").any()


# mlflow's own SQLAlchemy usage (not forgeline's) triggers this deprecation in SQLAlchemy 2.1
@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated")
def test_mlflow_logs_every_trial(data, tmp_path):
    X, y = data
    from mlflow.tracking import MlflowClient
    uri = "sqlite:///" + str(tmp_path / "mlflow.db")
    res = tune.search(_pipe(), SPACE, X, y, cv=3, mlflow_experiment="tune-test",
                      mlflow_tracking_uri=uri)
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("tune-test")
    runs = client.search_runs([exp.experiment_id])
    children = [r for r in runs if r.data.tags.get("forgeline.tune") == "trial"]
    assert len(children) == 6
    by_c = {float(r.data.params["model__C"]): r for r in children
            if r.data.params["ct__num__imp__strategy"] == "median"}
    t = res.trials_.set_index("trial")
    for _, row in t.iterrows():
        if row["params"]["ct__num__imp__strategy"] == "median":
            run = by_c[row["params"]["model__C"]]
            assert run.data.metrics["mean_score"] == pytest.approx(row["mean_score"])
            assert run.data.metrics["cache_hits"] == row["cache_hits"]
            assert run.data.tags["mlflow.parentRunId"] == res.extra["mlflow_run_id"]


@pytest.mark.parametrize("sparse", [False, True])  # True: CSR fold matrices, lockstep fits
def test_keyboard_interrupt_returns_trials_done_so_far(data, sparse):
    X, y = data
    from sklearn.metrics import get_scorer
    auc = get_scorer("roc_auc")
    calls = {"n": 0}

    def scorer(model, Xv, yv):
        calls["n"] += 1
        if calls["n"] > 7:
            raise KeyboardInterrupt
        return auc(model, Xv, yv)

    space = {"model__C": [0.01, 0.1, 1.0, 10.0]}
    pipe = _pipe()
    if sparse:
        pipe.set_params(ct__cat__sparse_output=True, ct__sparse_threshold=1.0)
    res = tune.search(pipe, space, X, y, cv=KFold(2), scoring=scorer, n_jobs=1)
    assert res.interrupted
    assert res.best_estimator_ is None
    assert res.trials_["n_folds_done"].sum() == 7
    assert (res.trials_["state"] == "complete").sum() >= 3
    assert res.best_params_ in [p for p, s in zip(res.trials_["params"], res.trials_["state"])
                                if s == "complete"]
    with pytest.raises(InputError, match="interrupted"):
        res.compile(X)


def test_keyboard_interrupt_in_threads(data, monkeypatch):
    X, y = data
    calls = {"n": 0}
    orig = LogisticRegression.fit

    def fit(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return orig(self, *a, **k)

    monkeypatch.setattr(LogisticRegression, "fit", fit)
    res = tune.search(_pipe(), SPACE, X, y, cv=3, n_jobs=2)
    assert res.interrupted
    assert 0 < res.trials_["n_folds_done"].sum() < 18


def test_progress_bar(data, capsys):
    X, y = data
    tune.search(_pipe(), {"model__C": [0.1, 1.0]}, X, y, cv=2, progress=True)
    assert "tune[grid]" in capsys.readouterr().err


def test_empty_space(data):
    X, y = data
    for space in ({}, {"model__C": []}, [], [{}]):
        with pytest.raises(InputError, match="empty"):
            tune.search(_pipe(), space, X, y)


def test_unknown_parameter_lists_valid_names(data):
    X, y = data
    with pytest.raises(ParameterError, match="model__C") as ei:
        tune.search(_pipe(), {"model__Cc": [1.0], "model__C": [1.0]}, X, y)
    assert ei.value.unknown == ["model__Cc"]
    assert "ct__num__imp__strategy" in ei.value.valid
    assert isinstance(ei.value, InputError)


def test_length_mismatch_and_bad_arguments(data):
    X, y = data
    with pytest.raises(InputError, match="different lengths"):
        tune.search(_pipe(), SPACE, X, y[:-3])
    with pytest.raises(InputError, match="different lengths"):
        tune.search(_pipe(), SPACE, X, y, groups=np.arange(5), cv=GroupKFold(2))
    with pytest.raises(InputError, match="strategy"):
        tune.search(_pipe(), SPACE, X, y, strategy="bayes")
    with pytest.raises(InputError, match="list of values"):
        from scipy.stats import uniform
        tune.search(_pipe(), {"model__C": uniform(0, 1)}, X, y, strategy="grid")
    with pytest.raises(InputError, match="cv"):
        tune.search(_pipe(), SPACE, X, y, cv=1)
    with pytest.raises(InputError, match="cache_bytes"):
        tune.search(_pipe(), SPACE, X, y, cache_bytes=-1)
    for bad in (0, -1, 1.5):
        with pytest.raises(InputError, match="inner_threads"):
            tune.search(_pipe(), SPACE, X, y, inner_threads=bad)
