"""The one input chokepoint: every public call turns its data into a :class:`Frame` here.

Accepted containers: a pandas DataFrame (numpy, nullable, pyarrow-backed and categorical
dtypes), a pyarrow Table or RecordBatch, a polars DataFrame, a 2-D numpy array (columns
named ``x0..xN``) or a mapping of 1-D arrays. Neither pandas nor polars is imported here;
they are recognised by their module name, so the core package works without them.

What comes out, per column:

* numeric: a contiguous float64 (or float32) array, NaN for missing; no copy when the source
  already has that layout;
* boolean: 0.0/1.0 floats, NaN for missing;
* categorical: int32 codes into a vocabulary (``MISSING_CODE`` for missing, ``UNSEEN_CODE``
  for a value outside a given vocabulary). Strings are encoded with Arrow compute, never a
  Python loop per value;
* datetime: int64 nanoseconds since the epoch (UTC), ``NAT`` for missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .errors import InputError, SchemaError

NUMERIC = "numeric"
CATEGORICAL = "categorical"
BOOLEAN = "boolean"
DATETIME = "datetime"
KINDS = (NUMERIC, CATEGORICAL, BOOLEAN, DATETIME)

MISSING_CODE = -1
UNSEEN_CODE = -2
NAT = np.iinfo(np.int64).min


@dataclass(frozen=True, eq=False)
class Column:
    """One converted column. ``valid`` is None when every value is present."""

    name: str
    kind: str
    values: np.ndarray
    vocabulary: tuple | None = None
    valid: np.ndarray | None = None
    source_dtype: str = ""

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @property
    def n_missing(self) -> int:
        return 0 if self.valid is None else int(self.valid.size - np.count_nonzero(self.valid))

    @property
    def n_unseen(self) -> int:
        if self.kind != CATEGORICAL:
            return 0
        return int(np.count_nonzero(self.values == UNSEEN_CODE))


class Frame:
    """Ordered columns of equal length, as produced by :func:`to_frame`."""

    def __init__(self, columns: Sequence[Column], n_rows: int, matrix: np.ndarray | None = None):
        self._columns = {c.name: c for c in columns}
        self.n_rows = int(n_rows)
        # The 2-D numeric source array, kept so row-major kernels can use it without a copy.
        self._matrix = matrix

    @property
    def names(self) -> list[str]:
        return list(self._columns)

    @property
    def columns(self) -> list[Column]:
        return list(self._columns.values())

    def __getitem__(self, name: str) -> Column:
        try:
            return self._columns[name]
        except KeyError:
            raise SchemaError(f"column {name!r} is missing", column=name,
                              problems={name: "missing"}) from None

    def __contains__(self, name: object) -> bool:
        return name in self._columns

    def __len__(self) -> int:
        return self.n_rows

    def __repr__(self) -> str:
        kinds = ", ".join(f"{c.name}:{c.kind}" for c in self.columns[:8])
        more = "" if len(self._columns) <= 8 else f", ... (+{len(self._columns) - 8})"
        return f"Frame({self.n_rows} rows; {kinds}{more})"

    def select(self, names: Sequence[str]) -> Frame:
        """A frame with only ``names``, in that order (raises SchemaError if any is missing)."""
        missing = [n for n in names if n not in self._columns]
        if missing:
            raise SchemaError(_missing_message(missing), column=missing[0],
                              problems={n: "missing" for n in missing})
        matrix = self._matrix if list(names) == self.names else None
        return Frame([self._columns[n] for n in names], self.n_rows, matrix)

    def numeric_matrix(self, names: Sequence[str] | None = None, dtype=np.float64) -> np.ndarray:
        """A C-contiguous ``(n_rows, len(names))`` array of numeric/boolean columns.

        Categorical codes are included as floats, with missing and unseen codes as NaN;
        datetime columns as float nanoseconds. No copy when the frame came from a 2-D
        array of that dtype and order.
        """
        names = self.names if names is None else list(names)
        dtype = np.dtype(dtype)
        if (self._matrix is not None and names == self.names and self._matrix.dtype == dtype
                and self._matrix.flags.c_contiguous):
            return self._matrix
        out = np.empty((self.n_rows, len(names)), dtype=dtype)
        for j, name in enumerate(names):
            col = self[name]
            if col.kind == CATEGORICAL:
                v = col.values.astype(dtype)
                v[col.values < 0] = np.nan
            elif col.kind == DATETIME:
                v = col.values.astype(dtype)
                if col.valid is not None:
                    v[~col.valid] = np.nan
            else:
                v = col.values
            out[:, j] = v
        return out


def _missing_message(missing: Sequence[str]) -> str:
    shown = ", ".join(repr(m) for m in missing[:10])
    more = f" (and {len(missing) - 10} more)" if len(missing) > 10 else ""
    noun = "column is" if len(missing) == 1 else "columns are"
    return f"required {noun} missing: {shown}{more}"


# --------------------------------------------------------------------------- containers

def _module_root(obj) -> str:
    return type(obj).__module__.split(".", 1)[0]


def _is_pandas_frame(obj) -> bool:
    return _module_root(obj) == "pandas" and hasattr(obj, "columns") and hasattr(obj, "iloc")


def _is_polars_frame(obj) -> bool:
    return _module_root(obj) == "polars" and hasattr(obj, "to_arrow") and hasattr(obj, "columns")


def _raw_columns(data) -> tuple[list[tuple[str, object]], np.ndarray | None]:
    """Split a container into (name, raw column) pairs; also the 2-D source, if any."""
    if isinstance(data, Frame):
        raise TypeError("internal: Frame passed to _raw_columns")
    if _is_pandas_frame(data):
        names = [str(c) for c in data.columns]
        _check_unique(names)
        dtypes = set(data.dtypes) if len(names) else set()
        if len(dtypes) == 1:
            dt = next(iter(dtypes))
            if isinstance(dt, np.dtype) and dt.kind in "fiub":
                # One plain numpy dtype: to_numpy() is a view of pandas' single block (no
                # copy for a frame built from one array), and its columns convert exactly as
                # the Series would. Per-column Series access costs 50-200 us each, which made
                # frames of 10^5 columns take tens of seconds.
                arr = data.to_numpy()
                return [(n, arr[:, j]) for j, n in enumerate(names)], None
        # items() skips iloc's indexer machinery (about 4x faster per column).
        return [(n, s) for n, (_, s) in zip(names, data.items())], None
    if isinstance(data, (pa.Table, pa.RecordBatch)):
        _check_unique(data.column_names)
        return [(n, data.column(j)) for j, n in enumerate(data.column_names)], None
    if _is_polars_frame(data):
        # polars' to_arrow() panics (a BaseException) on a NUL in a column name; refuse first
        bad = [c for c in data.columns if "\x00" in c]
        if bad:
            raise InputError(f"column name {bad[0]!r} contains a NUL character", column=bad[0])
        try:
            table = data.to_arrow()
        except Exception as exc:
            raise InputError(f"polars DataFrame cannot be converted to Arrow: {exc}") from exc
        _check_unique(table.column_names)
        return [(n, table.column(j)) for j, n in enumerate(table.column_names)], None
    if isinstance(data, np.ndarray):
        if data.ndim != 2:
            raise InputError(f"a numpy array input must be 2-D (rows x columns); got {data.ndim}-D "
                             f"with shape {data.shape}")
        if data.dtype.names is not None:
            raise InputError("structured numpy arrays are not supported; pass a dict or a DataFrame")
        names = [f"x{j}" for j in range(data.shape[1])]
        matrix = data if data.dtype.kind == "f" else None
        return [(n, data[:, j]) for j, n in enumerate(names)], matrix
    if isinstance(data, Mapping):
        items = [(str(k), v) for k, v in data.items()]
        if items and all(_is_scalar(v) for _, v in items):
            items = [(k, [v]) for k, v in items]  # one row given as a mapping of scalars
        _check_unique([k for k, _ in items])
        return items, None
    raise InputError(
        f"unsupported input type {type(data).__module__}.{type(data).__name__}; pass a pandas or "
        "polars DataFrame, a pyarrow Table/RecordBatch, a 2-D numpy array or a dict of 1-D arrays")


def _is_scalar(v) -> bool:
    return v is None or isinstance(v, (str, bytes, bool, int, float, np.generic)) or \
        type(v).__name__ in ("Timestamp", "NaTType", "NAType", "datetime", "date")


def _check_unique(names: Sequence[str]) -> None:
    seen: set[str] = set()
    dups = [n for n in names if n in seen or seen.add(n)]
    if dups:
        raise InputError(f"duplicate column names: {sorted(set(dups))!r}", column=dups[0])


# --------------------------------------------------------------------------- conversion

def to_frame(data, *, float_dtype=None, kinds: Mapping[str, str] | None = None,
             vocabularies: Mapping[str, Sequence] | None = None,
             columns: Sequence[str] | None = None) -> Frame:
    """Convert any supported container to a :class:`Frame`.

    Parameters
    ----------
    data
        pandas/polars DataFrame, pyarrow Table/RecordBatch, 2-D numpy array or dict of 1-D arrays.
    float_dtype : None, numpy.float32 or numpy.float64
        Dtype of numeric outputs. None keeps float32 sources as float32 and makes
        everything else float64.
    kinds : mapping, optional
        Expected kind per column (from a Schema); values are coerced to it or a
        :class:`~forgeline.SchemaError` names the column.
    vocabularies : mapping, optional
        Fixed vocabulary per categorical column; values outside it get ``UNSEEN_CODE``.
        Without it the vocabulary is the sorted distinct values.
    columns : sequence of str, optional
        Convert only these columns, in this order; a missing one raises SchemaError.
    """
    float_dtype = check_float_dtype(float_dtype)
    raw, matrix = _raw_columns(data)
    if columns is not None:
        by_name = dict(raw)
        missing = [c for c in columns if c not in by_name]
        if missing:
            raise SchemaError(_missing_message(missing), column=missing[0],
                              problems={n: "missing" for n in missing})
        if matrix is not None and list(columns) != [n for n, _ in raw]:
            matrix = None
        raw = [(c, by_name[c]) for c in columns]
    kinds = kinds or {}
    vocabularies = vocabularies or {}
    out: list[Column] = []
    n_rows: int | None = None
    first_name = None
    for name, values in raw:
        col = _convert(name, values, float_dtype, kinds.get(name), vocabularies.get(name))
        if n_rows is None:
            n_rows, first_name = len(col), name
        elif len(col) != n_rows:
            raise SchemaError(
                f"column {name!r} has {len(col)} rows but column {first_name!r} has {n_rows}",
                column=name, problems={name: f"length {len(col)} != {n_rows}"})
        out.append(col)
    if matrix is not None and (float_dtype is not None and matrix.dtype != float_dtype):
        matrix = None
    if matrix is not None and kinds and any(k != NUMERIC for k in kinds.values()):
        matrix = None
    if n_rows is None:
        n_rows = int(data.shape[0]) if isinstance(data, np.ndarray) else 0
    return Frame(out, n_rows, matrix)


def check_float_dtype(float_dtype) -> np.dtype | None:
    """Normalise the public ``float_dtype`` argument (None, float32 or float64)."""
    if float_dtype is None:
        return None
    try:
        dt = np.dtype(float_dtype)
    except (TypeError, ValueError) as exc:
        raise InputError(f"float_dtype must be float32 or float64, not {float_dtype!r}") from exc
    if dt not in (np.float32, np.float64):
        raise InputError(f"float_dtype must be float32 or float64, not {dt}")
    return dt


def _convert(name: str, values, float_dtype, kind: str | None, vocab) -> Column:
    col = _convert_any(name, values, float_dtype, kind, vocab)
    if col.kind == BOOLEAN:
        v = col.values
        bad = ~(np.isnan(v) | (v == 0) | (v == 1))
        if bad.any():
            raise SchemaError(f"column {name!r} should be boolean but holds {v[bad][0]!r}; only "
                              "0/1, True/False or missing are allowed", column=name,
                              problems={name: f"non-boolean value {v[bad][0]!r}"})
    return col


def _convert_any(name: str, values, float_dtype, kind: str | None, vocab) -> Column:
    if kind is not None and kind not in KINDS:
        raise InputError(f"unknown column kind {kind!r} for column {name!r}", column=name)
    if _module_root(values) == "pandas":
        fast = _from_pandas_series(name, values, float_dtype, kind, vocab)
        if fast is not None:
            return fast
        values = _pandas_to_arrow(name, values)
    if isinstance(values, np.ndarray):
        fast = _from_numpy(name, values, float_dtype, kind, vocab)
        if fast is not None:
            return fast
        values = _numpy_to_arrow(name, values)
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return _from_arrow(name, values, float_dtype, kind, vocab)
    # lists, tuples, scalars-in-a-list, ... : let numpy decide, then re-dispatch
    try:
        arr = np.asarray(values)
    except Exception as exc:  # ragged nested lists and the like
        raise InputError(f"column {name!r} cannot be read as a 1-D array: {exc}", column=name) from exc
    if arr.dtype.kind == "U" and isinstance(values, (list, tuple)):
        # numpy drops trailing NULs from str_ values ("\x00" -> ""); keep the Python strings
        arr = np.asarray(values, dtype=object)
    if arr.dtype == object:
        return _from_arrow(name, _numpy_to_arrow(name, arr), float_dtype, kind, vocab)
    return _convert_any(name, arr, float_dtype, kind, vocab)


def _float_target(src: np.dtype, float_dtype) -> np.dtype:
    if float_dtype is not None:
        return float_dtype
    return np.dtype(np.float32) if src == np.float32 else np.dtype(np.float64)


def _from_numpy(name, arr: np.ndarray, float_dtype, kind, vocab) -> Column | None:
    if arr.ndim != 1:
        raise InputError(f"column {name!r} must be 1-D, got shape {arr.shape}", column=name)
    k = arr.dtype.kind
    if k in "iuf" or k == "b":
        src_kind = BOOLEAN if k == "b" else NUMERIC
        if kind == CATEGORICAL:
            return None  # integer categories: go through Arrow's index_in
        if kind == DATETIME:
            raise _kind_error(name, DATETIME, str(arr.dtype))
        target = _float_target(arr.dtype, float_dtype)
        with np.errstate(over="ignore"):  # float64 beyond float32's range -> inf, as numpy casts
            vals = np.ascontiguousarray(arr, dtype=target)
        valid = None
        if k == "f":
            nan = np.isnan(vals)
            if nan.any():
                valid = ~nan
        return Column(name, kind or src_kind, vals, None, valid, str(arr.dtype))
    if k == "M":
        if kind not in (None, DATETIME):
            raise _kind_error(name, kind, str(arr.dtype))
        ns = _datetime64_to_ns(name, arr)
        nat = ns == NAT
        return Column(name, DATETIME, np.ascontiguousarray(ns), None,
                      ~nat if nat.any() else None, str(arr.dtype))
    if k in "OUS":
        return None
    raise InputError(f"column {name!r} has unsupported dtype {arr.dtype}", column=name)


_NS_PER_UNIT = {"W": 604_800 * 10**9, "D": 86_400 * 10**9, "h": 3_600 * 10**9, "m": 60 * 10**9,
                "s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
# 2262-04 is month 3507 after 1970-01 and 1677-10 month -3507: the whole months in ns range.
_NS_RANGE_MONTHS = 3507


def _datetime64_to_ns(name, arr: np.ndarray) -> np.ndarray:
    """int64 nanoseconds. numpy's cast wraps around silently outside 1677-09-21..2262-04-11,
    so the range is checked first, in the source unit, without any multiplication."""
    unit, count = np.datetime_data(arr.dtype)
    if unit in ("Y", "M"):
        bound, step = _NS_RANGE_MONTHS, count * (12 if unit == "Y" else 1)
    elif unit in _NS_PER_UNIT:
        bound, step = 2**63 - 1, _NS_PER_UNIT[unit] * count  # int64 min is NaT: symmetric
    else:  # ps, fs, as, generic: always inside the ns range
        return arr.astype("datetime64[ns]").view(np.int64)
    hi = bound // step
    v = arr.view(np.int64)
    bad = (v != NAT) & ((v < -hi) | (v > hi))
    if bad.any():
        raise InputError(f"column {name!r}: datetime {arr[bad][0]} is outside the nanosecond "
                         "range (1677-09-21 to 2262-04-11)", column=name)
    return arr.astype("datetime64[ns]").view(np.int64)


def _numpy_to_arrow(name, arr: np.ndarray) -> pa.Array:
    if arr.dtype.kind == "U" and arr.size and (np.strings.find(arr, "\x00") >= 0).any():
        # pyarrow cuts numpy str_ values at the first NUL ("a\x00b" -> "a"); objects are intact
        arr = arr.astype(object)
    try:
        return pa.array(arr, from_pandas=True)
    # Arrow raises plain OverflowError for ints beyond int64/uint64 and Unicode errors for
    # lone surrogates; ArrowInvalid/ArrowTypeError are ValueError/TypeError subclasses.
    except (pa.ArrowException, OverflowError, ValueError, TypeError) as exc:
        raise InputError(
            f"column {name!r} has unsupported values (dtype {arr.dtype}, e.g. mixed types): {exc}",
            column=name) from exc


def _from_pandas_series(name, s, float_dtype, kind, vocab) -> Column | None:
    dtype = s.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iufbM":
        return _from_numpy(name, s.to_numpy(), float_dtype, kind, vocab)
    dname = str(dtype)
    if dname == "category":
        return _from_pandas_categorical(name, s, float_dtype, kind, vocab)
    if dname in ("Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64",
                 "Float32", "Float64", "boolean") and kind != CATEGORICAL:
        target = _float_target(np.dtype(np.float32 if dname == "Float32" else np.float64), float_dtype)
        vals = s.to_numpy(dtype=target, na_value=np.nan)
        nan = np.isnan(vals)
        src_kind = BOOLEAN if dname == "boolean" else NUMERIC
        if kind == DATETIME:
            raise _kind_error(name, DATETIME, dname)
        return Column(name, kind or src_kind, np.ascontiguousarray(vals), None,
                      ~nan if nan.any() else None, dname)
    if dname.startswith("datetime64"):  # tz-aware
        return _from_numpy(name, s.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(),
                           float_dtype, kind, vocab)
    return None


def _from_pandas_categorical(name, s, float_dtype, kind, vocab) -> Column:
    cats = _numpy_to_arrow(name, np.asarray(s.cat.categories.to_numpy()))
    codes = np.asarray(s.cat.codes.to_numpy(), dtype=np.int32)
    if kind in (NUMERIC, BOOLEAN, DATETIME):
        # the categories themselves are the values (e.g. numbers stored as a category)
        dense = _from_arrow(name, cats, float_dtype, kind, None)
        fill = NAT if kind == DATETIME else np.nan
        vals = np.where(codes >= 0, dense.values[np.maximum(codes, 0)], fill)
        valid = codes >= 0
        return Column(name, kind, vals.astype(dense.values.dtype), None,
                      None if valid.all() else valid, "category")
    cats = _categories_as_arrow(name, cats)
    if vocab is None:
        vocab_arr = pc.array_sort_indices(cats)
        sorted_cats = cats.take(vocab_arr)
        # only observed categories enter a fitted vocabulary, as sklearn does
        observed = np.zeros(len(cats), dtype=bool)
        observed[codes[codes >= 0]] = True
        keep = observed[vocab_arr.to_numpy()]
        sorted_cats = sorted_cats.filter(pa.array(keep))
        vocab_t = tuple(sorted_cats.to_pylist())
    else:
        vocab_t = tuple(vocab)
    table = _index_in(name, cats, vocab_t)
    mapped = np.where(codes >= 0, table[np.maximum(codes, 0)], MISSING_CODE).astype(np.int32)
    valid = codes >= 0
    return Column(name, CATEGORICAL, mapped, vocab_t, None if valid.all() else valid, "category")


def _pandas_to_arrow(name, s) -> pa.ChunkedArray | pa.Array:
    try:
        arr = pa.array(s, from_pandas=True)
    except (pa.ArrowException, OverflowError, ValueError, TypeError) as exc:
        raise InputError(
            f"column {name!r} has unsupported dtype {s.dtype} (mixed or non-tabular values): {exc}",
            column=name) from exc
    return arr


def _kind_error(name: str, expected: str, got: str) -> SchemaError:
    return SchemaError(f"column {name!r} should be {expected} but has dtype {got}",
                       column=name, problems={name: f"expected {expected}, got {got}"})


def _categories_as_arrow(name, arr):
    t = arr.type
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return arr.cast(pa.string())
    if pa.types.is_string(t):
        return arr
    if pa.types.is_integer(t):
        return _to_int64_categories(name, arr)
    if pa.types.is_boolean(t):
        return arr.cast(pa.string())
    if pa.types.is_null(t):
        return arr.cast(pa.string())
    raise InputError(f"column {name!r}: categories of type {t} are not supported "
                     "(use strings or integers)", column=name)


def _to_int64_categories(name, arr):
    try:
        return arr.cast(pa.int64())
    except pa.ArrowInvalid as exc:
        raise SchemaError(f"column {name!r}: integer categories outside the int64 range",
                          column=name, problems={name: "category outside the int64 range"}) from exc


def _index_in(name, values, vocab: tuple) -> np.ndarray:
    """Positions of ``values`` in ``vocab`` as int32; UNSEEN_CODE where absent, MISSING_CODE for nulls."""
    if len(values) == 0:
        return np.empty(0, dtype=np.int32)
    if vocab and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in vocab):
        try:
            vset = pa.array(vocab, type=pa.int64())
        except (OverflowError, pa.ArrowInvalid) as exc:
            raise SchemaError(f"column {name!r}: vocabulary holds integers outside the int64 range",
                              column=name, problems={name: "vocabulary outside the int64 range"}) from exc
        if not pa.types.is_integer(values.type):
            if pa.types.is_floating(values.type):
                try:
                    values = pc.cast(values, pa.int64())
                except pa.ArrowInvalid as exc:
                    raise SchemaError(f"column {name!r} is categorical with integer categories "
                                      "but holds non-integer numbers", column=name,
                                      problems={name: "non-integer category"}) from exc
            else:
                vset = vset.cast(pa.string())
                values = values.cast(pa.string())
        else:
            values = _to_int64_categories(name, values)
    else:
        from ._fastinput import arrow_string_codes  # lazy: _fastinput imports this module

        codes = arrow_string_codes(values, vocab)
        if codes is not None:
            return codes
        vset = pa.array([str(v) for v in vocab], type=pa.string())
        if not pa.types.is_string(values.type):
            values = values.cast(pa.string())
    idx = pc.index_in(values, value_set=vset)
    codes = np.array(pc.fill_null(idx, UNSEEN_CODE).to_numpy(zero_copy_only=False), dtype=np.int32)
    if values.null_count:
        codes[np.asarray(values.is_null().to_numpy(zero_copy_only=False), dtype=bool)] = MISSING_CODE
    return codes


def _combine(arr) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        return arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    return arr


def _from_arrow(name, arr, float_dtype, kind, vocab) -> Column:
    arr = _combine(arr)
    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.dictionary_decode()
        t = arr.type
    src = str(t)
    is_num = pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
    is_str = pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)
    is_time = pa.types.is_timestamp(t) or pa.types.is_date(t)
    if pa.types.is_null(t):
        if kind == CATEGORICAL:
            arr = arr.cast(pa.string())
            is_str = True
        elif kind == DATETIME:
            arr, is_time = arr.cast(pa.timestamp("ns")), True
        else:
            arr, is_num = arr.cast(pa.float64()), True
    if is_num or pa.types.is_boolean(t):
        if kind == CATEGORICAL:
            return _categorical(name, arr, vocab, src)
        if kind == DATETIME:
            raise _kind_error(name, DATETIME, src)
        return _numeric(name, arr, float_dtype, kind or (BOOLEAN if pa.types.is_boolean(t) else NUMERIC), src)
    if is_str:
        if pa.types.is_string_view(t):
            arr = arr.cast(pa.large_string())  # utf8_trim_whitespace etc. have no view kernels
        if kind in (NUMERIC, BOOLEAN):
            return _numeric(name, _parse_numbers(name, arr, kind), float_dtype, kind, src)
        if kind == DATETIME:
            return _datetime(name, _parse_datetimes(name, arr), src)
        return _categorical(name, arr, vocab, src)
    if is_time:
        if kind not in (None, DATETIME):
            raise _kind_error(name, kind, src)
        return _datetime(name, arr, src)
    raise InputError(f"column {name!r} has unsupported type {src}", column=name)


def _numeric(name, arr, float_dtype, kind, src) -> Column:
    # (arrow's to_pandas_dtype() would import pandas; the core must work without it)
    target = _float_target(np.dtype(np.float32) if arr.type == pa.float32() else np.dtype(np.float64),
                           float_dtype)
    want = pa.float32() if target == np.float32 else pa.float64()
    if arr.type != want:
        try:
            arr = pc.cast(arr, want)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise InputError(f"column {name!r} of type {src} cannot be converted to {want}: {exc}",
                             column=name) from exc
    if arr.null_count:
        arr = pc.fill_null(arr, np.nan)
    # zero-copy for a single null-free chunk; Arrow buffers are read-only, which is fine
    vals = arr.to_numpy(zero_copy_only=False)
    nan = np.isnan(vals)
    return Column(name, kind, vals, None, ~nan if nan.any() else None, src)


def _parse_numbers(name, arr, kind) -> pa.Array:
    blank = pc.equal(pc.utf8_trim_whitespace(arr), "")
    arr = pc.if_else(blank, pa.scalar(None, arr.type), arr)
    try:
        return pc.cast(arr, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        bad = _first_unparseable(arr)
        raise SchemaError(
            f"column {name!r} should be {kind} but holds non-numeric strings, e.g. {bad!r}",
            column=name, problems={name: f"non-numeric value {bad!r}"}) from None


def _first_unparseable(arr) -> str:
    # Only runs to build an error message, after the vectorised cast has already failed.
    for v in arr.to_pylist():
        if v is None:
            continue
        try:
            float(v)
        except ValueError:
            return v
    return "?"


def _parse_datetimes(name, arr) -> pa.Array:
    try:
        return pc.cast(arr, pa.timestamp("ns"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise SchemaError(f"column {name!r} should be datetime but holds unparseable strings",
                          column=name, problems={name: "unparseable datetime"}) from exc


def _datetime(name, arr, src) -> Column:
    t = arr.type
    if pa.types.is_date(t) or (pa.types.is_timestamp(t) and (t.unit != "ns" or t.tz is not None)):
        try:
            arr = pc.cast(arr, pa.timestamp("ns"))
        except pa.ArrowInvalid as exc:
            raise InputError(f"column {name!r}: datetimes outside the nanosecond range "
                             "(1677-09-21 to 2262-04-11)", column=name) from exc
    ints = pc.fill_null(arr.cast(pa.int64()), NAT).to_numpy(zero_copy_only=False)
    valid = None
    if arr.null_count:
        valid = ~np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    return Column(name, DATETIME, np.ascontiguousarray(ints, dtype=np.int64), None, valid, src)


def _encode_sorted(arr: pa.Array) -> tuple[tuple, np.ndarray]:
    """The sorted distinct non-null values of ``arr`` and its int32 codes into them (MISSING_CODE
    for nulls): ``dictionary_encode``, then its small dictionary sorted and the codes renumbered."""
    enc = pc.dictionary_encode(arr)
    order = pc.array_sort_indices(enc.dictionary).to_numpy(zero_copy_only=False)
    rank = np.empty(order.size, dtype=np.int32)
    rank[order] = np.arange(order.size, dtype=np.int32)
    idx = enc.indices
    if order.size == 0:
        return (), np.full(len(arr), MISSING_CODE, dtype=np.int32)
    codes = rank[pc.fill_null(idx, 0).to_numpy(zero_copy_only=False)] if idx.null_count \
        else rank[idx.to_numpy(zero_copy_only=False)]
    if idx.null_count:
        codes[np.asarray(idx.is_null().to_numpy(zero_copy_only=False), dtype=bool)] = MISSING_CODE
    return tuple(enc.dictionary.take(pa.array(order)).to_pylist()), codes


def _categorical(name, arr, vocab, src) -> Column:
    arr = _categories_as_arrow(name, arr) if not (pa.types.is_floating(arr.type)
                                                  or pa.types.is_decimal(arr.type)) else arr
    if vocab is None:
        if pa.types.is_floating(arr.type) or pa.types.is_decimal(arr.type):
            try:
                arr = pc.cast(arr, pa.int64())
            except pa.ArrowInvalid as exc:
                raise SchemaError(f"column {name!r} is categorical but holds non-integer numbers",
                                  column=name, problems={name: "non-integer category"}) from exc
        if isinstance(arr, pa.Array):  # one hashing pass gives both vocabulary and codes
            vocab_t, codes = _encode_sorted(arr)
            valid = codes != MISSING_CODE if arr.null_count else None
            return Column(name, CATEGORICAL, codes, vocab_t, valid, src)
        uniq = pc.unique(arr.drop_null())
        uniq = uniq.take(pc.array_sort_indices(uniq))
        vocab_t = tuple(uniq.to_pylist())
    else:
        vocab_t = tuple(vocab)
    codes = _index_in(name, arr, vocab_t)
    valid = None
    if arr.null_count:
        valid = codes != MISSING_CODE
    return Column(name, CATEGORICAL, codes, vocab_t, valid, src)
