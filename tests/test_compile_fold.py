"""Folding a linear model into the feature plan (forgeline._fold) and the fused native pass:
exact against sklearn and the unfolded plan, explain_plan, bundles, fast string input."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    KBinsDiscretizer,
    MaxAbsScaler,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    RobustScaler,
    StandardScaler,
)

import forgeline as fl
from forgeline._fold import FoldedLinear
from forgeline._native import core


def _data(n=600, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "a": rng.lognormal(size=n), "b": rng.normal(5, 2, n), "c": rng.normal(1e3, 1, n),
        "d": rng.uniform(-3, 3, n), "e": rng.exponential(size=n),
        "s": rng.choice(["x", "y", "z", "w"], n), "t": rng.choice(["p", "q", "r"], n),
    })
    df.loc[rng.random(n) < 0.1, "a"] = np.nan
    df.loc[rng.random(n) < 0.05, "s"] = None
    y = (np.nan_to_num(df["a"].to_numpy()) + (df["s"] == "x").to_numpy() + rng.normal(0, .5, n) > 1.2)
    return df, y.astype(int), rng.integers(0, 3, n)


def _ct(onehot_unknown="ignore"):
    return ColumnTransformer([
        ("log", make_pipeline(SimpleImputer(strategy="median"), FunctionTransformer(np.log1p),
                              StandardScaler()), ["a"]),
        ("mm", MinMaxScaler(), ["b"]),
        ("rob", RobustScaler(), ["c"]),
        ("mabs", MaxAbsScaler(), ["d"]),
        ("bins", KBinsDiscretizer(n_bins=5, encode="onehot-dense", quantile_method="averaged_inverted_cdf"), ["e"]),
        ("oh", OneHotEncoder(handle_unknown=onehot_unknown, sparse_output=False), ["s"]),
        ("ord", OrdinalEncoder(), ["t"]),
    ])


def _fit(est, df, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return make_pipeline(_ct(), est).fit(df, y)


@pytest.mark.parametrize("kind", ["binary", "multiclass", "ridge"])
def test_folded_matches_sklearn_and_unfolded(kind):
    df, y, y3 = _data()
    est = {"binary": LogisticRegression(max_iter=500), "multiclass": LogisticRegression(max_iter=500),
           "ridge": Ridge()}[kind]
    pipe = _fit(est, df, y3 if kind == "multiclass" else y)
    sc = fl.compile(pipe, df)  # verification scores the sample through the folded plan
    plain = fl.compile(pipe, df, fold=False)
    assert isinstance(sc.folded, FoldedLinear) and plain.folded is None
    assert sc.folded.folded_ops >= 6  # the four scalers' affine ops
    scale = plain.model.error_scale(plain.transform(df))
    shift = sc.folded.shift_magnitude
    scale = scale + (shift if np.ndim(scale) == 2 else shift[0])
    got, want = sc.predict_raw(df), plain.predict_raw(df)
    assert np.all(np.abs(got - want) <= 1e-12 * (np.abs(want) + scale))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dec = pipe.decision_function(df) if kind != "ridge" else pipe.predict(df)
    assert np.all(np.abs(got - dec) <= 1e-12 * (np.abs(dec) + scale))
    if kind != "ridge":
        np.testing.assert_allclose(sc.predict_proba(df), pipe.predict_proba(df), rtol=0, atol=1e-12)
        np.testing.assert_array_equal(sc.predict(df), pipe.predict(df))


def test_fused_result_independent_of_threads_and_input_container():
    df, y, _ = _data(3000, seed=1)
    pipe = _fit(LogisticRegression(max_iter=500), df, y)
    sc = fl.compile(pipe, df[:500])
    a = sc.predict_raw(df, n_threads=1)
    np.testing.assert_array_equal(a, sc.predict_raw(df, n_threads=2))
    np.testing.assert_array_equal(a, sc.predict_raw(df, n_threads=3))
    # the general input path (a pyarrow Table goes through forgeline._frame) gives the same bits
    np.testing.assert_array_equal(a, sc.predict_raw(pa.Table.from_pandas(df, preserve_index=False)))
    # object-dtype strings and Arrow strings split into several chunks
    obj = df.astype({"s": object, "t": object})
    np.testing.assert_array_equal(a, sc.predict_raw(obj))
    chunked = pd.concat([df[:1000], df[1000:]], ignore_index=True)
    np.testing.assert_array_equal(a, sc.predict_raw(chunked))


def test_fast_path_unseen_missing_and_sliced_strings():
    df, y, _ = _data()
    pipe = _fit(LogisticRegression(max_iter=500), df, y)
    sc = fl.compile(pipe, df)
    odd = df[:40].copy()
    odd.loc[odd.index[:5], "s"] = "never-seen"
    odd.loc[odd.index[5:8], "s"] = None
    sliced = odd.iloc[7:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = pipe.predict_proba(sliced)
    np.testing.assert_allclose(sc.predict_proba(sliced), want, rtol=0, atol=1e-12)


def test_string_vocabulary_codes():
    voc = core.StringVocabulary(["a", "bb", "", "ccc"])
    arr = pa.array(["bb", None, "", "zz", "a", "ccc", "a"], type=pa.large_string()).slice(1)
    validity, offsets, data = arr.buffers()
    off = np.frombuffer(offsets, np.int64)[arr.offset:arr.offset + len(arr) + 1]
    codes = voc.codes(off, np.frombuffer(data, np.uint8), np.frombuffer(validity, np.uint8),
                      arr.offset, len(arr))
    np.testing.assert_array_equal(codes, [-1, 2, -2, 0, 3, 0])
    with pytest.raises(ValueError, match="offsets"):
        voc.codes(np.array([0, 5], np.int64), np.zeros(2, np.uint8), None, 0, 1)


def test_nonfinite_feature_raises_like_the_model():
    df, y, _ = _data()
    num = df[["b", "d"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(num, y)
    sc = fl.compile(pipe, num)
    assert sc.folded is not None
    bad = num.copy()
    bad.loc[bad.index[3], "d"] = np.nan
    with pytest.raises(fl.DataError, match="NaN"):
        sc.predict_proba(bad)
    with pytest.raises(fl.DataError, match="NaN"):
        sc.predict_proba({"b": 1.0, "d": float("nan")})


def test_unknown_category_error_policy_in_fused_path():
    df, y, _ = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe = make_pipeline(ColumnTransformer([("oh", OneHotEncoder(handle_unknown="error"), ["t"]),
                                                ("n", StandardScaler(), ["b"])]),
                             LogisticRegression()).fit(df, y)
    sc = fl.compile(pipe, df)
    bad = df[:10].copy()
    bad.loc[bad.index[2], "t"] = "nope"
    with pytest.raises(fl.DataError, match="'t'"):
        sc.predict(bad)


def test_explain_plan_shows_before_and_after():
    df, y, _ = _data()
    sc = fl.compile(_fit(LogisticRegression(max_iter=500), df, y), df)
    text = sc.explain_plan()
    assert "before folding" in text and "after folding" in text
    before, after = text.split("after folding")
    assert "sub(" in before and "div(" in before and "onehot[" in before
    assert "table[" in after and "* w=" in after and "intercept=" in after
    assert "log1p" in after and "div(" not in after
    assert "not folded" in fl.compile(_fit(LogisticRegression(max_iter=500), df, y), df,
                                      fold=False).explain_plan()


def test_bundle_round_trips_the_folded_plan(tmp_path):
    df, y, _ = _data()
    sc = fl.compile(_fit(LogisticRegression(max_iter=500), df, y), df)
    sc.save(tmp_path / "m.forge")
    back = fl.load(tmp_path / "m.forge")
    assert back.folded is not None and back.explain_plan() == sc.explain_plan()
    np.testing.assert_array_equal(back.predict_proba(df), sc.predict_proba(df))
    np.testing.assert_array_equal(back.predict_proba(df.iloc[0].to_dict()),
                                  sc.predict_proba(df.iloc[0].to_dict()))


@pytest.mark.parametrize("damage", ["short", "long", "n_out", "kind", "bias", "outputs"])
def test_bundle_rejects_bad_folded_parts(damage):
    df, y, _ = _data()
    sc = fl.compile(_fit(LogisticRegression(max_iter=500), df, y), df)
    body, arrays = sc.to_parts()
    if damage == "short":
        arrays["folded.weights"] = arrays["folded.weights"][:-1]
    elif damage == "long":
        arrays["folded.weights"] = np.r_[arrays["folded.weights"], 0.0]
    elif damage == "n_out":
        body["folded"]["n_out"] = 2
    elif damage == "kind":
        body["folded"]["kind"] = "tree"
    elif damage == "bias":
        arrays["folded.bias"] = arrays["folded.bias"].astype(np.float32)
    else:
        body["folded"]["features"]["outputs"] = body["folded"]["features"]["outputs"][:-1]
    with pytest.raises(fl.BundleError):
        fl.Scorer.from_parts(body, arrays)


def test_single_row_dict_matches_batch():
    df, y, _ = _data()
    sc = fl.compile(_fit(LogisticRegression(max_iter=500), df, y), df)
    batch = sc.predict_proba(df[:20])
    for i in range(20):
        # the scalar link path uses the same IEEE operations as the batch path: same bits
        np.testing.assert_array_equal(sc.predict_proba(df.iloc[i].to_dict())[0], batch[i])
        np.testing.assert_array_equal(sc.predict_proba(df.iloc[i:i + 1])[0], batch[i])
        np.testing.assert_array_equal(sc.predict(df.iloc[i:i + 1]), sc.predict(df[i:i + 1].to_dict("list")))


def test_single_row_extreme_margin_and_unusual_values():
    df, y, _ = _data()
    sc = fl.compile(_fit(LogisticRegression(max_iter=500), df, y), df)
    row = df.iloc[0].to_dict()
    row["b"] = 1e300  # huge margin: the link's overflow branch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = sc.predict_proba(pd.DataFrame([row]).astype({"s": object, "t": object}))
    np.testing.assert_array_equal(sc.predict_proba(row), want)
    row = df.iloc[1].to_dict()
    row["s"] = None  # missing category: the general single-row loop
    np.testing.assert_array_equal(sc.predict_proba(row), sc.predict_proba({k: [v] for k, v in row.items()}))


@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_native_logistic_link_is_the_python_link(n_threads):
    """The fused pass's binary predict_proba (numpy's exp loop, per tile) has the bits of the
    model's Python link on the same margins, out to margins where exp overflows."""
    from forgeline._fold import native_logistic
    from forgeline.plan import exp_loop_ok

    df, y, _ = _data(n=3000, seed=3)
    pipe = _fit(LogisticRegression(max_iter=500), df, y)
    sc = fl.compile(pipe, df[:600])
    assert exp_loop_ok() and native_logistic(sc.model, sc.folded, "predict_proba")
    got = sc.predict_proba(df, n_threads=n_threads)
    want = sc.model.finish(sc.predict_raw(df, n_threads=n_threads)[:, None], "predict_proba")
    np.testing.assert_array_equal(got, want)
    # margins far beyond exp's range on both sides: p exactly 0 and 1, as numpy gives them
    sc.folded.bias[:] = 0.0
    for scale in (1e3, -1e3):
        sc.folded.weights = [w * scale for w in sc.folded.weights]
        sc.folded._native = None
        z = sc.predict_raw(df, n_threads=n_threads)
        assert np.abs(z).max() > 745
        with np.errstate(over="ignore"):
            want = sc.model.finish(z[:, None], "predict_proba")
        np.testing.assert_array_equal(sc.predict_proba(df, n_threads=n_threads), want)
        np.testing.assert_array_equal(sc.predict_proba(df.iloc[[5]]), want[[5]])


