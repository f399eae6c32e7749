"""Fixed hostile frame shapes through the input chokepoint, each once (no atheris needed).

The libFuzzer harness (``fuzz_frame.py``) explores values on small frames; the shapes that
are too slow to draw at random live here and run once per CI fuzz pass: 10^5 columns
(numpy, dict, pandas), 0 rows, 1 column, NaN/inf everywhere, huge strings and mixed dtypes,
each through ``to_frame`` (inferred and forced kinds) and ``Schema.infer`` + ``validate``.
Outcome per case: a ``ForgelineError`` or a frame that keeps the contract. Anything else, or a
case slower than ``--max-seconds`` (a hang), exits 1. The 10^5-column cases go through
``to_frame`` only unless ``--full``.

Run: ``python fuzz/frame_shapes.py [--width 100000] [--max-seconds 60]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

import _srcpath  # noqa: E402,F401  (the in-place build when there is one)
from _checks import check_frame as check  # noqa: E402

import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402

from forgeline import _frame  # noqa: E402
from forgeline.errors import ForgelineError  # noqa: E402
from forgeline.schema import Schema  # noqa: E402

SPECIAL = np.array([np.nan, np.inf, -np.inf, -0.0, 1e308, 5e-324])


def cases(width: int):
    names = [f"c{i}" for i in range(width)]
    everywhere = np.resize(SPECIAL, (3, width))
    yield "numpy 3 x W NaN/inf everywhere", everywhere
    yield "numpy 0 x W", np.zeros((0, width))
    yield "dict W columns, 0 rows", {n: np.zeros(0) for n in names}
    yield "dict W columns, 2 rows inf", {n: np.full(2, np.inf) for n in names}
    yield "pandas 1 x W NaN", pd.DataFrame(np.full((1, width), np.nan), columns=names)
    yield "numpy 2 x 1000 strings", np.full((2, 1000), "x" * 64)
    big = "y" * 5_000_000
    yield "1 column of 5 MB strings (object)", {"s": np.array([big, None, big], dtype=object)}
    yield "1 column of 5 MB strings (arrow)", pa.table({"s": [big, None, "z"]})
    yield "1 column, 0 rows, pandas", pd.DataFrame({"a": pd.Series([], dtype=float)})
    yield "1 column, 1 row, inf", pd.DataFrame({"a": [np.inf]})
    yield "mixed dtypes", pd.DataFrame({
        "f": [1.5, np.nan, np.inf], "i": np.array([1, 2, 3], np.int64), "b": [True, False, True],
        "s": ["a", "", "\x00"], "d": pd.to_datetime(["2020-01-01", None, "1677-09-22"]),
        "o": np.array([1, "x", None], dtype=object), "u": np.array([2**64 - 1, 0, 1], np.uint64),
        "cat": pd.Categorical(["a", None, "b"])})
    yield "NaN everywhere, every kind forced", ({"a": np.full(4, np.nan), "b": np.full(4, np.nan)},
                                                {"a": "categorical", "b": "boolean"})


def run_case(data, full: bool = True) -> str:
    kinds = None
    if isinstance(data, tuple):
        data, kinds = data
    outcome = []
    if not full:  # wide frames: the chokepoint only (see --full)
        try:
            check(_frame.to_frame(data))
            return "ok"
        except ForgelineError as exc:
            return type(exc).__name__
    for attempt in ("infer", "forced"):
        try:
            frame = _frame.to_frame(data, kinds=kinds if attempt == "infer" else
                                    {n: _frame.NUMERIC for n in _names(data)[:1]})
            check(frame)
            schema = Schema.infer(frame)
            check(schema.validate(data))
            outcome.append("ok")
        except ForgelineError as exc:
            outcome.append(type(exc).__name__)
    return "/".join(outcome)


def _names(data) -> list[str]:
    if isinstance(data, np.ndarray):
        return [f"x{j}" for j in range(data.shape[1] if data.ndim == 2 else 1)][:1]
    if isinstance(data, pa.Table):
        return list(data.column_names)
    return [str(c) for c in list(data.keys() if isinstance(data, dict) else data.columns)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=100_000)
    ap.add_argument("--max-seconds", type=float, default=90.0)
    ap.add_argument("--full", action="store_true",
                    help="also Schema.infer/validate and forced kinds on the wide cases (slow: "
                         "the per-column cost makes each 10^5-column case take tens of seconds)")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    rc = 0
    t_all = time.perf_counter()
    for label, data in cases(args.width):
        t0 = time.perf_counter()
        try:
            wide = isinstance(data, dict) and len(data) >= 10_000 or \
                getattr(data, "shape", (0, 0))[-1] >= 10_000
            outcome = run_case(data, full=args.full or not wide)
        except Exception as exc:  # noqa: BLE001 - an untyped exception is the finding
            outcome, rc = f"FINDING {type(exc).__name__}: {exc}"[:300], 1
        dt = time.perf_counter() - t0
        if dt > args.max_seconds:
            outcome, rc = f"{outcome}; FINDING: slower than {args.max_seconds} s", 1
        print(f"shapes: {label}: {outcome} ({dt:.2f} s)", flush=True)
    print(f"shapes: done in {time.perf_counter() - t_all:.1f} s", flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
