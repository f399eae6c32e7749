"""Packaging: the wheel installs into a fresh venv, a missing extension gives a clear error,
the console script runs, and the core import needs only numpy and pyarrow."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import forgeline as fl

REPO = Path(__file__).resolve().parents[1]
PKG = Path(fl.__file__).resolve().parent


def _run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=900, **kw)


def test_missing_extension_is_explained(tmp_path):
    dst = tmp_path / "forgeline"
    shutil.copytree(PKG, dst, ignore=shutil.ignore_patterns("_core*.so", "_core*.pyd", "__pycache__"))
    r = _run([sys.executable, "-c", "import forgeline"], cwd=tmp_path,
             env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert r.returncode != 0
    assert "ExtensionNotBuiltError" in r.stderr
    assert "not built" in r.stderr


def test_core_import_needs_no_optional_dependency(tmp_path):
    blocker = textwrap.dedent("""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in {'pandas', 'polars', 'sklearn', 'lightgbm', 'xgboost',
                                          'torch', 'numba', 'scipy', 'pyspark', 'mlflow'}:
                    raise ImportError('blocked: ' + name)
        sys.meta_path.insert(0, Block())
        import numpy as np, forgeline as fl
        from forgeline import _frame
        f = fl.Schema.infer({'a': np.array([1.0, 2.0]), 's': ['x', 'y']}).validate({'a': [1, 2], 's': ['y', 'q']})
        print(f['s'].values.tolist())
    """)
    r = _run([sys.executable, "-c", blocker], env=os.environ.copy())
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[1, -2]"


def test_console_script_version():
    exe = shutil.which("forgeline")
    args = [exe] if exe and Path(exe).exists() and os.environ.get("PYTHONPATH") is None else \
        [sys.executable, "-m", "forgeline.cli"]
    r = _run([*args, "--version"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("forgeline ")


@pytest.mark.slow
def test_wheel_installs_into_fresh_venv(tmp_path):
    if not (REPO / "pyproject.toml").exists():
        pytest.fail("tests must run from a source checkout (pyproject.toml not found)")
    wheels = tmp_path / "wheels"
    r = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels),
              str(REPO)])
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (wheel,) = wheels.glob("forgeline-*.whl")
    venv = tmp_path / "venv"
    r = _run([sys.executable, "-m", "venv", str(venv)])
    assert r.returncode == 0, r.stderr
    py = venv / "bin" / "python"
    r = _run([str(py), "-m", "pip", "install", "-q", str(wheel)])
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    r = _run([str(py), "-c", "import forgeline, forgeline._core as c; print(forgeline.__version__, c.default_num_threads())"],
             cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0] == fl.__version__.split("+")[0]
    r = _run([str(venv / "bin" / "forgeline"), "--version"])
    assert r.returncode == 0 and "forgeline" in r.stdout
