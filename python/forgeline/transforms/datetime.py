"""DateTimeFeatures (placeholder until implemented)."""
from __future__ import annotations


class DateTimeFeatures:  # pragma: no cover
    pass
