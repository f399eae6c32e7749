"""Fuzzing the input chokepoint: hostile frames into ``to_frame`` and ``Schema.validate``.

The property: whatever goes in, the outcome is either a typed ``forgeline.ForgelineError``
or a Frame that satisfies the documented contract (and, where the answer is known, the
right values). Any other exception, or a warning (pytest turns warnings into errors), is a
bug. Regressions found by the fuzzer are kept as plain tests at the bottom of the file.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from forgeline import ForgelineError, InputError, SchemaError
from forgeline._frame import (BOOLEAN, CATEGORICAL, DATETIME, KINDS, MISSING_CODE, NAT, NUMERIC,
                              UNSEEN_CODE, Frame, to_frame)
from forgeline.schema import ColumnSpec, Schema

# FORGELINE_FUZZ_EXAMPLES raises the count for a long fuzzing run (tools/fuzz.sh).
FUZZ = settings(max_examples=int(os.environ.get("FORGELINE_FUZZ_EXAMPLES", "60")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# --------------------------------------------------------------------------- strategies

HUGE = "x" * 1_000_000
NASTY_STRINGS = ["", " ", "nan", "NaN", "inf", "-inf", "1e999", "0x10", "\x00", "a\x00b", "é",
                 "💥", "1,5", " 2 ", "true", "None", "2020-01-01", "9999-12-31T23:59:59", HUGE]
NASTY_FLOATS = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e308, -1e308, 5e-324, 2.0 ** 53 + 1, 3.4e38]


def _float_arrays(n):
    return hnp.arrays(st.sampled_from([np.float16, np.float32, np.float64]), n,
                      elements=st.floats(allow_nan=True, allow_infinity=True, width=16))


def _column(n: int) -> st.SearchStrategy:
    dtypes = st.one_of(hnp.integer_dtypes(), hnp.unsigned_integer_dtypes(), hnp.boolean_dtypes(),
                       hnp.floating_dtypes(), hnp.datetime64_dtypes(max_period="Y", min_period="ns"))
    obj = st.one_of(st.none(), st.integers(min_value=-(2 ** 70), max_value=2 ** 70),
                    st.floats(), st.text(max_size=5), st.booleans(), st.binary(max_size=3),
                    st.sampled_from(NASTY_STRINGS), st.sampled_from(NASTY_FLOATS))
    return st.one_of(
        hnp.arrays(dtypes, n),
        _float_arrays(n),
        st.lists(st.sampled_from(NASTY_FLOATS), min_size=n, max_size=n).map(np.array),
        st.lists(st.sampled_from(NASTY_STRINGS), min_size=n, max_size=n).map(np.array),
        st.lists(st.text(max_size=8), min_size=n, max_size=n).map(np.array),
        st.lists(st.one_of(st.none(), st.text(max_size=4)), min_size=n, max_size=n)
        .map(lambda v: np.array(v, dtype=object)),
        st.lists(obj, min_size=n, max_size=n).map(lambda v: np.array(v + [None], dtype=object)[:-1]),
        st.lists(obj, min_size=n, max_size=n),                                 # plain lists
        st.lists(st.lists(st.integers(0, 3), max_size=3), min_size=n, max_size=n),  # ragged
        st.sampled_from([5, "abc", None, np.zeros((n, 2)), np.zeros((n, 2, 2))]),   # not 1-D
        st.integers(0, 3).map(lambda k: np.zeros(max(n + k - 1, 0))),          # wrong length
    )


@st.composite
def hostile_dicts(draw):
    n = draw(st.integers(0, 6))
    names = draw(st.lists(st.one_of(st.text(max_size=4), st.integers(-2, 2)), min_size=0,
                          max_size=5, unique_by=str))
    return {name: draw(_column(n)) for name in names}


@st.composite
def kinds_and_vocabs(draw, names):
    kinds = {}
    vocabs = {}
    for name in names:
        if draw(st.booleans()):
            kinds[name] = draw(st.sampled_from(list(KINDS) + ["weird"]))
        if draw(st.integers(0, 3)) == 0:
            vocabs[name] = draw(st.lists(st.one_of(st.text(max_size=3), st.integers(-3, 3)),
                                         max_size=4, unique_by=lambda v: (type(v), v)))
    return kinds or None, vocabs or None


def _to_container(data: dict, how: str):
    """The same columns as pandas / arrow / polars / dict; None if that library refuses them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if how == "pandas":
                return pd.DataFrame({k: pd.Series(v) if not np.isscalar(v) else v
                                     for k, v in data.items()})
            if how == "arrow":
                return pa.table({str(k): pa.array(v, from_pandas=True) for k, v in data.items()})
            if how == "polars":
                return pl.DataFrame({str(k): v for k, v in data.items()}, strict=False)
        except Exception:
            return None
    return data


