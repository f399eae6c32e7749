"""Timing helpers shared by the bench/peers_*.py sections."""

from __future__ import annotations

import time


def best_of(fn, repeats: int = 3, warmup: int = 1) -> float:
    """Best wall time of ``repeats`` calls after ``warmup`` untimed calls, in seconds."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def per_call(fn, n: int = 2000) -> float:
    """Mean seconds per call over ``n`` calls (after one warm-up), for latency rows."""
    fn()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def row(workload: str, engine: str, seconds: float | None, note: str = "") -> dict:
    return {"workload": workload, "engine": engine, "seconds": seconds, "note": note}
