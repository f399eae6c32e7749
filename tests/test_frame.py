"""The input layer: every container kind × dtype, zero-copy where promised, and every error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import forgeline as fl
from forgeline import _frame
from forgeline._frame import BOOLEAN, CATEGORICAL, DATETIME, MISSING_CODE, NAT, NUMERIC, UNSEEN_CODE


def _reference_data():
    return {
        "f64": np.array([1.5, np.nan, -3.0, 0.0]),
        "f32": np.array([1.5, np.nan, -3.0, 0.0], dtype=np.float32),
        "i64": np.array([1, 2, 3, 4], dtype=np.int64),
        "u8": np.array([1, 2, 3, 255], dtype=np.uint8),
        "b": np.array([True, False, True, False]),
        "s": np.array(["b", "a", None, "b"], dtype=object),
        "t": np.array(["2020-01-01", "NaT", "2021-06-01T12:00", "1970-01-01"], dtype="datetime64[ns]"),
    }


EXPECTED_KINDS = {"f64": NUMERIC, "f32": NUMERIC, "i64": NUMERIC, "u8": NUMERIC, "b": BOOLEAN,
                  "s": CATEGORICAL, "t": DATETIME}


def _check_reference_frame(frame: _frame.Frame, f32_kept: bool = True):
    assert frame.n_rows == 4
    assert frame.names == list(EXPECTED_KINDS)
    for name, kind in EXPECTED_KINDS.items():
        assert frame[name].kind == kind, name
    np.testing.assert_array_equal(frame["f64"].values, [1.5, np.nan, -3.0, 0.0])
    assert frame["f64"].values.dtype == np.float64
    assert frame["f32"].values.dtype == (np.float32 if f32_kept else np.float64)
    np.testing.assert_array_equal(frame["i64"].values, [1, 2, 3, 4])
    np.testing.assert_array_equal(frame["u8"].values, [1, 2, 3, 255])
    np.testing.assert_array_equal(frame["b"].values, [1.0, 0.0, 1.0, 0.0])
    s = frame["s"]
    assert s.vocabulary == ("a", "b")
    np.testing.assert_array_equal(s.values, [1, 0, MISSING_CODE, 1])
    assert s.values.dtype == np.int32
    assert s.n_missing == 1
    t = frame["t"]
    assert t.values.dtype == np.int64
    assert t.values[1] == NAT and t.n_missing == 1
    assert t.values[0] == np.datetime64("2020-01-01", "ns").astype(np.int64)
    assert frame["f64"].n_missing == 1
    for c in frame.columns:
        assert c.values.flags.c_contiguous


def test_dict_of_numpy():
    _check_reference_frame(_frame.to_frame(_reference_data()))


def test_dict_of_lists():
    data = {k: list(v) if k != "t" else v for k, v in _reference_data().items()}
    frame = _frame.to_frame(data)
    assert frame["s"].vocabulary == ("a", "b")
    np.testing.assert_array_equal(frame["b"].values, [1.0, 0.0, 1.0, 0.0])


def test_pandas_numpy_dtypes():
    _check_reference_frame(_frame.to_frame(pd.DataFrame(_reference_data())))


def test_pandas_nullable_dtypes():
    df = pd.DataFrame({
        "i": pd.array([1, None, 3], dtype="Int64"),
        "u": pd.array([1, 2, None], dtype="UInt16"),
        "f": pd.array([0.5, None, 2.0], dtype="Float64"),
        "f32": pd.array([0.5, None, 2.0], dtype="Float32"),
        "b": pd.array([True, None, False], dtype="boolean"),
        "s": pd.array(["x", None, "y"], dtype="string"),
    })
    f = _frame.to_frame(df)
    np.testing.assert_array_equal(f["i"].values, [1, np.nan, 3])
    np.testing.assert_array_equal(f["u"].values, [1, 2, np.nan])
    np.testing.assert_array_equal(f["f"].values, [0.5, np.nan, 2.0])
    assert f["f32"].values.dtype == np.float32
    assert f["b"].kind == BOOLEAN
    np.testing.assert_array_equal(f["b"].values, [1.0, np.nan, 0.0])
    assert f["s"].kind == CATEGORICAL and f["s"].vocabulary == ("x", "y")
    np.testing.assert_array_equal(f["s"].values, [0, MISSING_CODE, 1])


def test_pandas_pyarrow_backed_dtypes():
    df = pd.DataFrame({
        "i": pd.array([1, None, 3], dtype="int64[pyarrow]"),
        "f": pd.array([0.5, None, 2.0], dtype="double[pyarrow]"),
        "s": pd.array(["x", None, "y"], dtype="string[pyarrow]"),
        "b": pd.array([True, None, False], dtype="bool[pyarrow]"),
        "t": pd.array(pd.to_datetime(["2020-01-01", None, "2020-01-02"]), dtype="timestamp[ns][pyarrow]"),
    })
    f = _frame.to_frame(df)
    np.testing.assert_array_equal(f["i"].values, [1, np.nan, 3])
    np.testing.assert_array_equal(f["f"].values, [0.5, np.nan, 2.0])
    np.testing.assert_array_equal(f["s"].values, [0, MISSING_CODE, 1])
    np.testing.assert_array_equal(f["b"].values, [1.0, np.nan, 0.0])
    assert f["t"].kind == DATETIME and f["t"].values[1] == NAT


def test_pandas_categorical_only_observed_sorted():
    s = pd.Categorical(["z", "a", None, "z"], categories=["z", "m", "a"])
    f = _frame.to_frame(pd.DataFrame({"c": s}))
    assert f["c"].vocabulary == ("a", "z")  # sorted, unobserved "m" left out (as sklearn does)
    np.testing.assert_array_equal(f["c"].values, [1, 0, MISSING_CODE, 1])


def test_pandas_tz_aware_datetime_is_utc():
    t = pd.Series(pd.to_datetime(["2020-01-01 01:00"]).tz_localize("Europe/Paris"))
    f = _frame.to_frame(pd.DataFrame({"t": t}))
    assert f["t"].values[0] == np.datetime64("2020-01-01T00:00", "ns").astype(np.int64)


def test_arrow_table_and_record_batch():
    data = _reference_data()
    table = pa.table({k: pa.array(v, from_pandas=True) for k, v in data.items()})
    _check_reference_frame(_frame.to_frame(table))
    _check_reference_frame(_frame.to_frame(table.to_batches()[0]))


def test_arrow_chunked_dictionary_and_large_string():
    chunked = pa.chunked_array([pa.array(["b", "a"]), pa.array([None, "c"])])
    dict_col = pa.array(["u", "v", "u", None]).dictionary_encode()
    large = pa.array(["p", "q", "p", "p"], type=pa.large_string())
    f = _frame.to_frame(pa.table({"c": chunked, "d": dict_col, "l": large}))
    assert f["c"].vocabulary == ("a", "b", "c")
    np.testing.assert_array_equal(f["c"].values, [1, 0, MISSING_CODE, 2])
    np.testing.assert_array_equal(f["d"].values, [0, 1, 0, MISSING_CODE])
    np.testing.assert_array_equal(f["l"].values, [0, 1, 0, 0])


def test_arrow_date32_is_datetime():
    f = _frame.to_frame(pa.table({"d": pa.array([0, 1, None], type=pa.date32())}))
    assert f["d"].kind == DATETIME
    assert f["d"].values[1] == 86_400 * 10**9 and f["d"].values[2] == NAT


def test_polars():
    data = _reference_data()
    df = pl.DataFrame({k: v for k, v in data.items() if k not in ("s", "t")})
    df = df.with_columns(pl.Series("s", ["b", "a", None, "b"]),
                         pl.Series("t", data["t"]))
    f = _frame.to_frame(df)
    assert f["s"].vocabulary == ("a", "b")
    np.testing.assert_array_equal(f["s"].values, [1, 0, MISSING_CODE, 1])
    assert f["t"].kind == DATETIME and f["t"].values[1] == NAT
    assert f["f32"].values.dtype == np.float32
    cat = pl.DataFrame({"c": pl.Series(["x", "y", "x"], dtype=pl.Categorical)})
    fc = _frame.to_frame(cat)
    assert fc["c"].vocabulary == ("x", "y")
    np.testing.assert_array_equal(fc["c"].values, [0, 1, 0])


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int32, np.int64, np.uint16, np.bool_])
@pytest.mark.parametrize("order", ["C", "F"])
def test_numpy_2d(dtype, order):
    X = np.asarray(np.arange(12).reshape(4, 3) % 2, dtype=dtype, order=order)
    f = _frame.to_frame(X)
    assert f.names == ["x0", "x1", "x2"]
    for j in range(3):
        np.testing.assert_array_equal(f[f"x{j}"].values, X[:, j].astype(np.float64))
        assert f[f"x{j}"].values.flags.c_contiguous
    expected = np.float32 if dtype == np.float32 else np.float64
    assert f["x0"].values.dtype == expected


def test_zero_copy_where_promised():
    X = np.asfortranarray(np.random.default_rng(0).random((100, 3)))
    assert np.shares_memory(_frame.to_frame(X)["x1"].values, X)
    v = np.random.default_rng(1).random(100)
    assert np.shares_memory(_frame.to_frame({"a": v})["a"].values, v)
    df = pd.DataFrame({"a": v})
    assert np.shares_memory(_frame.to_frame(df)["a"].values, df["a"].to_numpy())
    table = pa.table({"a": v})
    out = _frame.to_frame(table)["a"].values
    buf_addr = table.column(0).chunk(0).buffers()[1].address
    assert out.ctypes.data == buf_addr
    C = np.random.default_rng(2).random((10, 4))
    assert _frame.to_frame(C).numeric_matrix() is C


def test_float_dtype_option():
    f = _frame.to_frame({"a": np.array([1.0, 2.0])}, float_dtype=np.float32)
    assert f["a"].values.dtype == np.float32
    with pytest.raises(fl.InputError, match="float_dtype"):
        _frame.to_frame({"a": [1.0]}, float_dtype=np.int32)


def test_numeric_matrix_mixed():
    f = _frame.to_frame({"a": [1.0, 2.0, 3.0], "c": ["x", None, "y"]})
    M = f.numeric_matrix(["c", "a"])
    np.testing.assert_array_equal(M, [[0, 1], [np.nan, 2], [1, 3]])


def test_vocabulary_given_marks_unseen():
    f = _frame.to_frame({"c": ["a", "zz", None, "b"]}, vocabularies={"c": ("a", "b")})
    np.testing.assert_array_equal(f["c"].values, [0, UNSEEN_CODE, MISSING_CODE, 1])
    assert f["c"].n_unseen == 1 and f["c"].n_missing == 1


def test_integer_categories():
    f = _frame.to_frame({"c": np.array([3, 1, 3])}, kinds={"c": CATEGORICAL})
    assert f["c"].vocabulary == (1, 3)
    np.testing.assert_array_equal(f["c"].values, [1, 0, 1])
    g = _frame.to_frame({"c": np.array([3.0, 7.0, np.nan])}, kinds={"c": CATEGORICAL},
                        vocabularies={"c": (1, 3)})
    np.testing.assert_array_equal(g["c"].values, [1, UNSEEN_CODE, MISSING_CODE])


def test_numeric_strings_coerced_when_kind_known():
    f = _frame.to_frame({"a": ["1.5", " ", None, "-2"]}, kinds={"a": NUMERIC})
    np.testing.assert_array_equal(f["a"].values, [1.5, np.nan, np.nan, -2.0])


def test_columns_selection_and_order():
    f = _frame.to_frame({"a": [1.0], "b": [2.0], "c": [3.0]}, columns=["c", "a"])
    assert f.names == ["c", "a"]


def test_empty_inputs():
    f = _frame.to_frame(pd.DataFrame({"a": pd.Series([], dtype=float), "s": pd.Series([], dtype=object)}))
    assert f.n_rows == 0 and f["a"].values.shape == (0,)
    assert _frame.to_frame(np.empty((0, 3))).n_rows == 0
    assert _frame.to_frame({}).n_rows == 0


def test_all_null_column():
    f = _frame.to_frame(pa.table({"n": pa.nulls(3)}))
    assert f["n"].kind == NUMERIC and np.isnan(f["n"].values).all()
    g = _frame.to_frame(pa.table({"n": pa.nulls(3)}), kinds={"n": CATEGORICAL}, vocabularies={"n": ("a",)})
    np.testing.assert_array_equal(g["n"].values, [MISSING_CODE] * 3)


# ------------------------------------------------------------------------------- errors

def test_error_3d_array():
    with pytest.raises(fl.InputError, match="2-D"):
        _frame.to_frame(np.zeros((2, 2, 2)))


def test_error_1d_array():
    with pytest.raises(fl.InputError, match="2-D"):
        _frame.to_frame(np.zeros(3))


def test_error_ragged_dict_names_column():
    with pytest.raises(fl.SchemaError, match="'b' has 2 rows") as info:
        _frame.to_frame({"a": [1, 2, 3], "b": [1, 2]})
    assert info.value.column == "b"


def test_error_unsupported_container():
    with pytest.raises(fl.InputError, match="unsupported input type"):
        _frame.to_frame([[1, 2], [3, 4]])


def test_error_mixed_object_column_names_column():
    with pytest.raises(fl.InputError, match="'m'") as info:
        _frame.to_frame(pd.DataFrame({"m": pd.Series([1, "a", 2.5], dtype=object)}))
    assert info.value.column == "m"


def test_error_unsupported_dtype_names_column():
    with pytest.raises(fl.InputError, match="'z'"):
        _frame.to_frame({"z": np.array([1 + 2j, 3j])})
    with pytest.raises(fl.InputError, match="'td'"):
        _frame.to_frame(pa.table({"td": pa.array([1, 2], type=pa.duration("s"))}))


def test_error_non_numeric_string_names_column_and_value():
    with pytest.raises(fl.SchemaError, match="'a'.*'oops'") as info:
        _frame.to_frame({"a": ["1", "oops"]}, kinds={"a": NUMERIC})
    assert info.value.column == "a"


def test_error_duplicate_names():
    df = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(fl.InputError, match="duplicate"):
        _frame.to_frame(df)


def test_error_missing_selected_column():
    with pytest.raises(fl.SchemaError, match="'q'"):
        _frame.to_frame({"a": [1.0]}, columns=["a", "q"])


def test_error_structured_array():
    with pytest.raises(fl.InputError, match="structured"):
        _frame.to_frame(np.zeros((2, 2), dtype=[("a", "f8")]))


def test_error_kind_mismatch_datetime_vs_numeric():
    with pytest.raises(fl.SchemaError, match="should be datetime"):
        _frame.to_frame({"t": np.array([1.0])}, kinds={"t": DATETIME})
    with pytest.raises(fl.SchemaError, match="'t'"):
        _frame.to_frame({"t": np.array(["2020-01-01"], dtype="datetime64[ns]")}, kinds={"t": NUMERIC})


def test_error_non_integer_category():
    with pytest.raises(fl.SchemaError, match="non-integer"):
        _frame.to_frame({"c": [1.5, 2.0]}, kinds={"c": CATEGORICAL})


def test_errors_are_forgeline_errors():
    assert issubclass(fl.SchemaError, fl.ForgelineError)
    assert issubclass(fl.SchemaError, ValueError)
    assert issubclass(fl.NotFittedError, AttributeError)
    assert issubclass(fl.UnsupportedModelError, fl.CompileError)


def test_mapping_of_scalars_is_one_row():
    f = _frame.to_frame({"a": 1.5, "b": "x", "c": None, "d": np.float32(2.0)})
    assert f.n_rows == 1
    assert f["b"].vocabulary == ("x",)
    assert np.isnan(f["c"].values[0])


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.uint8, bool])
def test_wide_single_dtype_pandas_frame_equals_per_column_conversion(dtype):
    rng = np.random.default_rng(4)
    arr = (rng.normal(size=(7, 3000)) * 50).astype(dtype)
    if arr.dtype.kind == "f":
        arr[2, ::7] = np.nan
    df = pd.DataFrame(arr, columns=[f"c{j}" for j in range(arr.shape[1])])
    wide = _frame.to_frame(df)
    want = _frame.to_frame({c: df[c].to_numpy() for c in df.columns})
    mixed = _frame.to_frame(df.assign(s=["a"] * 7))  # two dtypes: the per-Series route
    assert wide.names == want.names == mixed.names[:-1]
    for c in want.names:
        assert wide[c].kind == want[c].kind == mixed[c].kind
        assert wide[c].values.dtype == want[c].values.dtype == mixed[c].values.dtype
        np.testing.assert_array_equal(wide[c].values, want[c].values)
        np.testing.assert_array_equal(mixed[c].values, want[c].values)