# --------------------------------------------------------------------------- invariants

def check_frame(frame: Frame, kinds=None, vocabs=None) -> None:
    """Everything to_frame promises about its output."""
    assert isinstance(frame, Frame)
    assert frame.n_rows >= 0
    for col in frame.columns:
        v = col.values
        assert v.ndim == 1 and len(v) == frame.n_rows
        if kinds and col.name in kinds and kinds[col.name] in KINDS:
            assert col.kind == kinds[col.name]
        if col.valid is not None:
            assert col.valid.dtype == bool and col.valid.shape == v.shape
            assert not col.valid.all()
        if col.kind in (NUMERIC, BOOLEAN):
            assert v.dtype in (np.float32, np.float64)
            assert v.flags.c_contiguous
            nan = np.isnan(v)
            assert (col.valid is None) == (not nan.any())
            if col.valid is not None:
                np.testing.assert_array_equal(col.valid, ~nan)
            if col.kind == BOOLEAN:
                assert np.isin(v[~nan], [0.0, 1.0]).all()
        elif col.kind == CATEGORICAL:
            assert v.dtype == np.int32
            assert isinstance(col.vocabulary, tuple)
            if vocabs and col.name in vocabs:
                assert col.vocabulary == tuple(vocabs[col.name])
            assert ((v >= UNSEEN_CODE) & (v < len(col.vocabulary))).all()
            missing = v == MISSING_CODE
            assert (col.valid is None) == (not missing.any())
        elif col.kind == DATETIME:
            assert v.dtype == np.int64
            nat = v == NAT
            assert (col.valid is None) == (not nat.any())
        else:  # pragma: no cover
            raise AssertionError(f"unknown kind {col.kind}")


def check_values(data: dict, frame: Frame) -> None:
    """Where the right answer is obvious, check it: floats pass through, ints convert,
    strings decode back through the vocabulary."""
    for name, src in data.items():
        if not isinstance(src, np.ndarray) or src.ndim != 1:
            continue
        col = frame[str(name)]
        if src.dtype.kind in "iuf" and col.kind == NUMERIC:
            np.testing.assert_array_equal(col.values, src.astype(col.values.dtype))
        elif src.dtype.kind == "U" and col.kind == CATEGORICAL and col.vocabulary is not None:
            vocab = np.array(col.vocabulary + ("<unseen>", "<missing>"), dtype=object)
            decoded = vocab[np.where(col.values < 0, col.values + len(vocab) + 0, col.values)]
            np.testing.assert_array_equal(decoded.astype(str), src)
        elif src.dtype.kind == "M" and col.kind == DATETIME:
            ok = ~np.isnat(src)
            # the same instant, compared at the source's own resolution
            back = col.values[ok].astype("datetime64[ns]").astype(src.dtype)
            np.testing.assert_array_equal(back, src[ok])


def run_to_frame(data, **kw):
    try:
        frame = to_frame(data, **kw)
    except ForgelineError:
        return None
    check_frame(frame, kw.get("kinds"), kw.get("vocabularies"))
    return frame


def run_validate(schema: Schema, data, **kw):
    try:
        frame = schema.validate(data, **kw)
    except ForgelineError:
        return None
    check_frame(frame, schema.kinds, schema.vocabularies)
    assert frame.names == schema.names
    return frame


# --------------------------------------------------------------------------- properties

@FUZZ
@given(data=hostile_dicts(), how=st.sampled_from(["dict", "pandas", "arrow", "polars"]),
       extra=st.data())
