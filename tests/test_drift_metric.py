"""User-defined drift metrics compiled with Numba, and the package without numba."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from forgeline import DriftError
from forgeline.drift import Profile, compare, metric
from forgeline.drift.metric import unregister


@pytest.fixture
def median_shift():
    @metric(kind="numeric", threshold=0.3)
    def median_shift(ref, cur):
        return abs(ref[ref.size // 2] - cur[cur.size // 2])
    yield median_shift
    unregister("median_shift")


def test_numeric_metric_runs_beside_builtins(median_shift):
    rng = np.random.default_rng(0)
    ref = {"x": rng.normal(size=501)}
    cur = {"x": rng.normal(1.0, size=301)}
    rep = compare(ref, cur, tests=["ks", "median_shift"])
    row = next(r for r in rep.results if r.test == "median_shift")
    expected = abs(np.sort(ref["x"])[250] - np.sort(cur["x"])[150])
    assert row.statistic == pytest.approx(expected, rel=1e-15)
    assert row.drifted and row.threshold == 0.3
    big = Profile.fit({"x": rng.normal(size=30_000)}, sample_size=100)
    approx = next(r for r in compare(big, cur, tests={"numeric": ["median_shift"]}).results
                  if r.test == "median_shift")
    assert approx.method == "sketch-sample" and approx.statistic == pytest.approx(1.0, abs=0.2)


def test_categorical_metric():
    @metric(kind="categorical", threshold=0.5, name="max_ratio")
    def max_ratio(p, q):
        best = 0.0
        for i in range(p.size):
            if p[i] > 0 and q[i] / p[i] > best:
                best = q[i] / p[i]
        return best
    try:
        rep = compare({"c": np.array(["a", "b", "b", "b"], dtype=object)},
                      {"c": np.array(["a", "a", "b", "b"], dtype=object)},
                      tests={"categorical": ["max_ratio"]})
        row = next(r for r in rep.results if r.test == "max_ratio")
        assert row.statistic == pytest.approx(2.0)
    finally:
        unregister("max_ratio")


def test_metric_errors():
    with pytest.raises(DriftError, match="clashes"):
        metric(lambda a, b: 0.0, name="ks")
    with pytest.raises(DriftError, match="kind"):
        metric(kind="text")
    with pytest.raises(DriftError, match="unknown drift tests"):
        compare({"x": np.ones(3)}, {"x": np.ones(3)}, tests=["not_registered"])


def test_package_works_without_numba():
    code = ("import sys; sys.modules['numba'] = None\n"
            "import numpy as np\n"
            "from forgeline.drift import compare, metric\n"
            "from forgeline import DriftError\n"
            "r = compare({'x': np.arange(20.0)}, {'x': np.arange(20.0) + 3})\n"
            "assert 'numba' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
            "try:\n    metric(lambda a, b: 0.0, name='m')\nexcept DriftError as e:\n    print('ok', e)\n")
    import forgeline

    # the forgeline under test: the source tree in dev, site-packages when installed (CI)
    root = Path(forgeline.__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok") and "numba" in proc.stdout
