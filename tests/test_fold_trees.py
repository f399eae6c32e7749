"""Monotone maps folded into tree thresholds (forgeline._fold_trees): the folded scorer
against the sklearn pipeline (bit for bit) and against the unfolded scorer, on raw values at
and next to every rewritten threshold, NaN, +-inf and log1p's domain edge."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MaxAbsScaler,
    MinMaxScaler,
    RobustScaler,
    StandardScaler,
)

import forgeline as fl
from forgeline._fold_trees import FoldedTrees, _dbl, _key, apply_chain, fold_column, split_chain
from forgeline.plan import OpSpec

COLS = ["a", "b", "c"]


def _data(n=500, seed=0, nan=True):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"a": rng.lognormal(0, 1, n), "b": rng.normal(1, 2, n) ** 2,
                       "c": rng.exponential(3, n)})
    if nan:
        df.loc[rng.random(n) < 0.08, "a"] = np.nan
    df.loc[rng.random(n) < 0.05, "c"] = 7.0  # ties
    return df


def _target(df, kind, seed=0):
    a = np.nan_to_num(df["a"].to_numpy(), nan=1.0)
    s = np.log1p(a) + np.sqrt(df["b"].to_numpy()) * 0.3 - 0.2 * df["c"].to_numpy()
    if kind == "regression":
        return s
    if kind == "multiclass":
        return np.digitize(s, np.quantile(s, [0.33, 0.66]))
    return (s > np.median(s)).astype(int)


def _model(name, seed=0):
    if name.startswith("lgbm"):
        import lightgbm as lgb

        cls = lgb.LGBMRegressor if name == "lgbm_reg" else lgb.LGBMClassifier
        return cls(n_estimators=8, num_leaves=7, min_child_samples=5, verbose=-1, n_jobs=1,
                   random_state=seed)
    if name.startswith("xgb"):
        import xgboost as xgb

        cls = xgb.XGBRegressor if name == "xgb_reg" else xgb.XGBClassifier
        return cls(n_estimators=6, max_depth=3, n_jobs=1, random_state=seed)
    from sklearn import ensemble, tree

    return {
        "dt_reg": lambda: tree.DecisionTreeRegressor(max_depth=5, random_state=seed),
        "rf_clf": lambda: ensemble.RandomForestClassifier(n_estimators=4, max_depth=4, random_state=seed),
        "gb_multi": lambda: ensemble.GradientBoostingClassifier(n_estimators=4, max_depth=2,
                                                                random_state=seed),
        "hgb_reg": lambda: ensemble.HistGradientBoostingRegressor(max_iter=6, max_leaf_nodes=7,
                                                                  random_state=seed),
    }[name]()


TASK = {"lgbm_reg": "regression", "lgbm_clf": "binary", "lgbm_multi": "multiclass",
        "xgb_reg": "regression", "xgb_clf": "binary", "dt_reg": "regression",
        "rf_clf": "binary", "gb_multi": "multiclass", "hgb_reg": "regression"}
NATIVE_NAN = ("lgbm_reg", "lgbm_clf", "lgbm_multi", "xgb_reg", "xgb_clf", "hgb_reg", "dt_reg",
              "rf_clf")


def _scaler(kind):
    return {"standard": StandardScaler, "minmax": MinMaxScaler, "robust": RobustScaler,
            "maxabs": MaxAbsScaler}[kind]()


def _negate(scaler):
    """Flip the fitted scaler's sign: a decreasing map (sklearn never fits one, but a
    pipeline may carry one, and it exercises the swapped-children path)."""
    scaler.scale_ = -scaler.scale_
    if hasattr(scaler, "min_"):
        scaler.min_ = -scaler.min_


def _pipeline(model_name, impute, log1p, scalers, negate, seed=0, train=None):
    steps = []
    if impute:
        steps.append(SimpleImputer(strategy="median"))
    if log1p:
        steps.append(FunctionTransformer(np.log1p))
    steps += [_scaler(k) for k in scalers]
    model = _model(model_name, seed)
    df = _data(400, seed, nan=impute or model_name in NATIVE_NAN) if train is None else train
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pre = make_pipeline(*steps) if steps else None
        Xt = pre.fit_transform(df) if pre is not None else df.to_numpy()
        for i in negate:
            if i < len(scalers):
                _negate(pre.steps[len(steps) - len(scalers) + i][1])
        Xt = pre.transform(df) if pre is not None else Xt
        model.fit(Xt, _target(df, TASK[model_name]))
        pipe = make_pipeline(*(steps + [model]))
    return pipe, df


def _probe_frame(scorer, df, seed=0):
    """Rows whose raw values sit at, just below and just above every rewritten threshold,
    plus NaN and log1p's domain edge, other columns from ``df``."""
    tf = scorer.tree_fold
    arr = tf.model._arrays
    rng = np.random.default_rng(seed)
    base = df.sample(n=1, random_state=seed).iloc[[0] * 1]
    rows = []
    for j, name in enumerate(COLS):
        t = np.unique(arr["threshold"][arr["feature"] == j])
        t = t[np.isfinite(t)]
        vals = np.concatenate([t, np.nextafter(t, np.inf), np.nextafter(t, -np.inf),
                               [np.nan, 0.0, -0.0, -0.5, -1.5, np.nextafter(-1.0, 0),
                                np.nextafter(-1.0, -2), 1e300, -1e300, 5e-324]])
        block = pd.concat([base] * len(vals), ignore_index=True)
        block[name] = vals
        other = [c for c in COLS if c != name]
        block[other] = df[other].sample(n=len(vals), replace=True,
                                        random_state=int(rng.integers(1 << 30))).to_numpy()
        rows.append(block)
    return pd.concat(rows, ignore_index=True)


