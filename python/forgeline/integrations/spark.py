"""forgeline on Spark: batch scoring, profiling, drift and mergeable transform fitting.

Everything runs through ``DataFrame.mapInArrow``: Spark hands each Python worker Arrow record
batches, forgeline scores or summarises them natively, and no row ever becomes a Python
object. pyspark is imported lazily (install the ``spark`` extra).

Shipping the model. The ``.forge`` bundle's bytes are broadcast once (Spark sends a
broadcast to each executor once and caches it there); the task closures carry only the
broadcast handle and the bundle's SHA-256. Each Python worker loads the bundle once and keeps
the Scorer in a module-level cache keyed by path and checksum, so later tasks on that worker
(``spark.python.worker.reuse``, on by default) reuse it. The Scorer itself is never pickled.

Threads. Spark already runs one task per core, so the native kernels default to one thread
per task here (``n_threads=1``); raise it when executors have spare cores.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import threading

import numpy as np
import pyarrow as pa

from ..errors import InputError, SchemaError

#: Rows a partition's profile is fitted on at once; larger partitions are fitted in
#: chunks of this many rows and merged, which bounds worker memory.
PROFILE_CHUNK_ROWS = 1_000_000

# Per Python worker: bundle key -> Scorer (see the module docstring).
_SCORERS: dict = {}
_SCORERS_LOCK = threading.Lock()
# Per driver: (SparkContext id, bundle key) -> Broadcast, so scoring the same bundle again
# reuses the broadcast instead of sending the bytes a second time.
_BROADCASTS: dict = {}


def _require_pyspark():
    try:
        import pyspark  # noqa: F401
        from pyspark.sql import DataFrame
    except ImportError as exc:  # pragma: no cover - pyspark is installed in CI
        raise ImportError("forgeline.integrations.spark needs pyspark: "
                          "pip install 'forgeline[spark]'") from exc
    return DataFrame


def _check_df(spark_df) -> None:
    DataFrame = _require_pyspark()
    if not isinstance(spark_df, DataFrame):
        raise InputError(f"expected a pyspark.sql.DataFrame, got {type(spark_df).__name__}")


# --------------------------------------------------------------------------- shipping
class _Shipped:
    """What a task closure carries instead of the Scorer: a key and a broadcast handle."""

    def __init__(self, key: str, broadcast, allow_code: bool = False):
        self.key = key
        self.broadcast = broadcast
        self.allow_code = allow_code

    def scorer(self):
        """The Scorer on this worker: loaded from the broadcast bytes once, then cached."""
        s = _SCORERS.get(self.key)
        if s is None:
            from ..scorer import load

            with _SCORERS_LOCK:
                s = _SCORERS.get(self.key)
                if s is None:
                    s = load(self.broadcast.value, allow_code=self.allow_code)
                    _SCORERS[self.key] = s
        return s


def _bundle_bytes(bundle, allow_code: bool = False) -> tuple[bytes, str, object, bool]:
    """(bundle bytes, cache key, driver-side Scorer, workers' allow_code) for a path or a
    Scorer.

    A Scorer object's udfs were already compiled in this process (the user built it, or
    loaded it with ``allow_code=True``), so its workers may compile them too. A path is
    checked on the driver with the caller's ``allow_code``. The flag is part of the cache
    key, so a worker never hands a Scorer loaded with code to a caller that refused code.
    """
    from ..scorer import Scorer, load

    if not isinstance(allow_code, bool):
        raise InputError(f"allow_code must be True or False, got {allow_code!r}")
    if isinstance(bundle, Scorer):
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.forge")
            bundle.save(path)
            with open(path, "rb") as fh:
                data = fh.read()
        return data, "scorer:code:" + hashlib.sha256(data).hexdigest(), bundle, True
    if isinstance(bundle, (str, os.PathLike)):
        path = os.fspath(bundle)
        if not os.path.isfile(path):
            raise InputError(f"bundle not found: {path!r}")
        with open(path, "rb") as fh:
            data = fh.read()
        # Loading on the driver checks the bundle before any task starts and gives the
        # output schema.
        scorer = load(data, allow_code=allow_code)
        code = "code" if allow_code else "nocode"
        key = f"{os.path.abspath(path)}:{code}:{hashlib.sha256(data).hexdigest()}"
        return data, key, scorer, allow_code
    raise InputError("bundle_path_or_scorer must be a .forge path or a forgeline.Scorer, "
                     f"got {type(bundle).__name__}")


def _ship(spark_df, bundle, allow_code: bool = False) -> tuple[_Shipped, object]:
    data, key, scorer, code = _bundle_bytes(bundle, allow_code)
    sc = spark_df.sparkSession.sparkContext
    slot = (id(sc), key)
    bc = _BROADCASTS.get(slot)
    if bc is None:
        bc = _BROADCASTS[slot] = sc.broadcast(data)
    return _Shipped(key, bc, code), scorer


# --------------------------------------------------------------------------- types
def _spark_type(arrow_type):
    from pyspark.sql import types as T

    if pa.types.is_float64(arrow_type):
        return T.DoubleType()
    if pa.types.is_float32(arrow_type):
        return T.FloatType()
    if pa.types.is_int64(arrow_type) or pa.types.is_uint32(arrow_type):
        return T.LongType()
    if pa.types.is_int32(arrow_type) or pa.types.is_uint16(arrow_type):
        return T.IntegerType()
    if pa.types.is_int16(arrow_type) or pa.types.is_uint8(arrow_type):
        return T.ShortType()
    if pa.types.is_int8(arrow_type):
        return T.ByteType()
    if pa.types.is_boolean(arrow_type):
        return T.BooleanType()
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return T.StringType()
    raise InputError(f"no Spark type for output of Arrow type {arrow_type}")  # pragma: no cover


def _label_arrow_type(classes) -> pa.DataType:
    arr = np.asarray(classes)
    if arr.dtype.kind in "US" or arr.dtype == object:
        return pa.string()
    if arr.dtype.kind == "b":
        return pa.bool_()
    if arr.dtype.kind in "iu":
        return pa.int64()
    return pa.float64()


def output_schema(scorer) -> pa.Schema:
    """Arrow schema of ``scorer.score(...)``: ``prediction`` (the label type for classifiers,
    float64 for regressors), ``raw`` (or ``raw_0..raw_k``) and ``proba_<class>`` (float64).

    Parameters
    ----------
    scorer : forgeline.Scorer

    Returns
    -------
    pyarrow.Schema
    """
    model = scorer.model
    if model is None:
        raise InputError("this Scorer has no model (transform-only); there is nothing to score")
    if model.classes_ is None and getattr(model, "n_outputs", 1) > 1:
        raise InputError("multi-output regressors cannot be scored on Spark yet "
                         "(score() has one prediction column)")
    fields = [pa.field("prediction", _label_arrow_type(model.classes_)
                       if model.classes_ is not None else pa.float64())]
    n_raw = int(getattr(model, "n_outputs", 1))
    if n_raw == 1:
        fields.append(pa.field("raw", pa.float64()))
    else:
        fields += [pa.field(f"raw_{k}", pa.float64()) for k in range(n_raw)]
    if model.classes_ is not None:
        fields += [pa.field(f"proba_{c}", pa.float64()) for c in model.classes_]
    return pa.schema(fields)


def _missing_columns(spark_df, names) -> list[str]:
    have = set(spark_df.columns)
    return [n for n in names if n not in have]


# --------------------------------------------------------------------------- score
def score(spark_df, bundle_path_or_scorer, output_cols=None, *, passthrough=None,
          n_threads: int | None = 1, allow_code: bool = False):
    """Score a Spark DataFrame with a forgeline model (lazily: returns a DataFrame).

    Parameters
    ----------
    spark_df : pyspark.sql.DataFrame
        Must hold the Scorer's input columns; extra columns are ignored by the model.
    bundle_path_or_scorer : str, os.PathLike or forgeline.Scorer
        A ``.forge`` file on the driver, or a Scorer (saved to bytes once). The bytes are
        broadcast once and loaded once per Python worker.
    output_cols : list of str, optional
        Which outputs of :meth:`forgeline.Scorer.score` to add (default all:
        ``prediction``, ``raw``/``raw_k``, ``proba_<class>``).
    passthrough : list of str, optional
        Input columns kept in the result, in this order (default: all of them; ``[]`` for
        outputs only).
    n_threads : int, optional
        Native threads per Spark task (default 1: Spark runs one task per core).
    allow_code : bool, default False
        Passed to :func:`forgeline.load` for a ``.forge`` path (on the driver and on every
        worker): a bundle with ``forgeline.udf`` functions is refused unless this is True.
        A Scorer object needs no flag: its udfs already run in this process.

    Returns
    -------
    pyspark.sql.DataFrame
        The passthrough columns with their Spark types, then the outputs: ``prediction``
        typed as the labels (LongType for integer classes, StringType for strings, DoubleType
        for regressors) and DoubleType margins and probabilities. Values equal
        ``scorer.score`` on the collected rows exactly.

    Raises
    ------
    forgeline.SchemaError
        When the DataFrame lacks an input column of the model.
    forgeline.InputError
        For an unknown output column, a passthrough column that is not in the DataFrame or a
        name clash between a passthrough column and an output.
    """
    _check_df(spark_df)
    shipped, scorer = _ship(spark_df, bundle_path_or_scorer, allow_code)
    missing = _missing_columns(spark_df, scorer.schema.names)
    if missing:
        raise SchemaError(f"the DataFrame lacks the model's input columns {missing}",
                          column=missing[0], problems={m: "missing" for m in missing})
    out_schema = output_schema(scorer)
    if output_cols is None:
        outputs = list(out_schema.names)
    else:
        outputs = [str(c) for c in output_cols]
        unknown = [c for c in outputs if c not in out_schema.names]
        if unknown or not outputs:
            raise InputError(f"unknown output columns {unknown}; the model has "
                             f"{list(out_schema.names)}")
    keep = list(spark_df.columns) if passthrough is None else [str(c) for c in passthrough]
    absent = _missing_columns(spark_df, keep)
    if absent:
        raise InputError(f"passthrough columns {absent} are not in the DataFrame")
    clash = sorted(set(keep) & set(outputs))
    if clash:
        raise InputError(f"input columns {clash} clash with output names; pass passthrough= "
                         "without them or rename them")

    from pyspark.sql import types as T

    by_name = {f.name: f for f in spark_df.schema.fields}
    fields = [by_name[c] for c in keep]
    fields += [T.StructField(c, _spark_type(out_schema.field(c).type), True) for c in outputs]
    arrow_out = pa.schema([out_schema.field(c) for c in outputs])
    model_cols = list(scorer.schema.names)

    def run(batches):
        s = shipped.scorer()
        for batch in batches:
            arrays = [batch.column(batch.schema.get_field_index(c)) for c in keep]
            if batch.num_rows == 0:
                arrays += [pa.array([], type=f.type) for f in arrow_out]
            else:
                table = s.score(batch.select(model_cols), n_threads=n_threads)
                arrays += [table.column(f.name).cast(f.type).combine_chunks() for f in arrow_out]
            yield pa.RecordBatch.from_arrays(arrays, names=keep + outputs)

    return spark_df.mapInArrow(run, T.StructType(fields))


# --------------------------------------------------------------------------- profile
def _profile_params(params: dict) -> dict:
    allowed = {"sample_size", "sketch_size", "n_bins", "max_categories", "seed"}
    bad = sorted(set(params) - allowed)
    if bad:
        raise InputError(f"unknown profile options {bad}; allowed: {sorted(allowed)}")
    return params


def _reference_params(ref) -> dict:
    return {"sample_size": ref.sample_size, "sketch_size": ref.sketch_size,
            "n_bins": ref.n_bins, "max_categories": ref.max_categories, "seed": ref.seed}


def _chunks(batches, columns, limit):
    """Concatenate a partition's batches into tables of at most ~limit rows."""
    buf, n = [], 0
    for b in batches:
        if b.num_rows == 0:
            continue
        buf.append(b.select(columns))
        n += b.num_rows
        if n >= limit:
            yield pa.Table.from_batches(buf)
            buf, n = [], 0
    if buf:
        yield pa.Table.from_batches(buf)