def test_native_logistic_link_needs_one_output():
    df, y, y3 = _data()
    sc = fl.compile(_fit(LogisticRegression(max_iter=500), df, y3), df)
    from forgeline._fold import native_logistic

    assert not native_logistic(sc.model, sc.folded, "predict_proba")
    with pytest.raises(ValueError, match="logistic link needs one output"):
        sc.folded.native().run_rows(np.zeros((1, len(sc.folded.features.inputs))), True)


def test_wide_frame_runs_in_column_phases():
    """More input columns than one phase of the fused pass reads (12): rows are summed over
    several phases, in group order, so the result is the unfolded plan's, for any thread count,
    and an unknown category in a late phase still raises."""
    rng = np.random.default_rng(7)
    n = 5000
    df = pd.DataFrame({f"x{i}": rng.lognormal(size=n) for i in range(30)})
    for i in range(6):
        df[f"s{i}"] = rng.choice(["a", "b", "c"], n)
    y = (df["x0"] + (df["s5"] == "a") > 1.5).astype(int)
    ct = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), FunctionTransformer(np.log1p),
                              StandardScaler()), [f"x{i}" for i in range(30)]),
        ("oh", OneHotEncoder(handle_unknown="error", sparse_output=False), [f"s{i}" for i in range(6)]),
    ])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe = make_pipeline(ct, LogisticRegression(max_iter=300)).fit(df, y)
    sc = fl.compile(pipe, df[:1000])
    plain = fl.compile(pipe, df[:1000], fold=False)
    got = sc.predict_raw(df, n_threads=1)
    for nt in (2, 3):
        np.testing.assert_array_equal(sc.predict_raw(df, n_threads=nt), got)
    want = plain.predict_raw(df)
    scale = plain.model.error_scale(plain.transform(df)) + sc.folded.shift_magnitude[0]
    assert np.all(np.abs(got - want) <= 1e-12 * (np.abs(want) + scale))
    bad = df.copy()
    bad.loc[4321, "s5"] = "zzz"
    with pytest.raises(fl.DataError, match="s5"):
        sc.predict_proba(bad)