def _check(pipe, df, scorer, unfolded, model_name, seed=0):
    assert scorer.tree_fold is not None, scorer.explain_plan()
    X = _probe_frame(scorer, df, seed)
    # rows the sklearn pipeline refuses: NaN for models without missing-value support,
    # values beyond float32 for sklearn's float32 trees
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pre = np.asarray(pipe[:-1].transform(X) if len(pipe) > 1 else X.to_numpy(), dtype=np.float64)
    ok = ~np.isinf(pre)
    if model_name not in NATIVE_NAN:
        ok &= ~np.isnan(pre)
    if model_name in ("dt_reg", "rf_clf", "gb_multi"):
        ok &= ~(np.abs(pre) > np.finfo(np.float32).max)
    X = X[ok.all(axis=1)]
    _methods_match(scorer, unfolded, pipe, X, model_name)


def _methods_match(scorer, unfolded, pipe, X, model_name):
    """predict (and predict_proba) equal to the unfolded scorer's, and to the source within
    the contract (XGBoost's float32 outputs: 1e-6)."""
    methods = ["predict"] + (["predict_proba"] if TASK[model_name] != "regression" else [])
    for m in methods:
        got = getattr(scorer, m)(X)
        np.testing.assert_array_equal(got, getattr(unfolded, m)(X))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = getattr(pipe, m)(X)
        if want.dtype.kind == "f":
            rtol = 1e-6 if model_name.startswith("xgb") else 1e-12
            np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * 1e-3)
        else:
            np.testing.assert_array_equal(got, want)
    # where the sklearn pipeline refuses (inf, log1p(-1) = -inf into a scaler) the folded
    # scorer still agrees with the unfolded one
    Y = X.copy()
    special = [np.inf, -np.inf, -1.0, np.nan]
    for i, c in enumerate(COLS):
        Y.iloc[4 * i:4 * i + 4, Y.columns.get_loc(c)] = special
    np.testing.assert_array_equal(scorer.predict_raw(Y), unfolded.predict_raw(Y))


def _equal_to_unfolded_close_to_source(scorer, unfolded, pipe, X):
    np.testing.assert_array_equal(scorer.predict(X), unfolded.predict(X))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_allclose(scorer.predict(X), pipe.predict(X), rtol=1e-12)


def _compile_both(pipe, df):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fl.compile(pipe, df), fl.compile(pipe, df, fold=False)


@pytest.mark.parametrize("model_name", list(TASK))
def test_log1p_standard_pipeline_matches_source(model_name):
    pipe, df = _pipeline(model_name, True, True, ["standard"], [])
    scorer, unfolded = _compile_both(pipe, df)
    _check(pipe, df, scorer, unfolded, model_name)
    assert unfolded.tree_fold is None