def test_fuzz_to_frame(data, how, extra):
    container = _to_container(data, how)
    assume(container is not None)
    kinds, vocabs = extra.draw(kinds_and_vocabs([str(k) for k in data]))
    float_dtype = extra.draw(st.sampled_from([None, np.float32, np.float64]))
    frame = run_to_frame(container, float_dtype=float_dtype)
    if frame is not None and how == "dict" and float_dtype is None:
        check_values(data, frame)
    run_to_frame(container, kinds=kinds, vocabularies=vocabs, float_dtype=float_dtype)


@FUZZ
@given(ref=hostile_dicts(), cur=hostile_dicts(), how=st.sampled_from(["dict", "pandas", "arrow"]),
       same_names=st.booleans())
def test_fuzz_schema_validate(ref, cur, how, same_names):
    try:
        schema = Schema.infer(ref)
    except ForgelineError:
        return
    if same_names and ref:
        # the interesting case: same column names, hostile contents
        cur = {k: cur.get(k, v) if not cur else list(cur.values())[i % len(cur)]
               for i, (k, v) in enumerate(ref.items())}
    container = _to_container(cur, how)
    assume(container is not None)
    run_validate(schema, container)
    run_validate(schema, container, float_dtype=np.float32)
    # a schema must also survive its own dict round trip and still validate the same
    again = Schema.from_dict(schema.to_dict())
    assert again == schema


@FUZZ
@given(arr=hnp.arrays(st.one_of(hnp.floating_dtypes(), hnp.integer_dtypes(), hnp.boolean_dtypes(),
                                st.just(np.dtype(object))),
                      hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4)))
def test_fuzz_numpy_arrays_any_shape(arr):
    frame = run_to_frame(arr)
    if arr.ndim != 2:
        assert frame is None  # only 2-D arrays are frames
    elif frame is not None:
        assert frame.n_rows == arr.shape[0] and len(frame.names) == arr.shape[1]


