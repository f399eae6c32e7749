"""Spark batch scoring: forgeline.integrations.spark.score vs mlflow.pyfunc.spark_udf over the
original scikit-learn pipeline (T2 schema), on a local Spark session.

Both jobs read the same Parquet file and write to Spark's ``noop`` sink, so the timing is
read + score, with nothing collected to the driver. rows/s in the note.

Usage: python bench/peers_spark.py [--quick]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _timing import row  # noqa: E402
from peers_pipeline import _target  # noqa: E402
from peers_transforms import make_data, sklearn_ct  # noqa: E402

HERE = Path(__file__).resolve().parent


def _session(cores: int):
    from pyspark.sql import SparkSession

    import forgeline

    # workers must import the forgeline this process runs (source tree or site-packages)
    root = str(Path(forgeline.__file__).resolve().parents[1])
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    s = (SparkSession.builder.master(f"local[{cores}]").appName("forgeline-bench")
         .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", str(cores))
         .config("spark.driver.memory", "2g").getOrCreate())
    s.sparkContext.setLogLevel("ERROR")
    return s


def _timed(fn) -> float:
    fn()  # warm-up: Python workers start, the model is shipped and loaded
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run(quick: bool) -> list[dict]:
    warnings.simplefilter("ignore")
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return [row("Spark scoring", "forgeline spark.score", None, "pip install pyspark")]
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    import forgeline as fl
    from forgeline.integrations import spark as fls

    n = 100_000 if quick else 1_000_000
    cores = 2
    train = make_data(20_000, seed=1)
    pipe = make_pipeline(sklearn_ct(), LogisticRegression(max_iter=300)).fit(train, _target(train))
    scorer = fl.compile(pipe, train.iloc[:5000])
    rows = []
    wl = f"T2 pipeline on Spark local[{cores}], Parquet -> noop ({n:,} rows)"
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        pq.write_table(pa.Table.from_pandas(make_data(n, seed=2), preserve_index=False),
                       d / "in.parquet", row_group_size=100_000)
        scorer.save(d / "t2.forge")
        spark = _session(cores)
        try:
            df = spark.read.parquet(str(d / "in.parquet"))
            cols = list(train.columns)

            def floor_job():
                # The same read and Arrow round trip through a Python worker, with no model:
                # the Spark cost both engines pay.
                df.mapInArrow(lambda it: (b.select([0]) for b in it),
                              df.select(cols[0]).schema).write.format("noop") \
                    .mode("overwrite").save()
            t_floor = _timed(floor_job)
            rows.append(row(wl, "Spark Arrow round trip, no model", t_floor,
                            f"{n / t_floor:,.0f} rows/s (the floor both engines pay)"))

            def fl_job():
                out = fls.score(df, str(d / "t2.forge"), output_cols=["proba_1"], passthrough=[])
                out.write.format("noop").mode("overwrite").save()
            t_fl = _timed(fl_job)
            rows.append(row(wl, "forgeline spark.score", t_fl, f"{n / t_fl:,.0f} rows/s"))

            try:
                import mlflow
                import mlflow.sklearn
                from pyspark.sql.functions import struct

                mlflow.set_tracking_uri(f"sqlite:///{d / 'mlflow.db'}")
                exp = mlflow.create_experiment("bench", artifact_location=(d / "art").as_uri())
                with mlflow.start_run(experiment_id=exp):
                    info = mlflow.sklearn.log_model(pipe, name="t2", pyfunc_predict_fn="predict_proba",
                                                    serialization_format="cloudpickle",
                                                    input_example=train.iloc[:3])
                udf = mlflow.pyfunc.spark_udf(spark, info.model_uri, result_type="array<double>",
                                              env_manager="local")

                def ml_job():
                    df.select(udf(struct(*cols)).alias("proba")).write.format("noop") \
                        .mode("overwrite").save()
                t_ml = _timed(ml_job)
                rows.append(row(wl, "mlflow spark_udf (sklearn)", t_ml, f"{n / t_ml:,.0f} rows/s"))
                # Same answers? Compare on a slice, collected.
                small = df.limit(2000)
                a = np.array(fls.score(small, scorer, output_cols=["proba_1"], passthrough=[])
                             .toArrow().column("proba_1").to_numpy())
                b = np.array([r[0][1] for r in small.select(udf(struct(*cols))).collect()])
                rows[-2]["note"] += ("; proba equal to sklearn's (rtol 1e-12)"
                                     if np.allclose(a, b, rtol=1e-12, atol=0) else "; DIFFERS")
            except Exception as exc:  # noqa: BLE001 - a peer failing is a row, not a crash
                rows.append(row(wl, "mlflow spark_udf (sklearn)", None,
                                f"failed: {type(exc).__name__}: {str(exc)[:120]}"))
        finally:
            spark.stop()
    return rows


if __name__ == "__main__":
    for r in run("--quick" in sys.argv):
        sec = "     n/a" if r["seconds"] is None else f"{r['seconds']:8.2f}s"
        print(f"{r['workload']:<60} {r['engine']:<28} {sec}  {r['note']}")
