"""The scoring fast path's input reader: the native program's columns straight from a pandas
DataFrame, without building a :class:`~forgeline._frame.Frame`.

It only accepts the common case it can read without any conversion: every schema column
present, numeric schema columns as numpy float64/float32, categorical ones as Arrow-backed
strings (pandas' default ``str`` dtype) against a vocabulary of strings. Strings become codes
natively (``core.StringVocabulary``: exact byte equality, as Arrow's ``index_in`` that
:mod:`forgeline._frame` uses; -2 unseen, -1 missing), and numeric columns are read in place
(no validity mask is built: the executor reads NaN as missing). Anything else returns None
and the caller takes the general path, which also produces every error message, so behaviour
is the same, only faster.
"""

from __future__ import annotations

import numpy as np

from . import _frame
from ._native import core
from .plan import SOURCE_CODES, SOURCE_FLOAT64

__all__ = ["plan_columns"]


def _vocabulary(cache: dict, name: str, vocab) -> object | None:
    v = cache.get(name)
    if v is None:
        if vocab is None or not all(type(x) is str for x in vocab):
            cache[name] = False
            return None
        v = cache[name] = core.StringVocabulary(list(vocab))
    return v or None


def _string_codes(voc, s) -> np.ndarray | None:
    import pyarrow as pa

    arr = getattr(s, "array", None)
    if type(arr).__name__ != "ArrowStringArray":
        return None
    chunked = arr.__arrow_array__()
    chunks = chunked.chunks if isinstance(chunked, pa.ChunkedArray) else [chunked]
    parts = []
    for ch in chunks:
        if ch.type == pa.large_string():
            off_dtype = np.int64
        elif ch.type == pa.string():
            off_dtype = np.int32
        else:
            return None
        n = len(ch)
        validity, offsets, data = ch.buffers()
        off = np.frombuffer(offsets, dtype=off_dtype)[ch.offset:ch.offset + n + 1] if n else \
            np.zeros(1, dtype=off_dtype)
        dat = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
        valid = np.frombuffer(validity, dtype=np.uint8) if (validity is not None and ch.null_count) \
            else None
        parts.append(voc.codes(off, dat, valid, ch.offset, n))
    if not parts:
        return np.zeros(0, dtype=np.int32)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def plan_columns(X, schema, inputs, cache: dict):
    """(columns, kinds, n_rows) for the native program over ``inputs``, or None when ``X`` is
    not the plain case described in the module docstring."""
    if not _frame._is_pandas_frame(X):
        return None
    cols = X.columns
    if not cols.is_unique or not all(type(c) is str for c in cols):
        return None
    used = {n for n, _ in inputs}
    for spec in schema:
        if spec.name not in cols or spec.name not in used:
            return None  # the general path names a missing column / checks unused ones
    out, kinds = [], []
    for name, kind in inputs:
        s = X[name]
        if kind == _frame.NUMERIC:
            dt = s.dtype
            if not (isinstance(dt, np.dtype) and dt in (np.float64, np.float32)):
                return None
            v = s.to_numpy()
            out.append(v if v.dtype == np.float64 else v.astype(np.float64))
            kinds.append(SOURCE_FLOAT64)
        elif kind == _frame.CATEGORICAL:
            voc = _vocabulary(cache, name, schema[name].vocabulary)
            if voc is None:
                return None
            codes = _string_codes(voc, s)
            if codes is None:
                return None
            out.append(codes)
            kinds.append(SOURCE_CODES)
        else:
            return None
    return out, np.asarray(kinds, dtype=np.int32), len(X)