@FUZZ
@given(n=st.integers(0, 5), value=st.sampled_from(NASTY_FLOATS),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_fuzz_nan_inf_everywhere(n, value, dtype):
    with np.errstate(over="ignore"):  # 1e308 -> inf in float32 is the point
        arr = np.full((n, 3), value, dtype=np.float64).astype(dtype)
    frame = to_frame(arr)
    check_frame(frame)
    out = frame.numeric_matrix(dtype=dtype)
    np.testing.assert_array_equal(out, arr)
    schema = Schema([ColumnSpec(f"x{j}", NUMERIC, np.dtype(dtype).name) for j in range(3)])
    np.testing.assert_array_equal(schema.validate(arr).numeric_matrix(dtype=dtype), arr)


# --------------------------------------------------------------------------- fixed cases

def test_zero_rows_one_column_and_empty():
    check_frame(to_frame({"a": np.array([], dtype=np.float64)}))
    assert to_frame(np.zeros((0, 3))).n_rows == 0
    assert to_frame(np.zeros((3, 0))).n_rows == 3
    assert to_frame({}).n_rows == 0
    one = to_frame(np.array([[1.5]]))
    assert one.names == ["x0"] and one.numeric_matrix()[0, 0] == 1.5
    schema = Schema.infer({"a": np.array(["x", "y"])})
    frame = schema.validate({"a": np.array([], dtype=str)})
    assert frame.n_rows == 0 and frame["a"].values.dtype == np.int32


def test_hundred_thousand_columns():
    n_cols = 100_000
    X = np.arange(2 * n_cols, dtype=np.float64).reshape(2, n_cols)
    frame = to_frame(X)
    assert len(frame.names) == n_cols
    assert frame.numeric_matrix() is X  # no copy on the fast path
    schema = Schema([ColumnSpec(f"x{j}", NUMERIC, "float64") for j in range(n_cols)])
    np.testing.assert_array_equal(schema.validate(X).numeric_matrix(), X)
    with pytest.raises(SchemaError, match="and 99999 more|missing"):
        schema.validate({"x0": X[:, 0]})


def test_huge_strings():
    big = np.array([HUGE, "y", HUGE], dtype=object)
    col = to_frame({"a": big})["a"]
    assert col.vocabulary == ("x" * 1_000_000, "y")
    np.testing.assert_array_equal(col.values, [0, 1, 0])
    with pytest.raises(SchemaError, match="non-numeric"):
        to_frame({"a": big}, kinds={"a": NUMERIC})


def test_mixed_object_columns_are_typed_errors():
    for values in ([1, "a", 2.5], [b"x", "y"], [{"a": 1}], [[1], [2, 3]], [True, 2], [1.5, "x", None]):
        arr = np.array(values + [None], dtype=object)[:-1]
        run_to_frame({"a": arr})
        run_to_frame(pd.DataFrame({"a": pd.Series(arr, dtype=object)}))


def test_three_d_and_other_shapes():
    for bad in (np.zeros((2, 3, 4)), np.zeros(5), np.array(3.0)):
        with pytest.raises(InputError, match="must be 2-D"):
            to_frame(bad)
    with pytest.raises(InputError, match="must be 1-D"):
        to_frame({"a": np.zeros((3, 2))})
    with pytest.raises(SchemaError, match="has 2 rows"):
        to_frame({"a": [1, 2, 3], "b": [1, 2]})


# --------------------------------------------------------------------------- regressions
# Found by the fuzzer and the probes above; each expects a typed error or the right answer.

def test_regression_float_dtype_junk_is_input_error():
    with pytest.raises(InputError, match="float_dtype"):
        to_frame({"a": np.zeros(2)}, float_dtype="junk")
    schema = Schema.infer({"a": np.zeros(2)})
    with pytest.raises(InputError, match="float_dtype"):
        schema.validate({"a": np.zeros(2)}, float_dtype="junk")
    with pytest.raises(InputError, match="float_dtype"):
        schema.validate({"a": np.zeros(2)}, float_dtype=np.int64)


@pytest.mark.parametrize("value, unit", [("9999-12-31", "D"), ("1000-01-01", "s"),
                                         ("2263-01-01", "us"), ("1600-01-01", "ms")])
def test_regression_numpy_datetime_out_of_ns_range(value, unit):
    arr = np.array([value, "2020-01-01"], dtype=f"datetime64[{unit}]")
    with pytest.raises(InputError, match="nanosecond range"):
        to_frame({"a": arr})
    with pytest.raises(InputError, match="nanosecond range"):
        to_frame(pd.DataFrame({"a": pd.Series(arr)}))


def test_regression_datetime_in_range_is_exact():
    arr = np.array(["1677-09-22", "2262-04-11", "NaT", "1969-12-31"], dtype="datetime64[D]")
    col = to_frame({"a": arr})["a"]
    days = arr.view(np.int64)[[0, 1, 3]]
    assert col.values[[0, 1, 3]].tolist() == [int(d) * 86_400 * 10**9 for d in days]
    assert col.values[2] == NAT and col.valid.tolist() == [True, True, False, True]
    months = np.array(["1677-10", "2262-04"], dtype="datetime64[M]")
    assert to_frame({"m": months})["m"].values.tolist() == \
        [int(np.datetime64("1677-10-01", "ns").view(np.int64)), int(np.datetime64("2262-04-01", "ns").view(np.int64))]
    years = np.array(["1678", "2262"], dtype="datetime64[Y]")
    assert to_frame({"y": years})["y"].values[1] == np.datetime64("2262-01-01", "ns").view(np.int64)
    with pytest.raises(InputError, match="nanosecond range"):
        to_frame({"m": np.array(["1677-09"], dtype="datetime64[M]")})
    with pytest.raises(InputError, match="nanosecond range"):
        to_frame({"y": np.array(["2263"], dtype="datetime64[Y]")})
    with pytest.raises(InputError, match="nanosecond range"):
        to_frame({"w": np.array([2**62], dtype="datetime64[2W]")})
    # sub-nanosecond units are always in range
    assert to_frame({"a": np.array([1500], dtype="datetime64[ps]")})["a"].values[0] == 1


@pytest.mark.parametrize("arr", [pa.array([2 ** 31 - 1], pa.date32()), pa.array([10 ** 15], pa.date64())])
def test_regression_arrow_dates_out_of_ns_range(arr):
    with pytest.raises(InputError, match="nanosecond range"):
        to_frame(pa.table({"a": arr}))


def test_regression_uint64_categories_beyond_int64():
    big = np.array([2 ** 64 - 1, 1], dtype=np.uint64)
    with pytest.raises(ForgelineError, match="int64 range"):
        to_frame({"a": big}, kinds={"a": CATEGORICAL})
    with pytest.raises(ForgelineError, match="int64 range"):
        to_frame({"a": big}, kinds={"a": CATEGORICAL}, vocabularies={"a": [1]})


def test_regression_vocabulary_int_beyond_int64():
    with pytest.raises(ForgelineError, match="int64 range"):
        to_frame({"a": np.array([1])}, kinds={"a": CATEGORICAL}, vocabularies={"a": [2 ** 70]})
    with pytest.raises(SchemaError, match="int64 range"):
        Schema.from_dict({"columns": [{"name": "a", "kind": "categorical",
                                       "vocabulary": [2 ** 70]}]})


@pytest.mark.parametrize("values", [[2 ** 100], ["\ud800"], ["a", "\udfff"]])
def test_regression_object_values_arrow_cannot_hold(values):
    arr = np.array(values, dtype=object)
    with pytest.raises(InputError):
        to_frame({"a": arr})
    with pytest.raises(InputError):
        to_frame(pd.DataFrame({"a": pd.Series(arr, dtype=object)}))


def test_regression_numpy_str_with_surrogates():
    with pytest.raises(InputError):
        to_frame({"a": np.array(["\ud800", "x"])})


def test_regression_string_view_parsed_as_numbers_and_datetimes():
    t = pa.table({"a": pa.array(["1.5", " ", None], pa.string_view()),
                  "d": pa.array(["2020-01-01", None, "2021-01-01"], pa.string_view())})
    frame = to_frame(t, kinds={"a": NUMERIC, "d": DATETIME})
    np.testing.assert_array_equal(frame["a"].values, [1.5, np.nan, np.nan])
    assert frame["d"].values[0] == np.datetime64("2020-01-01", "ns").view(np.int64)
    assert frame["d"].values[1] == NAT


@pytest.mark.parametrize("values", [np.array([0.0, np.inf]), np.array([-1], np.int8), np.array([2.0]),
                                    pa.array([0, 5]), pd.array([1, 3], dtype="Int64")])
def test_regression_boolean_kind_rejects_other_numbers(values):
    data = {"b": values} if not isinstance(values, pa.Array) else pa.table({"b": values})
    with pytest.raises(SchemaError, match="should be boolean"):
        to_frame(pd.DataFrame(data) if isinstance(values, pd.api.extensions.ExtensionArray) else data,
                 kinds={"b": BOOLEAN})
    schema = Schema([ColumnSpec("b", BOOLEAN)])
    with pytest.raises(SchemaError, match="non-boolean value"):
        schema.validate(data if not isinstance(values, pd.api.extensions.ExtensionArray)
                        else pd.DataFrame(data))
    ok = to_frame({"b": np.array([0, 1, 1], np.int64)}, kinds={"b": BOOLEAN})["b"]
    assert ok.kind == BOOLEAN and ok.values.tolist() == [0.0, 1.0, 1.0]


def test_regression_numpy_strings_with_nul_are_not_truncated():
    col = to_frame({"a": np.array(["a\x00b", "a\x00c", "a"])})["a"]
    assert col.vocabulary == ("a", "a\x00b", "a\x00c")
    assert col.values.tolist() == [1, 2, 0]
    col = to_frame({"a": np.array(["a\x00b", "a"])}, kinds={"a": CATEGORICAL},
                   vocabularies={"a": ["a"]})["a"]
    assert col.values.tolist() == [UNSEEN_CODE, 0]


def test_regression_polars_nul_in_column_name_is_input_error():
    df = pl.DataFrame({"a\x00": [1.0, 2.0], "b": [1, 2]})
    with pytest.raises(InputError, match="NUL"):
        to_frame(df)
    with pytest.raises(InputError, match="NUL"):
        Schema([ColumnSpec("b", NUMERIC)]).validate(df)