def _profile_job(spark_df, columns, params, shipped=None, n_threads=1):
    """Run the per-partition profile job; returns the driver-side merged Profile or None."""
    from pyspark.sql import types as T

    from ..drift import Profile

    limit = PROFILE_CHUNK_ROWS

    def run(batches):
        s = shipped.scorer() if shipped is not None else None
        parts = []
        for table in _chunks(batches, columns, limit):
            if s is None:
                parts.append(Profile.fit(table, n_threads=n_threads, **params))
            else:
                parts.append(_scored_profile(s, table, params, n_threads))
        acc = _tree_merge(parts)
        if acc is not None:
            yield pa.RecordBatch.from_arrays([pa.array([json.dumps(acc.to_dict())])],
                                             names=["profile"])

    schema = T.StructType([T.StructField("profile", T.StringType(), False)])
    rows = spark_df.select(*columns).mapInArrow(run, schema).toArrow()
    parts = [Profile.from_dict(json.loads(t)) for t in rows.column("profile").to_pylist()]
    return _tree_merge(parts)


def _tree_merge(parts: list):
    """Merge in a balanced tree: each sketch merge may widen the rank bounds, so a depth of
    log2(P) merges keeps the error lower than a left fold's P - 1."""
    if not parts:
        return None
    while len(parts) > 1:
        nxt = [parts[i].merge(parts[i + 1]) for i in range(0, len(parts) - 1, 2)]
        if len(parts) % 2:
            nxt.append(parts[-1])
        parts = nxt
    return parts[0]


