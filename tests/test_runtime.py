"""The native runtime (parallel_for): determinism, exceptions, thread settings, GIL release."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import forgeline

from forgeline._native import core, resolve_threads

# the directory holding the forgeline under test (the source tree in dev, site-packages in CI)
PYTHON_DIR = str(Path(forgeline.__file__).resolve().parents[1])


@pytest.fixture(scope="module")
def x():
    rng = np.random.default_rng(42)
    # mixed magnitudes make the sum order-sensitive, so a reordering would show up
    return rng.standard_cauchy(20_011) * 10.0 ** rng.integers(-8, 8, 20_011)


def _bits(v: float) -> bytes:
    return np.float64(v).tobytes()


@pytest.mark.parametrize("grain", [1, 7, 64, 4096, 1 << 20])
def test_chunked_sum_bit_identical_across_thread_counts(x, grain):
    ref = core._chunked_sum(x, repeats=1, n_threads=1, grain=grain)
    for n_threads in (2, 3, 8, 0, -1):
        for _ in range(3):
            got = core._chunked_sum(x, repeats=1, n_threads=n_threads, grain=grain)
            assert _bits(got) == _bits(ref), (n_threads, grain)


def test_chunked_sum_matches_fixed_order_reference(x):
    grain = 1000
    partial = []
    for b in range(0, x.size, grain):
        s = 0.0
        for r in range(2):
            for v in np.abs(x[b:b + grain]) + r:
                s += float(np.sqrt(v))
        partial.append(s)
    expected = 0.0
    for p in partial:
        expected += p
    assert core._chunked_sum(x, repeats=2, n_threads=3, grain=grain) == expected


@pytest.mark.parametrize("n", [0, 1, 5])
def test_chunked_sum_tiny_and_empty(n):
    v = np.arange(n, dtype=np.float64)
    assert core._chunked_sum(v, 1, 8, 4) == core._chunked_sum(v, 1, 1, 4)
    if n == 0:
        assert core._chunked_sum(v, 1, 8, 4) == 0.0


def test_chunked_sum_accepts_non_contiguous_and_other_dtypes(x):
    strided = x[::2]
    assert core._chunked_sum(strided, 1, 3, 100) == core._chunked_sum(np.ascontiguousarray(strided), 1, 1, 100)
    ints = np.arange(1000, dtype=np.int32)
    assert core._chunked_sum(ints, 1, 2, 10) == core._chunked_sum(ints.astype(np.float64), 1, 1, 10)


@pytest.mark.parametrize("n_threads", [1, 2, 3, 8, 0])
@pytest.mark.parametrize("bad", [0, 17, 999])
def test_exception_in_a_chunk_propagates(n_threads, bad):
    with pytest.raises(ValueError, match=f"chunk failure at {bad}"):
        core._fail_in_chunk(1000, n_threads, bad)


def test_pool_still_works_after_exceptions(x):
    ref = core._chunked_sum(x, 1, 1, 256)
    for _ in range(20):
        with pytest.raises(ValueError):
            core._fail_in_chunk(10_000, 4, 5000)
        assert _bits(core._chunked_sum(x, 1, 4, 256)) == _bits(ref)
    core._fail_in_chunk(1000, 4, -1)  # no failing chunk: returns normally


def _default_threads_in_subprocess(env_updates: dict) -> int:
    env = {k: v for k, v in os.environ.items()
           if k not in ("FORGELINE_NUM_THREADS", "OMP_NUM_THREADS")}
    env.update(env_updates)
    env["PYTHONPATH"] = PYTHON_DIR + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run(
        [sys.executable, "-c", "from forgeline._native import core; print(core.default_num_threads())"],
        env=env, capture_output=True, text=True, timeout=120, check=True)
    return int(out.stdout.strip())


@pytest.mark.parametrize("env, expected", [
    ({"FORGELINE_NUM_THREADS": "3"}, 3),
    ({"OMP_NUM_THREADS": "5"}, 5),
    ({"FORGELINE_NUM_THREADS": "2", "OMP_NUM_THREADS": "7"}, 2),  # forgeline's own wins
    ({"FORGELINE_NUM_THREADS": "0", "OMP_NUM_THREADS": "4"}, 4),  # invalid values are ignored
    ({"FORGELINE_NUM_THREADS": "abc", "OMP_NUM_THREADS": "6"}, 6),
    ({"FORGELINE_NUM_THREADS": "100000"}, 1024),                  # capped
])
def test_thread_env_vars(env, expected):
    assert _default_threads_in_subprocess(env) == expected


def test_thread_default_without_env_is_cores():
    n = _default_threads_in_subprocess({})
    allowed = {os.cpu_count() or 1}
    if hasattr(os, "sched_getaffinity"):
        allowed.add(len(os.sched_getaffinity(0)))
    assert n in allowed


def test_resolve_threads():
    assert resolve_threads(None) == 0
    assert resolve_threads(0) == 0
    assert resolve_threads(-3) == 0
    assert resolve_threads(4) == 4
    assert resolve_threads(np.int64(2)) == 2
    with pytest.raises(TypeError):
        resolve_threads(True)
    with pytest.raises(TypeError):
        resolve_threads(2.5)


def test_concurrent_python_threads(x):
    """Several Python threads in native code at once (the GIL is released) all get the
    serial answer. Correctness only; the speed-up is measured in bench/peers_runtime.py."""
    ref = core._chunked_sum(x, 3, 1, 512)
    results: dict[int, list[float]] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            nt = 1 if i % 2 == 0 else 3  # single-threaded and pooled calls interleaved
            results[i] = [core._chunked_sum(x, 3, nt, 512) for _ in range(5)]
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert all(not t.is_alive() for t in threads)
    assert len(results) == 6
    for vals in results.values():
        assert all(_bits(v) == _bits(ref) for v in vals)


def test_concurrent_exceptions_do_not_cross_threads():
    errors: dict[int, str] = {}

    def work(i: int) -> None:
        try:
            core._fail_in_chunk(2000, 3, 100 * i)
        except ValueError as exc:
            errors[i] = str(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == {i: f"chunk failure at {100 * i}" for i in range(1, 5)}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX-only")
def test_pool_survives_fork(x):
    core._chunked_sum(x, 1, 4, 256)  # make sure the pool has workers before forking
    ref = core._chunked_sum(x, 1, 1, 256)
    code = (
        "import os, sys, numpy as np\n"
        "from forgeline._native import core\n"
        "x = np.linspace(-5, 5, 20000)\n"
        "core._chunked_sum(x, 1, 4, 256)\n"
        "ref = core._chunked_sum(x, 1, 1, 256)\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    ok = core._chunked_sum(x, 1, 4, 256) == ref\n"
        "    os._exit(0 if ok else 3)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "sys.exit(os.waitstatus_to_exitcode(status))\n"
    )
    env = dict(os.environ, PYTHONPATH=PYTHON_DIR + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", code], env=env, timeout=120,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert core._chunked_sum(x, 1, 4, 256) == ref