@pytest.mark.parametrize("model_name", ["lgbm_clf", "xgb_reg", "dt_reg", "hgb_reg"])
def test_negative_scale_swaps_children(model_name):
    pipe, df = _pipeline(model_name, True, True, ["standard", "minmax"], [0])
    scorer, unfolded = _compile_both(pipe, df)
    _check(pipe, df, scorer, unfolded, model_name)
    assert any(d["swapped"] for d in scorer.tree_fold.folds)


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(model_name=st.sampled_from(list(TASK)), impute=st.booleans(), log1p=st.booleans(),
       scalers=st.lists(st.sampled_from(["standard", "minmax", "robust", "maxabs"]), min_size=1,
                        max_size=2),
       negate=st.lists(st.integers(0, 1), max_size=2), seed=st.integers(0, 50))
def test_random_pipelines_match_source(model_name, impute, log1p, scalers, negate, seed):
    pipe, df = _pipeline(model_name, impute, log1p, scalers, negate, seed)
    scorer, unfolded = _compile_both(pipe, df)
    _check(pipe, df, scorer, unfolded, model_name, seed)


def test_constant_column_and_scale_one():
    df = _data(300)
    df["b"] = 2.5  # constant: StandardScaler keeps scale 1
    pipe, _ = _pipeline("lgbm_reg", True, False, ["standard"], [], train=df)
    scorer, unfolded = _compile_both(pipe, df)
    X = _probe_frame(scorer, df)
    _equal_to_unfolded_close_to_source(scorer, unfolded, pipe, X)


def test_explain_plan_shows_folds_and_smaller_plan():
    pipe, df = _pipeline("lgbm_clf", True, True, ["standard"], [])
    scorer, _ = _compile_both(pipe, df)
    text = scorer.explain_plan()
    assert "before folding" in text and "tree thresholds on a" in text
    assert "log1p" not in "\n".join(scorer.tree_fold.features.describe())
    n_ops = sum(len(g.ops) for g in scorer.features.groups)
    assert n_ops > 0
    # transform keeps the source's features; only predictions use the folded plan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_allclose(scorer.transform(df), pipe[:-1].transform(df), rtol=1e-12)


def test_bundle_round_trip(tmp_path):
    pipe, df = _pipeline("xgb_clf", True, True, ["robust"], [0])
    scorer, _ = _compile_both(pipe, df)
    path = tmp_path / "m.forge"
    scorer.save(path)
    back = fl.load(path)
    assert back.tree_fold is not None
    X = _probe_frame(scorer, df)
    np.testing.assert_array_equal(back.predict_proba(X), scorer.predict_proba(X))
    np.testing.assert_array_equal(back.tree_fold.model._arrays["threshold"],
                                  scorer.tree_fold.model._arrays["threshold"])


def test_bundle_loads_without_training_libraries(tmp_path):
    import subprocess
    import sys

    pipe, df = _pipeline("lgbm_clf", True, True, ["standard"], [])
    scorer, _ = _compile_both(pipe, df)
    path = tmp_path / "m.forge"
    scorer.save(path)
    X = _probe_frame(scorer, df)
    want = scorer.predict_proba(X)
    np.save(tmp_path / "x.npy", X.to_numpy())
    np.save(tmp_path / "want.npy", want)
    code = (
        "import sys\n"
        "for m in ('sklearn', 'lightgbm', 'xgboost', 'torch'):\n"
        "    sys.modules[m] = None\n"
        "import numpy as np, forgeline as fl\n"
        f"s = fl.load({str(path)!r})\n"
        "assert s.tree_fold is not None\n"
        f"X = np.load({str(tmp_path / 'x.npy')!r})\n"
        "got = s.predict_proba({c: X[:, i] for i, c in enumerate(['a', 'b', 'c'])})\n"
        f"assert np.array_equal(got, np.load({str(tmp_path / 'want.npy')!r}))\n"
    )
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120)
    assert res.returncode == 0, res.stderr


def test_corrupt_tree_fold_is_a_bundle_error():
    pipe, df = _pipeline("lgbm_reg", True, True, ["standard"], [])
    scorer, _ = _compile_both(pipe, df)
    body, arrays = scorer.to_parts()
    bad = dict(body)
    bad["tree_fold"] = dict(body["tree_fold"], kind="nope")
    with pytest.raises(fl.BundleError):
        fl.Scorer.from_parts(bad, arrays)
    bad["tree_fold"] = dict(body["tree_fold"], folds="x")
    with pytest.raises(fl.BundleError):
        fl.Scorer.from_parts(bad, arrays)
    short = {k: (v[:-1] if k == "tree_fold.model.threshold" else v) for k, v in arrays.items()}
    with pytest.raises(fl.BundleError):
        fl.Scorer.from_parts(body, short)
    nomodel = dict(body, model=None)
    with pytest.raises(fl.BundleError):
        fl.Scorer.from_parts(nomodel, arrays)


