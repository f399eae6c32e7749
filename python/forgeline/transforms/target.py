"""TargetEncoder (placeholder until implemented)."""
from __future__ import annotations


class TargetEncoder:  # pragma: no cover - replaced below
    pass
