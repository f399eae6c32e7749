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
from ._native import core, resolve_threads
from .plan import SOURCE_CODES, SOURCE_FLOAT64

__all__ = ["plan_columns", "arrow_string_codes"]


def _vocabulary(cache: dict, name: str, vocab) -> object | None:
    v = cache.get(name)
    if v is None:
        if vocab is None or not all(type(x) is str for x in vocab):
            cache[name] = False
            return None
        v = cache[name] = core.StringVocabulary(list(vocab))
    return v or None


def _string_buffers(s):
    """(offsets, data, validity or None, bit offset, n) of each Arrow chunk of a pandas
    Arrow-backed string Series (or its array), or None for any other storage."""
    arr = getattr(s, "array", s)
    if type(arr).__name__ != "ArrowStringArray":
        return None
    return _arrow_string_parts(arr.__arrow_array__())


def _arrow_string_parts(values):
    """(offsets, data, validity or None, bit offset, n) of each chunk of an Arrow ``string``
    / ``large_string`` array or chunked array, or None for any other type."""
    import pyarrow as pa

    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
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
        parts.append((off, dat, valid, ch.offset, n))
    return parts


def _column_reader(X):
    """name -> the column's values: pandas' array itself where the frame offers it (building
    50 Series costs ~0.4 ms of a ~35 ms 500k-row call), else the Series."""
    get = getattr(X, "_get_column_array", None)
    if get is None:
        return X.__getitem__
    loc = X.columns.get_loc  # the caller checked the names are unique strings
    return lambda name: get(loc(name))


def plan_columns(X, schema, inputs, cache: dict, n_threads: int | None = None):
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
    out, kinds, strings = [], [], []
    column = _column_reader(X)
    for name, kind in inputs:
        s = column(name)
        if kind == _frame.NUMERIC:
            dt = s.dtype
            if not (isinstance(dt, np.dtype) and dt in (np.float64, np.float32)):
                return None
            v = s if isinstance(s, np.ndarray) else s.to_numpy()
            out.append(v if v.dtype == np.float64 else v.astype(np.float64))
            kinds.append(SOURCE_FLOAT64)
        elif kind == _frame.CATEGORICAL:
            voc = _vocabulary(cache, name, schema[name].vocabulary)
            parts = None if voc is None else _string_buffers(s)
            if parts is None:
                return None
            strings.append((len(out), voc, parts))
            out.append(None)
            kinds.append(SOURCE_CODES)
        else:
            return None
    if strings:
        # every chunk of every string column in one native call, columns in parallel
        jobs = [(i, voc, part) for i, voc, parts in strings for part in parts]
        codes = core._string_codes_many([j[1] for j in jobs], [j[2][0] for j in jobs],
                                        [j[2][1] for j in jobs], [j[2][2] for j in jobs],
                                        [j[2][3] for j in jobs], [j[2][4] for j in jobs],
                                        resolve_threads(n_threads))
        by_col: dict[int, list] = {}
        for (i, _, _), c in zip(jobs, codes):
            by_col.setdefault(i, []).append(c)
        for i, _, _ in strings:
            cs = by_col.get(i, [])
            out[i] = cs[0] if len(cs) == 1 else (np.concatenate(cs) if cs else np.zeros(0, np.int32))
    return out, np.asarray(kinds, dtype=np.int32), len(X)


# id(vocabulary) -> (vocabulary, StringVocabulary or False); the entry holds the vocabulary
# itself, so its id cannot be reused while it is cached.
_ARROW_VOCABS: dict[int, tuple] = {}
_ARROW_VOCABS_MAX = 256


def arrow_string_codes(values, vocab) -> np.ndarray | None:
    """Codes (int32) of an Arrow ``string`` / ``large_string`` array against ``vocab``.

    The same answer as :mod:`forgeline._frame`'s Arrow ``index_in`` coding (position of the
    first equal value by exact bytes, -2 unseen, -1 null), natively and with the GIL
    released. Returns None when ``vocab`` is not all ``str`` or ``values`` has another type,
    so the caller keeps its general path.

    Parameters
    ----------
    values : pyarrow.Array or pyarrow.ChunkedArray
        The column.
    vocab : tuple
        The fitted categories; kept by identity in a small cache, so a fitted transformer's
        vocabulary is hashed once.
    """
    hit = _ARROW_VOCABS.get(id(vocab))
    if hit is None or hit[0] is not vocab:
        ok = len(vocab) > 0 and all(type(v) is str for v in vocab)
        if len(_ARROW_VOCABS) >= _ARROW_VOCABS_MAX:
            _ARROW_VOCABS.clear()
        hit = _ARROW_VOCABS[id(vocab)] = (vocab, core.StringVocabulary(list(vocab)) if ok else False)
    voc = hit[1]
    if voc is False:
        return None
    chunks = _arrow_string_parts(values)
    if chunks is None:
        return None
    parts = [voc.codes(*c) for c in chunks if c[4]]
    if not parts:
        return np.empty(0, dtype=np.int32)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)