def test_zero_as_missing_column_is_not_folded_and_stays_exact():
    import lightgbm as lgb

    df = _data(400, nan=False)
    df.loc[::7, "b"] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe = make_pipeline(StandardScaler(), lgb.LGBMRegressor(
            n_estimators=6, num_leaves=7, min_child_samples=5, zero_as_missing=True, verbose=-1))
        pipe.fit(df, _target(df, "regression"))
    scorer, unfolded = _compile_both(pipe, df)
    folded_cols = {d["column"] for d in scorer.tree_fold.folds} if scorer.tree_fold else set()
    arr = unfolded.model._arrays
    zero_cols = {COLS[j] for j in np.unique(arr["feature"][(arr["flags"] & 4) != 0]) if j >= 0}
    assert zero_cols and not zero_cols & folded_cols
    X = df.copy()
    X.loc[::3, "b"] = 0.0
    _equal_to_unfolded_close_to_source(scorer, unfolded, pipe, X)


def test_single_row_path_uses_folded_plan():
    pipe, df = _pipeline("lgbm_clf", True, True, ["standard"], [])
    scorer, unfolded = _compile_both(pipe, df)
    X = _probe_frame(scorer, df)
    for i in range(0, len(X), 37):
        row = {c: float(X[c].iloc[i]) for c in COLS}
        np.testing.assert_array_equal(scorer.predict_proba(row), unfolded.predict_proba(row))


# ------------------------------------------------------------------ the column search itself

_OPS = st.one_of(
    st.builds(lambda a: OpSpec("sub", a), st.floats(-1e3, 1e3)),
    st.builds(lambda a: OpSpec("div", a), st.floats(-1e3, 1e3).filter(lambda v: abs(v) > 1e-6)),
    st.builds(lambda a: OpSpec("mul", a), st.floats(-1e3, 1e3).filter(lambda v: abs(v) > 1e-6)),
    st.just(OpSpec("log1p")), st.just(OpSpec("sqrt")), st.just(OpSpec("expm1")),
    st.builds(lambda a, w: OpSpec("clip", a, a + w), st.floats(-10, 10), st.floats(0, 10)),
)


@settings(max_examples=60, deadline=None)
@given(chain=st.lists(_OPS, min_size=1, max_size=4),
       thr=st.lists(st.floats(-50, 50, allow_subnormal=True), min_size=1, max_size=6),
       nan_left=st.booleans(), mode=st.sampled_from(["lightgbm", "float64", "float32"]),
       seed=st.integers(0, 1000))
def test_fold_column_agrees_with_source_rule_everywhere(chain, thr, nan_left, mode, seed):
    """On random doubles over the whole range and next to each threshold, the folded node
    (raw value, new threshold, guard) decides like the source node on the mapped value."""
    from forgeline._fold_trees import _source_left, _target_left

    thr_e = np.asarray(thr, dtype=np.float64)
    if mode == "float32":
        thr_e = thr_e.astype(np.float32).astype(np.float64)
    nl = np.full(thr_e.size, nan_left)
    target = "float64" if mode == "float32" else mode
    if split_chain(chain) != 0:
        return
    res = fold_column(chain, thr_e, nl, mode, target, True)
    if res is None:
        return  # refusing is always allowed; a wrong answer is not
    t_new, nl_new, swap, guard = res
    rng = np.random.default_rng(seed)
    u = np.concatenate([_dbl(rng.integers(-(1 << 63), 1 << 63, 4000, dtype=np.int64)),
                        rng.normal(0, 30, 2000), [np.inf, -np.inf, np.nan, 0.0, -0.0, -1.0]])
    u = u[~np.isnan(u) | (np.arange(u.size) == u.size - 4)]
    for t in t_new:
        k = _key(np.array([t]))[0]
        near = _dbl(np.clip(k + np.arange(-40, 41), _key(np.array([-np.inf]))[0],
                            _key(np.array([np.inf]))[0]))
        u = np.concatenate([u, near])
    with np.errstate(all="ignore"):
        want = _source_left(apply_chain(chain, u)[None, :], thr_e[:, None], nl[:, None], mode) \
            != swap[:, None]
    w = u.copy()
    if guard is not None:
        side, d = guard
        w = np.where((u < d) if side == "lower" else (u > d), np.nan, u)
    got = _target_left(w[None, :], t_new[:, None], nl_new[:, None], target)
    np.testing.assert_array_equal(got, want)