def _scored_profile(scorer, table, params, n_threads):
    """The model's input columns plus the prediction column the reference profile tracks.

    The inputs are profiled as they arrive (not coded against the schema's vocabularies), so
    categories the model never saw are counted and the ``unseen`` test can see them.
    """
    from ..drift import Profile
    from ..scorer import _prediction_column

    pred = None
    if scorer.model is not None and scorer.profile_has_prediction():
        method = "predict_proba" if scorer.model.classes_ is not None else "predict"
        pred = _prediction_column(getattr(scorer, method)(table, n_threads=n_threads))
    return Profile.fit(table, prediction=pred, n_threads=n_threads, **params)


def profile(spark_df, columns=None, *, n_threads: int | None = 1, **params):
    """Fit a :class:`forgeline.drift.Profile` on a Spark DataFrame.

    Each partition fits a Profile on its rows (in chunks of :data:`PROFILE_CHUNK_ROWS`), sends
    it to the driver as a JSON dict, and the driver merges them with
    :meth:`Profile.merge`.

    Exactness, compared with ``Profile.fit`` on the collected rows: row, missing, zero and
    infinite counts, min, max and category counts are equal exactly; mean and variance are
    equal up to floating-point summation order (rtol 1e-12); the stored sample is exact
    while the column has at most ``sample_size`` values; quantiles come from the merged
    sketch, whose certified rank error (:meth:`Profile.rank_error`) bounds
    ``|F_hat(x) - F(x)|`` for every x. A partition's fresh sketch starts at
    ``1 / (2 * sketch_size)``; each merge level may widen it, and partitions are merged in a
    balanced tree (depth ``log2(partitions)``) to keep it small. The bound is certified, not
    assumed: read it per column with :meth:`Profile.rank_error`. Histogram counts on merged
    quantile edges are estimates (``hist_exact`` is False) when partitions disagree on edges.

    Parameters
    ----------
    spark_df : pyspark.sql.DataFrame
    columns : list of str, optional
        Columns to profile (default all).
    n_threads : int, optional
        Native threads per Spark task (default 1).
    **params
        ``sample_size``, ``sketch_size``, ``n_bins``, ``max_categories``, ``seed`` as in
        :meth:`Profile.fit`.

    Returns
    -------
    forgeline.drift.Profile

    Raises
    ------
    forgeline.InputError
        For a column not in the DataFrame, unknown options, or an empty DataFrame.
    """
    _check_df(spark_df)
    cols = list(spark_df.columns) if columns is None else [str(c) for c in columns]
    absent = _missing_columns(spark_df, cols)
    if absent or not cols:
        raise InputError(f"columns {absent} are not in the DataFrame" if absent
                         else "no columns to profile")
    merged = _profile_job(spark_df, cols, _profile_params(dict(params)), n_threads=n_threads)
    if merged is None:
        raise InputError("cannot profile an empty DataFrame")
    return merged


