"""DriftReport: the result of :func:`forgeline.compare` as a frame, JSON or HTML."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import numpy as np

from ..errors import DriftError

COLUMNS = ("column", "kind", "test", "statistic", "p_value", "threshold", "drifted",
           "effect_size", "p_value_adjusted", "method", "note")


class TestResult:
    """One (column, test) row of a report."""

    __test__ = False  # not a pytest class

    def __init__(self, column, kind, test, statistic, p_value, threshold, drifted,
                 effect_size=math.nan, method="exact", note="", count=None):
        self.column = column
        self.kind = kind
        self.test = test
        self.statistic = float(statistic)
        self.p_value = float(p_value)
        self.threshold = float(threshold)
        self.drifted = bool(drifted)
        self.effect_size = float(effect_size)
        self.p_value_adjusted = math.nan
        self.method = method
        self.note = note
        self.count = count

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in COLUMNS}

    def __repr__(self) -> str:
        return (f"TestResult({self.column!r}, {self.test}, stat={self.statistic:.4g}, "
                f"p={self.p_value:.4g}, drifted={self.drifted})")


def _j(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, np.generic):
        return _j(x.item())
    return x


class DriftReport:
    """Per-(column, test) drift results plus the dataset-level decision.

    Attributes
    ----------
    results : list of TestResult
    drifted : bool
        True when the share of drifted columns reaches ``drift_share``.
    drifted_columns : list of str
    share_drifted : float
    """

    def __init__(self, results, *, decisions, drift_share, correction=None, charts=None):
        self.results = list(results)
        self.decisions = dict(decisions)
        self.drift_share = drift_share
        self.correction = correction
        self.charts = charts or {}
        structural = {r.column for r in self.results
                      if r.test in ("missing_column", "kind_changed")}
        self.drifted_columns = [n for n, r in self.decisions.items() if r.drifted] + sorted(structural)
        n_cols = len(self.decisions) + len(structural)
        self.share_drifted = len(self.drifted_columns) / n_cols if n_cols else 0.0
        self.drifted = bool(n_cols) and self.share_drifted >= drift_share

    def __repr__(self) -> str:
        return (f"DriftReport({len(self.drifted_columns)}/{len(self.decisions)} columns drifted, "
                f"dataset drifted={self.drifted})")

    def __len__(self) -> int:
        return len(self.results)

    def to_frame(self):
        """One row per (column, test): pandas DataFrame if pandas is installed, else a
        pyarrow Table. Columns: column, kind, test, statistic, p_value (NaN where the test
        has none), threshold, drifted, effect_size, p_value_adjusted, method, note."""
        data = {k: [getattr(r, k) for r in self.results] for k in COLUMNS}
        try:
            import pandas as pd
        except ImportError:
            import pyarrow as pa
            return pa.table(data)
        return pd.DataFrame(data, columns=list(COLUMNS))

    def to_dict(self) -> dict:
        """JSON-safe dict (NaN becomes None)."""
        return {"drifted": self.drifted, "share_drifted": self.share_drifted,
                "drift_share": self.drift_share, "correction": self.correction,
                "drifted_columns": list(self.drifted_columns),
                "results": [{k: _j(v) for k, v in r.as_dict().items()} for r in self.results]}

    def to_json(self, path=None, **kwargs) -> str:
        """JSON text of :meth:`to_dict`; also written to ``path`` when given."""
        text = json.dumps(self.to_dict(), allow_nan=False, **kwargs)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def to_html(self, path=None) -> str:
        """Self-contained HTML: summary table, then one inline-SVG chart per column overlaying
        reference (blue) and current (orange) distributions. No scripts, fonts or network
        resources; about 1 KB per column. Written to ``path`` when given."""
        from ._html import render
        text = render(self)
        if path is not None:
            try:
                Path(path).write_text(text, encoding="utf-8")
            except OSError as exc:
                raise DriftError(f"cannot write the HTML report to {path}: {exc}") from exc
        return text


def escape(x) -> str:
    return html.escape(str(x), quote=True)
