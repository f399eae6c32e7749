"""Runtime section: does native code release the GIL, and does the pool scale?

GIL proof: one ``_chunked_sum(n_threads=1)`` call is timed alone, then two Python threads
each make the same call at once. If the GIL is released the two calls overlap, and the pair
takes about as long as one call (ratio ~1.0 on a machine with two free cores); if the GIL
were held the pair would take ~2x. The "speed-up" column for the thread pair row is that
ratio. Pool scaling: one call with ``n_threads=None`` (all cores) against ``n_threads=1``.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _timing import add_source_tree, best_of, row  # noqa: E402

add_source_tree()


def _pair(fn) -> float:
    barrier = threading.Barrier(3)

    def work():
        barrier.wait()
        fn()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - t0


def _python_progress(fn) -> float:
    """Rate of a Python counting loop while ``fn`` runs in another thread, relative to the
    loop's rate alone. ~0 means ``fn`` held the GIL the whole time. Unlike the pair ratio
    this needs no idle core, so it stays meaningful on a loaded machine."""
    done = threading.Event()

    def work():
        fn()
        done.set()

    t = threading.Thread(target=work)
    count = 0
    t0 = time.perf_counter()
    t.start()
    while not done.is_set():
        count += 1
    during = count / (time.perf_counter() - t0)
    t.join()
    # Same loop body alone: the other thread only sleeps (which releases the GIL).
    done.clear()
    t = threading.Thread(target=lambda: (time.sleep(0.2), done.set()))
    count = 0
    t0 = time.perf_counter()
    t.start()
    while not done.is_set():
        count += 1
    alone = count / (time.perf_counter() - t0)
    t.join()
    return during / alone


def run(quick: bool) -> list[dict]:
    from forgeline._native import core

    n = 200_000 if quick else 2_000_000
    repeats = 4 if quick else 60  # ~0.2 s per call, so thread start-up is noise
    x = np.random.default_rng(0).normal(size=n)

    def one():
        return core._chunked_sum(x, repeats, 1, 4096)

    one_s = best_of(one, repeats=3)
    pair_s = min(_pair(one) for _ in range(3))
    ratio = pair_s / one_s
    cores = core.default_num_threads()
    progress = max(_python_progress(one) for _ in range(3))
    rows = [
        row("R1 GIL release (chunked_sum, n_threads=1)", "forgeline: one call", one_s,
            f"{n} values x {repeats} passes"),
        row("R1 GIL release (chunked_sum, n_threads=1)", "forgeline: two Python threads, one call each",
            pair_s, f"pair/one = {ratio:.2f} (~1.0: GIL released; ~2.0: GIL held); "
                    f"{cores} cores; a Python thread ran at {progress:.0%} of its solo rate during "
                    "the call (0% = GIL held)"),
    ]
    # Control under the same machine load: builtin sum over a range is one C call that
    # holds the GIL throughout, so it shows what "not released" looks like here.
    m = 1_000_000 if quick else 10_000_000

    def py_loop():
        return sum(range(m))

    py_one = best_of(py_loop, repeats=3)
    py_pair = min(_pair(py_loop) for _ in range(3))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows += [
        row("R1 control: builtin sum(range(n)) (holds the GIL)", "python: one call", py_one,
            f"a second Python thread ran at {max(_python_progress(py_loop) for _ in range(3)):.0%} "
            "of its solo rate during the call"),
        row("R1 control: builtin sum(range(n)) (holds the GIL)", "python: two Python threads",
            py_pair, f"pair/one = {py_pair / py_one:.2f}; 1-min load average {load:.1f}"),
    ]
    all_s = best_of(lambda: core._chunked_sum(x, repeats, 0, 4096), repeats=3)
    rows += [
        row("R2 pool scaling (chunked_sum)", "forgeline n_threads=None", all_s,
            f"{cores} threads"),
        row("R2 pool scaling (chunked_sum)", "forgeline n_threads=1", one_s, ""),
    ]
    return rows


if __name__ == "__main__":
    for r in run("--quick" in sys.argv):
        print(r)