def compare(reference, spark_df, *, n_threads: int | None = 1, allow_code: bool = False,
            **options):
    """Drift of a Spark DataFrame against a reference: :func:`forgeline.drift.compare` on a
    profile built with :func:`profile`.

    Parameters
    ----------
    reference : forgeline.drift.Profile, forgeline.Scorer or str
        A reference Profile; or a Scorer / ``.forge`` path, whose bundled profile is the
        reference and whose predictions on the DataFrame are profiled too (the
        ``__prediction__`` column, as :meth:`forgeline.Scorer.drift` does).
    spark_df : pyspark.sql.DataFrame
        Current data. Columns the reference does not know are ignored.
    n_threads : int, optional
        Native threads per Spark task (default 1).
    allow_code : bool, default False
        Passed to :func:`forgeline.load` for a ``.forge`` path (on the driver and on every
        worker): a bundle with ``forgeline.udf`` functions is refused unless this is True.
        A Scorer object needs no flag: its udfs already run in this process.
    **options
        Passed to :func:`forgeline.drift.compare` (``tests``, ``correction``,
        ``thresholds``, ``drift_share``...).

    Returns
    -------
    forgeline.drift.DriftReport
        Tests against the merged profile: exact where the profile is (small columns, counts),
        sketch-based KS within the stated rank-error bound otherwise.
    """
    from ..drift import Profile
    from ..drift import compare as _compare
    from ..errors import DataError
    from ..scorer import Scorer

    _check_df(spark_df)
    shipped = None
    if isinstance(reference, Profile):
        ref = reference
        cols = [c for c in ref.names if c in set(spark_df.columns)]
    elif isinstance(reference, (Scorer, str, os.PathLike)):
        shipped, scorer = _ship(spark_df, reference, allow_code)
        ref = scorer.profile
        if ref is None:
            raise DataError("this Scorer has no reference profile (compile it with a sample)")
        missing = _missing_columns(spark_df, scorer.schema.names)
        if missing:
            raise SchemaError(f"the DataFrame lacks the model's input columns {missing}",
                              column=missing[0], problems={m: "missing" for m in missing})
        cols = list(scorer.schema.names)
    else:
        raise InputError("reference must be a forgeline Profile, Scorer or .forge path, "
                         f"got {type(reference).__name__}")
    if not cols:
        raise InputError("the DataFrame has none of the reference's columns")
    current = _profile_job(spark_df, cols, _reference_params(ref), shipped, n_threads)
    if current is None:
        raise InputError("cannot compare an empty DataFrame")
    return _compare(ref, current, **options)