def test_single_row_dict_of_one_element_columns_takes_the_row_path():
    """{"col": [v]} and {"col": np.array([v])} are one-row frames: the row path reads their
    scalars and gives the one-row DataFrame's answer, for numpy and Python containers, NaN,
    None, unseen categories and numpy string scalars; anything else keeps the general path."""
    df, y, _ = _data()
    sc = fl.compile(_fit(LogisticRegression(max_iter=500), df, y), df)
    for i in (0, 1, 7):
        row = df.iloc[i].to_dict()
        want = sc.predict_proba(df.iloc[i:i + 1])
        as_arrays = {k: np.array([v], dtype=object if isinstance(v, str) or v is None else None)
                     for k, v in row.items()}
        np.testing.assert_array_equal(sc.predict_proba(as_arrays), want)
        np.testing.assert_array_equal(sc.predict_proba({k: (v,) for k, v in row.items()}), want)
    for s_value in (None, "never-seen"):  # missing, and unseen (the encoder ignores it)
        odd = df.iloc[3].to_dict()
        odd.update(a=np.nan, s=s_value)
        want = sc.predict_proba(pd.DataFrame([odd]).astype({"s": object, "t": object}))
        arrays = {k: np.array([v]) if k in ("a", "b", "t") else [v] for k, v in odd.items()}
        assert isinstance(arrays["t"][0], np.str_)
        np.testing.assert_array_equal(sc.predict_proba(arrays), want)
    with pytest.raises(fl.ForgelineError):
        sc.predict_proba({**{k: [v] for k, v in odd.items()}, "a": [1.0, 2.0]})


