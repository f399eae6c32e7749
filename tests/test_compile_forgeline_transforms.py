"""forgeline.compile on pipelines built from forgeline's own transformers.

The compiled Scorer runs the same plan ops the transformers run natively, so its features
must equal ``pipe.transform(X)`` exactly, and predictions of a final model must match.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import forgeline as fl
import forgeline.transforms as ft
from forgeline.errors import DataError


def _frame(n=400, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.lognormal(0, 1.5, n)
    a[rng.random(n) < 0.05] = np.nan
    b = rng.normal(0, 3, n)
    c = rng.exponential(2, n) - 1
    cat = rng.choice(["red", "green", "blue", "teal"], n, p=[0.4, 0.3, 0.2, 0.1]).astype(object)
    cat[rng.random(n) < 0.05] = None
    ns = rng.integers(0, 2_000_000_000, n) * 1_000_000_000
    t = pd.Series(pd.to_datetime(ns))
    t[[5, 9]] = pd.NaT
    y = (np.nan_to_num(a) + b / 3 + (cat == "red") + rng.normal(0, 1, n) > 2).astype(int)
    return pd.DataFrame({"a": a, "b": b, "c": c, "cat": cat, "t": t}), y


NUMERIC = {
    "power": lambda: ft.PowerTransformer(),
    "power_nostd": lambda: ft.PowerTransformer(standardize=False),
    "winsorizer": lambda: ft.Winsorizer(quantile_range=(5.0, 95.0)),
    "log1p_scale": lambda: ft.make_pipeline(ft.SimpleImputer(), ft.Log1p(), ft.StandardScaler()),
    "impute_power": lambda: ft.Pipeline([("imp", ft.SimpleImputer(strategy="median")),
                                         ("pw", ft.PowerTransformer())]),
}


def _num_X(X):
    return X[["a", "b", "c"]].assign(a=X["a"].abs(), c=X["c"] + 1)


@pytest.mark.parametrize("name", sorted(NUMERIC))
def test_numeric_transformers_exact(name):
    X, _ = _frame()
    Xn = _num_X(X)
    pipe = NUMERIC[name]()
    if name in ("power", "power_nostd", "winsorizer"):
        Xn = Xn.fillna(0.5)
    pipe.fit(Xn)
    scorer = fl.compile(pipe, Xn)
    assert_array_equal(scorer.transform(Xn), pipe.transform(Xn))


@pytest.mark.parametrize("enc", ["count", "count_norm", "target", "target_multi"])
def test_encoders_exact(enc):
    X, y = _frame()
    Xc = X[["cat"]]
    if enc == "count":
        t = ft.CountEncoder().fit(Xc)
    elif enc == "count_norm":
        t = ft.CountEncoder(normalize=True).fit(Xc)
    elif enc == "target":
        t = ft.TargetEncoder().fit(Xc, y)
    else:
        t = ft.TargetEncoder(target_type="multiclass").fit(Xc, np.asarray(y) + (X["b"] > 2))
    scorer = fl.compile(t, Xc)
    assert_array_equal(scorer.transform(Xc), t.transform(Xc))
    # unseen and missing categories follow the transformer's own policy
    Xu = pd.DataFrame({"cat": np.array(["red", "mauve", None, "teal"], dtype=object)})
    assert_array_equal(scorer.transform(Xu), t.transform(Xu))


def test_datetime_features_exact():
    X, _ = _frame()
    t = ft.DateTimeFeatures(features=["year", "month", "weekday", "hour", "dayofyear"],
                            cyclic=True).fit(X[["t"]])
    scorer = fl.compile(t, X[["t"]])
    assert_array_equal(scorer.transform(X[["t"]]), t.transform(X[["t"]]))


def _column_transformer():
    return ft.ColumnTransformer([
        ("num", [ft.SimpleImputer(), ft.Log1p(), ft.StandardScaler()], ["a"]),
        ("pw", ft.PowerTransformer(), ["b"]),
        ("win", ft.Winsorizer(), ["c"]),
        ("cnt", ft.CountEncoder(), ["cat"]),
        ("te", ft.TargetEncoder(), ["cat"]),
        ("oh", ft.OneHotEncoder(handle_unknown="ignore"), ["cat"]),
        ("dt", ft.DateTimeFeatures(features=["month", "hour"]), ["t"]),
    ])


def test_column_transformer_exact_and_bundle(tmp_path):
    X, y = _frame()
    ct = _column_transformer().fit(X, y)
    want = ct.transform(X)
    scorer = fl.compile(ct, X)
    assert_array_equal(scorer.transform(X), want)
    path = tmp_path / "ct.forge"
    scorer.save(path)
    loaded = fl.load(path)
    assert_array_equal(loaded.transform(X), want)


@pytest.mark.parametrize("model", ["logreg", "lightgbm"])
def test_final_model_predictions(model, tmp_path):
    from sklearn.pipeline import Pipeline as SkPipeline
    X, y = _frame(600, seed=3)
    X["t"] = X["t"].fillna(pd.Timestamp("2001-02-03 04:05:06"))  # the models refuse NaN
    if model == "logreg":
        from sklearn.linear_model import LogisticRegression
        est = LogisticRegression(max_iter=500)
    else:
        lgb = pytest.importorskip("lightgbm")
        est = lgb.LGBMClassifier(n_estimators=20, num_leaves=7, verbose=-1)
    pipe = SkPipeline([("prep", _column_transformer()), ("model", est)]).fit(X, y)
    scorer = fl.compile(pipe, X)
    want = pipe.predict_proba(X)
    assert_allclose(scorer.predict_proba(X), want, rtol=1e-12, atol=0)
    path = tmp_path / "m.forge"
    scorer.save(path)
    assert_allclose(fl.load(path).predict_proba(X), want, rtol=1e-12, atol=0)


def test_check_ops_raise_typed_error_naming_column():
    X, _ = _frame()
    Xn = _num_X(X).fillna(0.5)
    w = ft.Winsorizer().fit(Xn)
    scorer = fl.compile(w, Xn)
    bad = Xn.copy()
    bad.loc[3, "b"] = np.inf
    with pytest.raises(DataError, match="'b'"):
        w.transform(bad)
    with pytest.raises(DataError, match="'b'") as info:
        scorer.transform(bad)
    assert info.value.column == "b"


def test_bundle_rejects_misplaced_date_part():
    from forgeline.errors import BundleError
    from forgeline.plan import FeaturePlan
    X, _ = _frame()
    t = ft.DateTimeFeatures(features=["month"]).fit(X[["t"]])
    meta, arrays = fl.compile(t, X[["t"]]).features.to_parts()
    bad = dict(meta, groups=[dict(g) for g in meta["groups"]])
    for g in bad["groups"]:
        if g["ops"]:
            g["ops"] = list(reversed(g["ops"])) + [{"name": "date_part", "a": 1.0, "b": 0.0}]
    with pytest.raises(BundleError):
        FeaturePlan.from_parts(bad, arrays)
    bad2 = dict(meta, groups=[dict(g, width=3) if g["emit"] == "scalar" else g
                              for g in meta["groups"]])
    with pytest.raises(BundleError):
        FeaturePlan.from_parts(bad2, arrays)


@pytest.mark.parametrize("cls", ["OneHotEncoder", "OrdinalEncoder"])
def test_handle_unknown_error_raises_like_the_transformer(cls):
    X, _ = _frame()
    Xc = X[["cat"]].fillna("red")
    kw = {"sparse_output": False} if cls == "OneHotEncoder" else {}
    t = getattr(ft, cls)(handle_unknown="error", **kw).fit(Xc)
    scorer = fl.compile(t, Xc)
    assert_array_equal(scorer.transform(Xc), t.transform(Xc))
    for bad in ("mauve", None):
        Xb = pd.DataFrame({"cat": np.array(["red", bad], dtype=object)})
        with pytest.raises(DataError):
            t.transform(Xb)
        with pytest.raises(DataError, match="'cat'"):
            scorer.transform(Xb)


def test_single_row_path_raises_typed_error():
    X, _ = _frame()
    Xn = _num_X(X).fillna(0.5)
    scorer = fl.compile(ft.Winsorizer().fit(Xn), Xn)
    row = {"a": 1.0, "b": np.inf, "c": 2.0}
    with pytest.raises(DataError, match="'b'"):
        scorer.transform(row)


def test_bundle_rejects_misaligned_multiwidth_lookup():
    from forgeline.errors import BundleError
    from forgeline.plan import FeaturePlan
    X, y = _frame()
    t = ft.TargetEncoder(target_type="multiclass").fit(X[["cat"]], np.asarray(y) + (X["b"] > 2))
    meta, arrays = fl.compile(t, X[["cat"]]).features.to_parts()
    assert any(g["emit"] == "lookup" and g["width"] == 3 for g in meta["groups"])
    bad = dict(meta, groups=[dict(g, lookup=g["lookup"][:-1]) if g["emit"] == "lookup" else g
                             for g in meta["groups"]])
    with pytest.raises(BundleError, match="width"):
        FeaturePlan.from_parts(bad, arrays)
