"""Drift monitoring: mergeable reference profiles, native statistics, reports.

>>> import forgeline as fl                                # doctest: +SKIP
>>> prof = fl.Profile.fit(X_train)                       # doctest: +SKIP
>>> report = fl.compare(prof, X_live)                    # doctest: +SKIP
>>> report.drifted, report.to_frame()                    # doctest: +SKIP
"""

from __future__ import annotations

from .cbpe import estimate_performance
from .metric import Metric, metric
from .compare import DEFAULT_THRESHOLDS, compare
from .profile import Profile
from .report import DriftReport, TestResult

__all__ = ["Profile", "compare", "DriftReport", "TestResult", "DEFAULT_THRESHOLDS",
           "estimate_performance", "metric", "Metric"]
