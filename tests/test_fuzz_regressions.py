"""Regression tests from the fuzz passes (tools/fuzz-ci.sh): fixed hostile shapes, and the
udf part of the bundle manifest under hypothesis. Every crasher a harness finds is added
here as a plain test (input bytes or the decoded frame), named after the harness."""

from __future__ import annotations

import copy
import math
import os
import string
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.preprocessing import FunctionTransformer

import forgeline as fl
from forgeline import _frame
from forgeline.errors import ForgelineError
from forgeline.scorer import Scorer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fuzz"))
from _checks import check_frame as _check  # noqa: E402  (the fuzz harnesses' invariants)

EXAMPLES = int(os.environ.get("FORGELINE_FUZZ_EXAMPLES", "60"))
SPECIAL = np.array([np.nan, np.inf, -np.inf, -0.0, 1e308, 5e-324])


def _typed_or_ok(data, **kw):
    try:
        frame = _frame.to_frame(data, **kw)
    except ForgelineError:
        return None
    _check(frame)
    return frame


# ------------------------------------------------------------------ fixed hostile shapes
# (fuzz/frame_shapes.py runs the same at 10^5 columns; here 10^4 keeps the suite quick)

@pytest.mark.parametrize("make", [
    lambda w: np.resize(SPECIAL, (3, w)),
    lambda w: np.zeros((0, w)),
    lambda w: {f"c{i}": np.full(2, np.inf) for i in range(w)},
    lambda w: pd.DataFrame(np.full((1, w), np.nan), columns=[f"c{i}" for i in range(w)]),
], ids=["numpy-special", "numpy-0-rows", "dict-inf", "pandas-nan"])
def test_wide_frames_keep_the_contract(make):
    frame = _typed_or_ok(make(10_000))
    assert frame is not None and len(frame.columns) == 10_000


@pytest.mark.parametrize("data", [
    {"s": np.array(["y" * 2_000_000, None, "z"], dtype=object)},
    pa.table({"s": ["y" * 2_000_000, None, "z"]}),
    pd.DataFrame({"a": pd.Series([], dtype=float)}),
    pd.DataFrame({"a": [np.inf]}),
    {"o": np.array([1, "x", None, 2**70, b"\x00"], dtype=object)},
    {"u": np.array([2**64 - 1, 0], np.uint64)},
], ids=["huge-object-strings", "huge-arrow-strings", "0-rows", "1-row-inf", "mixed-objects",
        "uint64-max"])
def test_hostile_one_column_frames(data):
    _typed_or_ok(data)
    _typed_or_ok(data, kinds={next(iter(_keys(data))): _frame.NUMERIC})


def _keys(data):
    return data.column_names if isinstance(data, pa.Table) else list(
        data.keys() if isinstance(data, dict) else data.columns)


# ------------------------------------------------------------------ udf manifest entries

def _ratio(a, b):
    return math.log1p(abs(a)) / (b * b + 1.0)


@pytest.fixture(scope="module")
def udf_parts():
    X = pd.DataFrame({"a": np.linspace(-2, 2, 50), "b": np.linspace(0, 1, 50)})
    ft = FunctionTransformer(fl.udf(_ratio, name="ratio")).fit(X)
    return fl.compile(ft, X).to_parts(), X


JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63),
                        st.floats(allow_nan=True), st.text(string.printable, max_size=40),
                        st.lists(st.integers(-3, 3), max_size=3),
                        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(["name", "func", "source", "arity", "args", "signature", "imports",
                              "constants", "sha256", "<delete>", "<group-args>", "<group-udf>"]),
       value=JSON_VALUES, allow=st.booleans(), resign=st.booleans())
def test_mutated_udf_entries_load_typed_or_exact(udf_parts, field, value, allow, resign):
    (body, arrays), X = udf_parts
    body = copy.deepcopy(body)
    spec = body["features"]["udfs"]["ratio"]
    group = next(g for g in body["features"]["groups"] if g.get("udf"))
    if field == "<delete>":
        del spec["source"]
    elif field == "<group-args>":
        group["args"] = value
    elif field == "<group-udf>":
        group["udf"] = value
    else:
        spec[field] = value
    if resign and isinstance(spec, dict):
        from forgeline.jit import spec_digest
        spec["sha256"] = spec_digest(spec)
    try:
        scorer = Scorer.from_parts(body, arrays, allow_code=allow)
    except ForgelineError:
        return
    # anything that loads must score the sample exactly like the original
    want = X["a"].abs().map(math.log1p).to_numpy() / (X["b"].to_numpy() ** 2 + 1.0)
    np.testing.assert_allclose(scorer.transform(X)[:, 0], want, rtol=1e-15)