# --------------------------------------------------------------------------- fit
def fit(spark_df, transformer, columns=None):
    """Fit a forgeline transformer on a Spark DataFrame by mergeable fitting.

    Each partition fits a fresh copy of ``transformer`` with ``partial_fit`` on its Arrow
    batches; the driver merges the partition states with ``merge``. The result equals
    ``transformer.fit`` on the collected rows for transformers whose state merges exactly
    (scalers' moments and ranges up to floating-point summation order, encoders'
    categories and counts, mean/most-frequent imputation); quantile-based ones (median
    imputation, RobustScaler, quantile bins) follow their sketch's documented bound.

    Parameters
    ----------
    spark_df : pyspark.sql.DataFrame
    transformer : forgeline transformer
        Any forgeline transformer with ``partial_fit`` and ``merge`` (not modified).
    columns : list of str, optional
        Columns to fit on, in this order (default all).

    Returns
    -------
    transformer
        A new fitted instance with the same parameters.

    Raises
    ------
    forgeline.InputError
        For a transformer without mergeable fitting (e.g. PowerTransformer, TargetEncoder,
        or a scikit-learn transformer), an unknown column, or an empty DataFrame.
    """
    _check_df(spark_df)
    if not _mergeable(transformer):
        raise InputError(f"{type(transformer).__name__} has no mergeable fitting "
                         "(partial_fit + merge); fit it on collected data instead")
    cols = list(spark_df.columns) if columns is None else [str(c) for c in columns]
    absent = _missing_columns(spark_df, cols)
    if absent or not cols:
        raise InputError(f"columns {absent} are not in the DataFrame" if absent
                         else "no columns to fit on")
    params = transformer.get_params(deep=False)
    cls = type(transformer)

    def run(batches):
        est = None
        for b in batches:
            if b.num_rows == 0:
                continue
            if est is None:
                est = cls(**params)
            est.partial_fit(pa.Table.from_batches([b.select(cols)]))
        if est is not None:
            # Spark's own channel between worker and driver; the fitted transformer never
            # leaves this job (nothing pickled is stored).
            yield pa.RecordBatch.from_arrays([pa.array([pickle.dumps(est)], type=pa.binary())],
                                             names=["state"])

    from pyspark.sql import types as T

    schema = T.StructType([T.StructField("state", T.BinaryType(), False)])
    parts = spark_df.select(*cols).mapInArrow(run, schema).toArrow().column("state").to_pylist()
    if not parts:
        raise InputError("cannot fit on an empty DataFrame")
    merged = pickle.loads(parts[0])
    for blob in parts[1:]:
        merged.merge(pickle.loads(blob))
    return merged


def _mergeable(transformer) -> bool:
    if not type(transformer).__module__.startswith("forgeline."):
        return False
    if type(transformer).__name__ == "TargetEncoder":
        return False
    try:
        return callable(getattr(transformer, "partial_fit")) and callable(getattr(transformer, "merge"))
    except AttributeError:
        return False
