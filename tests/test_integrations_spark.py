"""forgeline.integrations.spark on a local[2] Spark session: scoring, profiling, drift, fit."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import forgeline as fl
from forgeline import _demo
from forgeline.drift import Profile
from forgeline.drift import _sketch as dsketch

pytest.importorskip("pyspark")

pytestmark = [
    # pyspark 4.x warns about pandas 3 at every Arrow call; forgeline never goes through pandas.
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
]

from forgeline.integrations import spark as fls  # noqa: E402

INPUTS = [c for c in _demo.churn_table(4).column_names if c not in (_demo.TARGET,)]


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    # Workers must import the forgeline under test, whatever their working directory.
    root = str(Path(fl.__file__).resolve().parents[1])
    old = {k: os.environ.get(k) for k in ("PYSPARK_PYTHON", "PYTHONPATH")}
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (root, old["PYTHONPATH"]) if p)
    session = (SparkSession.builder.master("local[2]").appName("forgeline-tests")
               .config("spark.ui.enabled", "false")
               .config("spark.sql.shuffle.partitions", "2")
               .config("spark.sql.execution.arrow.maxRecordsPerBatch", "700")
               .config("spark.executorEnv.PYTHONPATH", os.environ["PYTHONPATH"])
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def tables():
    train = _demo.churn_table(3000, seed=5)
    current = _demo.churn_table(2500, seed=5, drifted=True)
    return train.drop_columns([_demo.TARGET]), current.drop_columns([_demo.TARGET])


@pytest.fixture(scope="module")
def frames(spark, tables):
    train, current = tables
    # Several partitions with several Arrow batches each, so merging really happens.
    return (spark.createDataFrame(train).repartition(3),
            spark.createDataFrame(current).repartition(3))


@pytest.fixture(scope="module")
def bundle(churn_scorer, tmp_path_factory):
    path = tmp_path_factory.mktemp("spark") / "churn.forge"
    churn_scorer.save(path)
    return path


# --------------------------------------------------------------------------- score
def test_score_equals_local_scoring(frames, bundle, churn_scorer):
    from pyspark.sql import types as T

    df, _ = frames
    out = fls.score(df, str(bundle))
    types = {f.name: f.dataType for f in out.schema.fields}
    assert out.columns == df.columns + ["prediction", "raw", "proba_0", "proba_1"]
    assert types["prediction"] == T.LongType()
    assert all(types[c] == T.DoubleType() for c in ("raw", "proba_0", "proba_1"))
    assert types["signup_date"] == {f.name: f.dataType for f in df.schema.fields}["signup_date"]
    got = out.toArrow()
    assert got.num_rows == 3000
    # Rows come back in partition order; score the very same rows locally.
    want = churn_scorer.score(got.select(churn_scorer.schema.names))
    for c in ("prediction", "raw", "proba_0", "proba_1"):
        np.testing.assert_array_equal(got.column(c).to_numpy(), want.column(c).to_numpy())


def test_score_scorer_object_subset_and_worker_cache(frames, churn_scorer):
    df, _ = frames
    out = fls.score(df, churn_scorer, output_cols=["proba_1"], passthrough=["customer_id"])
    assert out.columns == ["customer_id", "proba_1"]
    got = out.toArrow()
    ids = df.select("customer_id", *churn_scorer.schema.names).toArrow()
    want = dict(zip(ids.column("customer_id").to_pylist(),
                    churn_scorer.predict_proba(ids)[:, 1]))
    np.testing.assert_array_equal(got.column("proba_1").to_numpy(),
                                  [want[i] for i in got.column("customer_id").to_pylist()])

    # The workers that ran the job hold the loaded Scorer under the bundle's checksum.
    from pyspark.sql import types as T

    def report(batches):
        from forgeline.integrations import spark as mod
        for _ in batches:
            pass
        yield pa.RecordBatch.from_arrays([pa.array([",".join(mod._SCORERS)])], names=["keys"])

    keys = df.mapInArrow(report, T.StructType([T.StructField("keys", T.StringType())])).toArrow()
    assert any(k.startswith("scorer:") for k in ",".join(keys.column("keys").to_pylist()).split(","))


def test_score_bad_input(spark, frames, bundle, churn_scorer):
    df, _ = frames
    with pytest.raises(fl.SchemaError, match="region"):
        fls.score(df.drop("region"), bundle)
    with pytest.raises(fl.InputError, match="unknown output"):
        fls.score(df, bundle, output_cols=["proba_7"])
    with pytest.raises(fl.InputError, match="clash"):
        fls.score(df.withColumnRenamed("customer_id", "prediction"), bundle)
    with pytest.raises(fl.InputError, match="not in the DataFrame"):
        fls.score(df, bundle, passthrough=["nope"])
    with pytest.raises(fl.InputError, match="DataFrame"):
        fls.score(df.toArrow(), bundle)
    with pytest.raises(fl.InputError, match="not found"):
        fls.score(df, str(bundle) + ".missing")
    with pytest.raises(fl.InputError, match="Scorer"):
        fls.score(df, 42)
    with pytest.raises(fl.InputError, match="profile options"):
        fls.profile(df, bins=3)
    with pytest.raises(fl.InputError, match="not in the DataFrame"):
        fls.profile(df, columns=["nope"])
    with pytest.raises(fl.InputError, match="reference"):
        fls.compare({"a": 1}, df)


def test_udf_bundle_needs_allow_code(spark, udf_model, tmp_path):
    scorer, df = udf_model
    path = tmp_path / "u.forge"
    scorer.save(path)
    sdf = spark.createDataFrame(pa.Table.from_pandas(df, preserve_index=False)).repartition(2)
    with pytest.raises(fl.BundleError, match="allow_code=True"):
        fls.score(sdf, str(path))
    with pytest.raises(fl.InputError, match="allow_code must be"):
        fls.score(sdf, str(path), allow_code="yes")
    want = scorer.predict_proba(df)[:, 1]
    for source, kw in ((str(path), {"allow_code": True}), (scorer, {})):
        got = fls.score(sdf, source, output_cols=["proba_1"], passthrough=["a"], **kw).toArrow()
        order = {a: i for i, a in enumerate(df["a"])}
        idx = [order[a] for a in got.column("a").to_pylist()]
        np.testing.assert_array_equal(got.column("proba_1").to_numpy(), want[idx])
    report = fls.compare(str(path), sdf, allow_code=True)
    assert "a" in report.to_frame()["column"].tolist()


# --------------------------------------------------------------------------- profile
def test_profile_equals_fit_on_collected(frames, tables):
    df, _ = frames
    cols = ["tenure_months", "monthly_charges", "data_usage_gb", "region", "payment_method",
            "paperless_billing", "signup_date"]
    got = fls.profile(df, columns=cols, sketch_size=32)
    want = Profile.fit(df.select(*cols).toArrow(), sketch_size=32)
    assert got.names == want.names
    for name in cols:
        a, b = got.columns[name], want.columns[name]
        assert (a.kind, a.n_rows, a.n_missing) == (b.kind, b.n_rows, b.n_missing)
        if hasattr(a, "categories"):
            assert dict(zip(a.categories, a.counts.tolist())) == dict(zip(b.categories, b.counts.tolist()))
            continue
        assert (a.n_zero, a.n_inf, a.n_finite, a.min, a.max) == (b.n_zero, b.n_inf, b.n_finite, b.min, b.max)
        np.testing.assert_allclose(a.mean, b.mean, rtol=1e-12)
        np.testing.assert_allclose(a.variance, b.variance, rtol=1e-12)
        assert a.sample_complete and b.sample_complete
        np.testing.assert_array_equal(a.sample, b.sample)
        # Quantiles: the merged sketch's CDF is within its certified rank error of the truth,
        # and that certified bound stays small after the merges.
        err = got.rank_error(name)
        assert err <= 2 / 32
        s = b.sample
        xs = np.unique(np.concatenate([s[:: max(1, s.size // 200)], [s[0] - 1, s[-1] + 1]]))
        true_cdf = np.searchsorted(s, xs, "right") / s.size
        est = dsketch.cdf_mid(a.sketch, a.n_valid, xs)
        assert np.max(np.abs(est - true_cdf)) <= err + 1e-12


def test_compare_profile_and_scorer(frames, tables, churn_scorer):
    _, cur = frames
    _, cur_table = tables
    ref = churn_scorer.profile
    rep = fls.compare(ref, cur)
    want = fl.drift.compare(ref, Profile.fit(cur.select(*[c for c in ref.names if c in cur.columns])
                                             .toArrow()))
    assert rep.drifted == want.drifted
    a, b = rep.to_frame(), want.to_frame()
    assert list(a["column"]) == list(b["column"]) and list(a["test"]) == list(b["test"])

    # With the Scorer: its predictions are profiled too, as Scorer.drift does.
    rep2 = fls.compare(churn_scorer, cur)
    collected = cur.select(*churn_scorer.schema.names).toArrow()
    pred = churn_scorer.predict_proba(collected)[:, 1]
    want2 = fl.drift.compare(ref, Profile.fit(collected, prediction=pred))
    f2, w2 = rep2.to_frame(), want2.to_frame()
    assert rep2.drifted == want2.drifted and rep2.drifted
    assert "__prediction__" in set(f2["column"])
    assert list(f2["column"]) == list(w2["column"]) and list(f2["test"]) == list(w2["test"])
    exact = f2["test"].isin(["ks", "wasserstein", "chi2", "js", "missing_rate", "unseen"]).to_numpy()
    np.testing.assert_allclose(f2["statistic"].to_numpy(dtype=float)[exact],
                               w2["statistic"].to_numpy(dtype=float)[exact], rtol=1e-9)
    unseen = f2[(f2["column"] == "payment_method") & (f2["test"] == "unseen")]
    assert float(unseen["statistic"].iloc[0]) > 0  # "crypto" is counted, not dropped


# --------------------------------------------------------------------------- fit
def test_fit_equals_fit_on_collected(frames):
    from forgeline.transforms import MinMaxScaler, OneHotEncoder, SimpleImputer, StandardScaler

    df, _ = frames
    num = ["tenure_months", "monthly_charges", "data_usage_gb", "age"]
    cat = ["region", "plan", "payment_method"]
    collected = df.select(*num, *cat).toArrow()
    for est, cols in ((StandardScaler(), num), (MinMaxScaler(), num),
                      (SimpleImputer(strategy="mean"), num),
                      (OneHotEncoder(handle_unknown="ignore", sparse_output=False), cat)):
        got = fls.fit(df, est, columns=cols)
        want = type(est)(**est.get_params()).fit(collected.select(cols))
        assert not hasattr(est, "n_features_in_")  # the template is left unfitted
        np.testing.assert_allclose(got.transform(collected.select(cols)),
                                   want.transform(collected.select(cols)), rtol=1e-12, atol=0)


def test_fit_rejects_non_mergeable(frames):
    from sklearn.preprocessing import StandardScaler as SkStandardScaler

    from forgeline.transforms import PowerTransformer, TargetEncoder

    df, _ = frames
    for est in (PowerTransformer(), TargetEncoder(), SkStandardScaler()):
        with pytest.raises(fl.InputError, match="mergeable"):
            fls.fit(df, est, columns=["age"])
    with pytest.raises(fl.InputError, match="not in the DataFrame"):
        from forgeline.transforms import StandardScaler
        fls.fit(df, StandardScaler(), columns=["nope"])
