"""Timing helpers shared by the bench/peers_*.py sections."""

from __future__ import annotations

import time


def best_of(fn, repeats: int = 3, warmup: int = 1, clock=time.perf_counter) -> float:
    """Best time of ``repeats`` calls after ``warmup`` untimed calls, in seconds.

    ``clock`` is wall time by default; ``time.process_time`` gives CPU time, which on a
    shared machine measures a single-threaded kernel without the other tenants.
    """
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = clock()
        fn()
        best = min(best, clock() - t0)
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


def print_rows(rows: list[dict]) -> None:
    """Print section rows when a bench/peers_*.py file is run on its own."""
    for r in rows:
        s = r["seconds"]
        secs = "skipped" if s is None else (f"{s * 1e6:.1f} us" if s < 1e-3 else f"{s:.4f} s")
        print(f"{r['workload']:<62} {r['engine']:<36} {secs:>12}  {r.get('note', '')}")


def add_source_tree() -> None:
    """Put the checkout's ``python/`` first on sys.path when it holds an in-place build
    (``cmake --preset dev``); otherwise (a fresh clone with the package installed, as in CI)
    leave the installed package in charge."""
    import glob
    import os
    import sys

    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python")
    if glob.glob(os.path.join(src, "forgeline", "_core*.so")) and src not in sys.path:
        sys.path.insert(0, src)


def forgeline_root() -> str:
    """The folder holding the ``forgeline`` this process imported, for child processes."""
    from pathlib import Path

    import forgeline

    return str(Path(forgeline.__file__).resolve().parents[1])
