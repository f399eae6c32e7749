"""forgeline.tune.search(warm_start_path=...): the opt-in warm-started regularisation path.

The oracle is a hand-written chain: the fold's prefix fitted by sklearn, then one
LogisticRegression(warm_start=True) walked along C in order, scored on the fold's
validation rows. The first candidate of every chain is a cold fit and equals GridSearchCV.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import get_scorer
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from forgeline import tune
from forgeline.errors import InputError

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning")

C_VALUES = [1.0, 0.01, 10.0, 0.1]  # deliberately unsorted: the chain sorts them


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    n = 300
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.lognormal(size=n),
                       "k": rng.choice(["x", "y", "z"], n).astype(object)})
    df.loc[rng.random(n) < 0.05, "b"] = np.nan
    y = ((df["a"] + (df["k"] == "x") + rng.normal(scale=0.7, size=n)) > 0.5).astype(int)
    return df, y.to_numpy()


def _pipe(max_iter=4):
    ct = ColumnTransformer([
        ("num", Pipeline([("imp", SimpleImputer(strategy="median")),
                          ("sc", StandardScaler())]), ["a", "b"]),
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["k"]),
    ])
    return Pipeline([("ct", ct), ("model", LogisticRegression(max_iter=max_iter))])


SPACE = {"ct__num__imp__strategy": ["median", "mean"], "model__C": C_VALUES}


def _oracle(X, y, strategy, descending=False):
    """Fold scores of a hand-made warm-started chain over C for one imputer strategy."""
    cv = StratifiedKFold(3)
    scorer = get_scorer("roc_auc")
    out = {c: [] for c in C_VALUES}
    for train, valid in cv.split(X, y):
        pipe = _pipe().set_params(ct__num__imp__strategy=strategy)
        prefix = Pipeline(pipe.steps[:-1])
        Xt = prefix.fit_transform(X.iloc[train], y[train])
        Xv = prefix.transform(X.iloc[valid])
        model = clone(pipe.steps[-1][1]).set_params(warm_start=True)
        for c in sorted(C_VALUES, reverse=descending):
            model.set_params(C=c).fit(Xt, y[train])
            out[c].append(scorer(model, Xv, y[valid]))
    return out


def _fold_scores(res, strategy):
    t = res.trials_[res.trials_["param_ct__num__imp__strategy"] == strategy]
    return {c: t[t["param_model__C"] == c][[f"split{f}_score" for f in range(3)]]
            .to_numpy()[0] for c in C_VALUES}


@pytest.mark.parametrize("descending", [False, True])
def test_warm_path_matches_a_hand_made_chain(data, descending):
    X, y = data
    path = "-model__C" if descending else "model__C"
    res = tune.search(_pipe(), SPACE, X, y, cv=3, scoring="roc_auc", n_jobs=1,
                      warm_start_path=path)
    assert res.extra["warm_start_path"] == path
    for strategy in ("median", "mean"):
        want = _oracle(X, y, strategy, descending)
        got = _fold_scores(res, strategy)
        for c in C_VALUES:
            np.testing.assert_array_equal(got[c], want[c])


def test_first_of_each_chain_is_a_cold_fit_and_the_rest_differ(data):
    X, y = data
    res = tune.search(_pipe(), SPACE, X, y, cv=3, scoring="roc_auc", n_jobs=1,
                      warm_start_path="model__C")
    ref = GridSearchCV(_pipe(), SPACE, cv=3, scoring="roc_auc").fit(X, y)
    cold = pd.DataFrame(ref.cv_results_["params"]).assign(
        mean=ref.cv_results_["mean_test_score"])
    warm = res.trials_
    for strategy in ("median", "mean"):
        w = warm[warm["param_ct__num__imp__strategy"] == strategy].set_index(
            "param_model__C")["mean_score"]
        c = cold[cold["ct__num__imp__strategy"] == strategy].set_index("model__C")["mean"]
        assert w[min(C_VALUES)] == c[min(C_VALUES)]  # the chain starts cold
        # max_iter=4 stops every later fit early, at another point than a cold start
        assert any(w[v] != c[v] for v in C_VALUES if v != min(C_VALUES))
    # the default stays exact
    exact = tune.search(_pipe(), SPACE, X, y, cv=3, scoring="roc_auc", n_jobs=1)
    assert exact.best_score_ == ref.best_score_ and "warm_start_path" not in exact.extra


@pytest.mark.parametrize("n_jobs,backend", [(2, "threads"), (2, "processes")])
def test_warm_path_does_not_depend_on_jobs_or_backend(data, n_jobs, backend):
    X, y = data
    one = tune.search(_pipe(), SPACE, X, y, cv=3, n_jobs=1, warm_start_path="model__C")
    other = tune.search(_pipe(), SPACE, X, y, cv=3, n_jobs=n_jobs, backend=backend,
                        warm_start_path="model__C")
    np.testing.assert_array_equal(one.trials_["mean_score"], other.trials_["mean_score"])
    assert one.best_params_ == other.best_params_


def test_warm_path_with_random_and_halving(data):
    X, y = data
    from scipy.stats import loguniform
    space = {"model__C": loguniform(1e-3, 10)}
    a = tune.search(_pipe(), space, X, y, cv=3, strategy="random", n_iter=5, random_state=0,
                    warm_start_path="model__C", n_jobs=1)
    b = tune.search(_pipe(), space, X, y, cv=3, strategy="random", n_iter=5, random_state=0,
                    warm_start_path="model__C", n_jobs=2)
    np.testing.assert_array_equal(a.trials_["mean_score"], b.trials_["mean_score"])
    h = tune.search(_pipe(), SPACE, X, y, cv=3, strategy="halving", random_state=0,
                    warm_start_path="model__C", min_resources=60)
    assert h.best_params_ and h.extra["warm_start_path"] == "model__C"


def test_warm_path_bad_input(data):
    X, y = data
    with pytest.raises(InputError, match="not a parameter of the search space"):
        tune.search(_pipe(), SPACE, X, y, cv=3, warm_start_path="model__tol")
    with pytest.raises(InputError, match="final model"):
        tune.search(_pipe(), SPACE, X, y, cv=3, warm_start_path="ct__num__imp__strategy")
    with pytest.raises(InputError, match="numeric values"):
        tune.search(_pipe(), {"model__C": [0.1, "x"]}, X, y, cv=3,
                    warm_start_path="model__C")
    with pytest.raises(InputError, match="optuna"):
        tune.search(_pipe(), {"model__C": [0.1, 1.0]}, X, y, cv=3, strategy="optuna",
                    n_iter=2, warm_start_path="model__C")
    with pytest.raises(InputError, match="parameter name"):
        tune.search(_pipe(), SPACE, X, y, cv=3, warm_start_path="-")
    from sklearn.svm import SVC
    with pytest.raises(InputError, match="SVC has none"):
        tune.search(Pipeline([("sc", StandardScaler()), ("model", SVC())]),
                    {"model__C": [0.1, 1.0]}, X[["a"]], y, cv=3, warm_start_path="model__C")