def test_split_chain_rules():
    imp, lg, sub = OpSpec("impute", 1.0), OpSpec("log1p"), OpSpec("sub", 2.0)
    assert split_chain([imp, lg, sub]) == 0
    assert split_chain([OpSpec("isnan"), imp, lg]) == 1
    assert split_chain([lg, imp, sub]) == 1  # impute after a NaN maker breaks the order
    assert split_chain([OpSpec("div", 0.0), lg]) == 1
    ss = OpSpec("searchsorted_right", table=(1.0, 2.0))
    assert split_chain([lg, ss]) == 1
    assert split_chain([imp, ss, sub]) == 0


def test_folded_trees_from_parts_rejects_bad_meta():
    with pytest.raises(fl.BundleError):
        FoldedTrees.from_parts({"kind": "linear"}, {})
    with pytest.raises(fl.BundleError):
        FoldedTrees.from_parts({"kind": "trees", "folds": [], "converted": -1}, {})


def test_forgeline_transformers_fold_past_redundant_checks():
    import lightgbm as lgb

    from forgeline import transforms as T
    from forgeline._fold_trees import drop_redundant_checks

    df = _data(400, nan=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe = make_pipeline(T.Winsorizer(), T.Log1p(), T.StandardScaler(),
                             lgb.LGBMRegressor(n_estimators=6, num_leaves=7, verbose=-1))
        pipe.fit(df, _target(df, "regression"))
    scorer, unfolded = _compile_both(pipe, df)
    after = [d["after"] for d in scorer.tree_fold.folds]
    assert all("log1p" not in a for a in after), after
    X = _probe_frame(scorer, df)
    _equal_to_unfolded_close_to_source(scorer, unfolded, pipe, X)
    # a check that can fire stays: log1p(-1) = -inf
    ops = [OpSpec("check_finite"), OpSpec("log1p"), OpSpec("check_finite")]
    assert len(drop_redundant_checks(ops)) == 3
    ops = [OpSpec("check_finite"), OpSpec("clip", -0.5, 9.0), OpSpec("log1p"),
           OpSpec("check_finite"), OpSpec("mul", 1e300), OpSpec("check_finite")]
    assert [o.name for o in drop_redundant_checks(ops)] == [
        "check_finite", "clip", "log1p", "mul", "check_finite"]


@pytest.mark.parametrize("model_name", ["lgbm_multi", "xgb_clf", "rf_clf", "hgb_reg"])
def test_binning_and_clipping_fold(model_name):
    """KBinsDiscretizer (ordinal: searchsorted) and MinMaxScaler(clip=True) are monotone
    step / saturating maps: every raw value still lands on the source's side."""
    from sklearn.preprocessing import KBinsDiscretizer

    df = _data(400, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pre = make_pipeline(SimpleImputer(strategy="median"), MinMaxScaler(clip=True),
                            KBinsDiscretizer(n_bins=6, encode="ordinal", strategy="quantile",
                                             subsample=None))
        model = _model(model_name, 3)
        model.fit(pre.fit_transform(df), _target(df, TASK[model_name]))
        pipe = make_pipeline(*[s for _, s in pre.steps], model)
    scorer, unfolded = _compile_both(pipe, df)
    assert all("searchsorted" in d["before"] and "searchsorted" not in d["after"]
               for d in scorer.tree_fold.folds)
    _check(pipe, df, scorer, unfolded, model_name, 3)


def test_score_and_thread_counts_use_the_folded_plan():
    pipe, df = _pipeline("xgb_clf", True, True, ["standard"], [0])
    scorer, unfolded = _compile_both(pipe, df)
    X = _probe_frame(scorer, df)
    a, b = scorer.score(X), unfolded.score(X)
    pd.testing.assert_frame_equal(a, b)
    for nt in (1, 2, 3):
        np.testing.assert_array_equal(scorer.predict_proba(X, n_threads=nt),
                                      b[["proba_0", "proba_1"]].to_numpy())


def _cat_data(n=500, seed=0):
    rng = np.random.default_rng(seed)
    df = _data(n, seed)
    df["s"] = rng.choice(["x", "y", "z", "w", "v"], n)
    df.loc[rng.random(n) < 0.07, "s"] = None
    df["t"] = rng.choice(["p", "q", "r"], n)
    return df


def _cat_target(df, kind):
    base = _target(df, "regression") + (df["s"] == "y").to_numpy() * 1.5 - (df["t"] == "r").to_numpy()
    if kind == "regression":
        return base
    if kind == "multiclass":
        return np.digitize(base, np.quantile(base, [0.33, 0.66]))
    return (base > np.median(base)).astype(int)


@pytest.mark.parametrize("model_name", ["lgbm_clf", "lgbm_multi", "xgb_reg", "rf_clf", "hgb_reg"])
@pytest.mark.parametrize("drop", [None, "first"])
def test_onehot_columns_become_category_splits(model_name, drop, monkeypatch):
    from sklearn.compose import ColumnTransformer

    from forgeline import _fold_trees

    monkeypatch.setattr(_fold_trees, "FOLD_ONEHOT", "always")
    from sklearn.preprocessing import OneHotEncoder

    df = _cat_data(500, 1)
    ct = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), FunctionTransformer(np.log1p),
                              StandardScaler()), COLS),
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False, drop=drop,
                              min_frequency=None), ["s", "t"])])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe = make_pipeline(ct, _model(model_name, 1))
        pipe.fit(df, _cat_target(df, TASK[model_name]))
        scorer, unfolded = _compile_both(pipe, df)
    kinds = [d["kind"] for d in scorer.tree_fold.folds]
    assert kinds.count("onehot") == 2 and kinds.count("map") == 3
    assert scorer.tree_fold.model.n_features == 5 < scorer.features.n_features
    X = pd.concat([df] * 2, ignore_index=True)
    X.loc[::5, "s"] = "never-seen"
    X.loc[1::5, "s"] = None
    X.loc[2::7, "t"] = "also-new"
    _methods_match(scorer, unfolded, pipe, X, model_name)
    assert "category splits on the code" in scorer.explain_plan()
    if drop is None:  # the bundle stores the code features, bitsets and flags
        body, arrays = scorer.to_parts()
        back = fl.Scorer.from_parts(body, arrays)
        np.testing.assert_array_equal(back.predict(X), scorer.predict(X))


