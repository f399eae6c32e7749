"""atheris (libFuzzer) harness for the input chokepoint: ``to_frame`` and ``Schema.validate``.

Run: ``tools/fuzz.sh`` or ``python fuzz/fuzz_frame.py -runs=100000``. The fuzzer's bytes are
decoded into a hostile frame: 0-6 rows, 0-5 columns, each column numeric / NaN-inf / big
ints / strings (NUL, surrogates, huge) / mixed objects / datetimes of any unit / ragged or
n-D values, in a dict, pandas, pyarrow or polars container, with random schema kinds and
vocabularies. The outcome must be a ``ForgelineError`` or a frame that keeps the contract;
anything else is a crash. Not collected by pytest.
"""

from __future__ import annotations

import os
import sys
import warnings

import atheris
import numpy as np

import _srcpath  # noqa: E402,F401  (the in-place build when there is one)

import pandas as pd  # noqa: E402
import polars as pl  # noqa: E402
import pyarrow as pa  # noqa: E402

with atheris.instrument_imports(include=["forgeline._frame", "forgeline.schema"]):
    from forgeline import _frame  # noqa: E402
    from forgeline.schema import ColumnSpec, Schema  # noqa: E402

from forgeline.errors import ForgelineError  # noqa: E402

# after the instrumented imports: _checks imports forgeline._frame too
from _checks import check_frame as _check  # noqa: E402

KINDS = list(_frame.KINDS) + ["weird"]
DT_UNITS = ["Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns", "ps", "as"]
SPECIAL = [np.nan, np.inf, -np.inf, -0.0, 1e308, 5e-324, 2.0 ** 63, 3.4e38]


def _strings(fdp, n):
    out = []
    for _ in range(n):
        k = fdp.ConsumeIntInRange(0, 5)
        if k == 0:
            out.append("x" * fdp.ConsumeIntInRange(0, 200_000))
        elif k == 1:
            out.append(str(fdp.ConsumeFloat()))
        else:
            out.append(fdp.ConsumeUnicodeNoSurrogates(6) if k < 5 else fdp.ConsumeUnicode(4))
    return out


def _column(fdp, n):
    k = fdp.ConsumeIntInRange(0, 11)
    if k == 0:
        return np.array([fdp.ConsumeFloat() for _ in range(n)], dtype=np.float64)
    if k == 1:
        return np.array([fdp.PickValueInList(SPECIAL) for _ in range(n)],
                        dtype=fdp.PickValueInList([np.float16, np.float32, np.float64]))
    if k == 2:
        dt = fdp.PickValueInList([np.int8, np.uint8, np.int32, np.int64, np.uint64, np.bool_])
        raw = fdp.ConsumeBytes(n * np.dtype(dt).itemsize).ljust(n * np.dtype(dt).itemsize, b"\0")
        return np.frombuffer(raw, dtype=dt).copy()
    if k == 3:
        return np.array(_strings(fdp, n))
    if k == 4:
        return np.array(_strings(fdp, n) + [None], dtype=object)[:-1]
    if k == 5:  # mixed objects
        pool = [None, fdp.ConsumeInt(12), fdp.ConsumeFloat(), fdp.ConsumeUnicode(3), True,
                fdp.ConsumeBytes(2), 2 ** 70, np.nan]
        return np.array([fdp.PickValueInList(pool) for _ in range(n)] + [None], dtype=object)[:-1]
    if k == 6:
        unit = fdp.PickValueInList(DT_UNITS)
        raw = fdp.ConsumeBytes(8 * n).ljust(8 * n, b"\0")
        return np.frombuffer(raw, dtype=np.int64).copy().view(f"datetime64[{unit}]")
    if k == 7:
        return [[fdp.ConsumeIntInRange(0, 3)] * fdp.ConsumeIntInRange(0, 2) for _ in range(n)]
    if k == 8:
        return np.zeros((n, fdp.ConsumeIntInRange(0, 2), 1))
    if k == 9:
        return np.zeros(max(n + fdp.ConsumeIntInRange(-1, 1), 0))
    if k == 10:
        return fdp.PickValueInList([5, "abc", None, 1.5])
    return [fdp.ConsumeFloat() for _ in range(n)]


def _container(fdp, cols):
    how = fdp.ConsumeIntInRange(0, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if how == 1:
                return pd.DataFrame({k: pd.Series(v) if not np.isscalar(v) and v is not None else v
                                     for k, v in cols.items()})
            if how == 2:
                return pa.table({k: pa.array(v, from_pandas=True) for k, v in cols.items()})
            if how == 3:
                return pl.DataFrame(cols, strict=False)
        except Exception:
            return cols
    return cols


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    n = fdp.ConsumeIntInRange(0, 6)
    names = [fdp.ConsumeUnicodeNoSurrogates(3) for _ in range(fdp.ConsumeIntInRange(0, 5))]
    cols = {name: _column(fdp, n) for name in dict.fromkeys(names)}
    container = _container(fdp, cols)
    kinds = {k: fdp.PickValueInList(KINDS) for k in cols if fdp.ConsumeBool()} or None
    vocabs = {k: [fdp.ConsumeUnicodeNoSurrogates(2) if fdp.ConsumeBool() else fdp.ConsumeInt(9)
                  for _ in range(fdp.ConsumeIntInRange(0, 3))]
              for k in cols if fdp.ConsumeIntInRange(0, 3) == 0} or None
    float_dtype = fdp.PickValueInList([None, np.float32, np.float64])
    try:
        _check(_frame.to_frame(container, kinds=kinds, vocabularies=vocabs,
                               float_dtype=float_dtype), kinds)
    except ForgelineError:
        pass
    try:
        specs = [ColumnSpec(k, v, "", tuple(vocabs.get(k, [])) if v == "categorical" and vocabs
                            else None) for k, v in (kinds or {}).items() if v in _frame.KINDS]
        schema = Schema(specs)
        frame = schema.validate(container, float_dtype=float_dtype)
        assert frame.names == schema.names
        _check(frame, schema.kinds)
    except ForgelineError:
        pass


def main() -> None:
    # numpy/pandas warnings would be errors in a strict test run; here they are noise
    warnings.simplefilter("ignore")
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
