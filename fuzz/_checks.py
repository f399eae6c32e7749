"""The invariants every Frame from ``_frame.to_frame`` keeps, shared by the fuzz harnesses
and the fuzz regression tests: one row count, float numerics, int32 codes inside the
vocabulary (or -1 missing / -2 unseen), int64 datetimes, and any forced kind honoured."""

import numpy as np

from forgeline import _frame


def check_frame(frame, kinds=None) -> None:
    for col in frame.columns:
        assert len(col.values) == frame.n_rows
        if col.kind in (_frame.NUMERIC, _frame.BOOLEAN):
            assert col.values.dtype in (np.float32, np.float64)
        elif col.kind == _frame.CATEGORICAL:
            assert col.values.dtype == np.int32
            assert ((col.values >= -2) & (col.values < len(col.vocabulary))).all()
        else:
            assert col.values.dtype == np.int64
        if kinds and kinds.get(col.name) in _frame.KINDS:
            assert col.kind == kinds[col.name]