def test_onehot_that_raises_on_unseen_is_not_folded():
    from sklearn.preprocessing import OneHotEncoder
    from sklearn.compose import ColumnTransformer

    df = _cat_data(300, 2)
    df["s"] = df["s"].fillna("x")
    ct = ColumnTransformer([("num", "passthrough", COLS),
                            ("cat", OneHotEncoder(handle_unknown="error", sparse_output=False), ["s"])])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe = make_pipeline(ct, _model("lgbm_reg", 2))
        pipe.fit(df, _cat_target(df, "regression"))
        scorer, _ = _compile_both(pipe, df)
    assert scorer.tree_fold is None or all(d["kind"] != "onehot" for d in scorer.tree_fold.folds)
    X = df.copy()
    X.loc[0, "s"] = "never-seen"
    with pytest.raises(fl.DataError):
        scorer.predict(X)


def test_onehot_fold_keeps_simd_trees_by_default():
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder

    df = _cat_data(500, 1)
    ct = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), COLS),
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["s", "t"])])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe = make_pipeline(ct, _model("lgbm_clf", 1)).fit(df, _cat_target(df, "binary"))
        scorer, unfolded = _compile_both(pipe, df)
    simd = unfolded.model._core.simd and unfolded.model._core.n_qs_trees > 0
    kinds = [d["kind"] for d in scorer.tree_fold.folds]
    # category splits would take the trees off the SIMD kernel: one-hot stays when it is on
    assert kinds.count("onehot") == (0 if simd else 2) and kinds.count("map") == 3
    assert scorer.tree_fold.model._core.n_qs_trees == unfolded.model._core.n_qs_trees
    np.testing.assert_array_equal(scorer.predict_proba(df), unfolded.predict_proba(df))