@pytest.mark.parametrize("kind", ["binary", "multiclass"])
def test_fused_head_simd_copy_gives_the_baseline_bits(kind):
    """The fused head's AVX-512 copy (taken where the CPU has it) and its baseline copy do the
    same multiplies and adds (no FP contraction in that file): the same bits, also for
    probabilities, NaN inputs, unseen categories and several column phases."""
    rng = np.random.default_rng(11)
    n = 3000
    df = pd.DataFrame({f"x{i}": rng.lognormal(size=n) for i in range(20)})
    df.loc[rng.random(n) < 0.1, "x3"] = np.nan
    df["s"] = rng.choice(["a", "b", "c"], n)
    y = (df["x0"] + (df["s"] == "a") > 1.5).astype(int) + (kind == "multiclass") * (df["x1"] > 2)
    ct = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), FunctionTransformer(np.log1p),
                              StandardScaler()), [f"x{i}" for i in range(20)]),
        ("oh", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["s"]),
    ])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe = make_pipeline(ct, LogisticRegression(max_iter=300)).fit(df, y)
    sc = fl.compile(pipe, df[:500])
    X = df.copy()
    X.loc[::7, "s"] = "unseen"
    try:
        core._set_fused_simd(False)
        base = (sc.predict_raw(X), sc.predict_proba(X))
    finally:
        core._set_fused_simd(True)
    np.testing.assert_array_equal(sc.predict_raw(X), base[0])
    np.testing.assert_array_equal(sc.predict_proba(X), base[1])
