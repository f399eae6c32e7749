"""Numba-JIT tree engine: one ensemble compiled into specialised straight-line code.

Each tree becomes nested ``if``/``else`` source with its thresholds as literals (as lleaves
does with LLVM IR); ``numba.njit`` compiles it. The generated module, its leaf/bitset arrays
and Numba's machine code are cached on disk under a directory named by a hash of the model
arrays, the settings and this generator's version, so a second process loads the compiled
code instead of compiling again. Bundles never store code: the source is regenerated from
the tree arrays.

Exactness: the generated code follows ``cpp/src/trees.cpp`` step by step — the same input
preparation (LightGBM zero window, float32 rounding), the same normalised thresholds
(XGBoost ``<`` turned into ``<=`` the largest float below), the same NaN / zero-missing /
categorical rules, leaves summed in tree order into a float64 or float32 accumulator, and
the same final division. Its results are bit-identical to the C++ engine.

Numba is an optional extra (``pip install 'forgeline[jit]'``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import threading
from pathlib import Path

import numpy as np

from ..errors import CompileError

#: Bumped whenever the generated code changes, so stale caches are never reused.
GENERATOR_VERSION = 2
#: Trees per generated function: bounds the size of one LLVM function (compile time grows
#: faster than linearly with it) while keeping calls rare.
TREES_PER_FUNCTION = 10
#: Rows per block: the block of X stays in L2 while every tree function streams over it.
BLOCK_ROWS = 2048
#: Deepest tree the generator nests (Python's parser limits nesting to ~100 levels).
MAX_DEPTH = 60
#: Most outputs the generated code keeps (vector leaves and multiclass add per output).
MAX_OUTPUTS = 64

_ZERO_THRESHOLD = float(np.float32(1e-35))
_LOCK = threading.Lock()
_LOADED: dict[str, object] = {}

NAN_LEFT, CATEGORICAL, ZERO_MISSING, DEFAULT_LEFT, MEMBER_LEFT, INVALID_LEFT = (1, 2, 4, 8, 16, 32)


def numba_available() -> bool:
    """True when numba can be imported (the ``jit`` extra is installed)."""
    return importlib.util.find_spec("numba") is not None


def default_cache_dir() -> Path:
    """Where compiled ensembles are cached: ``$FORGELINE_JIT_CACHE``, else
    ``$XDG_CACHE_HOME/forgeline/jit``, else ``~/.cache/forgeline/jit``."""
    env = os.environ.get("FORGELINE_JIT_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "forgeline" / "jit"


def model_key(settings: dict, n_features: int, arrays: dict) -> str:
    """Hash of everything the generated code depends on."""
    h = hashlib.sha256()
    h.update(f"v{GENERATOR_VERSION}|{n_features}|".encode())
    for k in ("input_mode", "cat_rule", "accumulate", "xgb_less_than", "divisor", "leaf_dim",
              "n_outputs"):
        h.update(f"{k}={settings[k]!r}|".encode())
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k])
        h.update(f"{k}:{a.dtype.str}:{a.size}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:32]


def _f(v: float) -> str:
    """A Python literal for a double that round-trips exactly."""
    if v != v:
        return "nan"
    if v in (float("inf"), float("-inf")):
        return "inf" if v > 0 else "-inf"
    return repr(float(v))


class _Gen:
    """Turns the TreeEnsemble arrays into generated source plus its data arrays."""

    def __init__(self, settings: dict, n_features: int, arrays: dict):
        self.s = settings
        self.F = n_features
        self.a = arrays
        self.K = int(settings["n_outputs"])
        self.leaf_dim = int(settings["leaf_dim"])
        self.acc32 = settings["accumulate"] == "float32"
        self.xgb_lt = bool(settings["xgb_less_than"])
        self.cat_rule = settings["cat_rule"]
        self.leaves: list[np.ndarray] = []
        self.n_leaf = 0

    def threshold(self, t: float) -> float:
        if self.xgb_lt:
            tf = np.float32(t)
            if np.isinf(tf) and tf < 0:
                return float("nan")
            return float(np.nextafter(tf, np.float32(-np.inf)))
        return float(t)

    def leaf_values(self, g: int, w: float, weighted: bool) -> np.ndarray:
        d = self.leaf_dim
        v = self.a["leaf_value"][g * d:(g + 1) * d]
        if weighted:
            v = (v.astype(np.float32) * np.float32(w)).astype(np.float64) if self.acc32 else v * w
        return v

    def cond(self, g: int) -> str:
        a = self.a
        f = int(a["feature"][g])
        fl = int(a["flags"][g])
        x = f"x{f}"
        self.used.add(f)
        if fl & CATEGORICAL:
            off, nw = int(a["cat_offset"][g]), int(a["cat_nwords"][g])
            return (f"_cat_left({x}, BITS, {off}, {nw}, {bool(fl & NAN_LEFT)}, "
                    f"{bool(fl & MEMBER_LEFT)}, {bool(fl & INVALID_LEFT)}, {self.cat_code})")
        thr = self.threshold(float(a["threshold"][g]))
        nan_left = bool(fl & NAN_LEFT)
        if fl & ZERO_MISSING:
            return (f"_zero_left({x}, {_f(thr)}, {nan_left}, {bool(fl & DEFAULT_LEFT)})")
        if thr != thr:  # never left, except NaN when NaN goes left
            return f"({x} != {x})" if nan_left else "False"
        if nan_left:  # NaN and x <= t go left: the negation of x > t
            return f"not ({x} > {_f(thr)})"
        return f"{x} <= {_f(thr)}"

    @property
    def cat_code(self) -> int:
        return {"truncate": 0, "negative": 1, "integral": 2}[self.cat_rule]

    def source(self) -> str:
        T = int(self.a["tree_output"].size)
        out: list[str] = []
        funcs = []
        acc = "float32" if self.acc32 else "float64"
        for c0 in range(0, T, TREES_PER_FUNCTION):
            name = f"_trees_{c0}"
            funcs.append(name)
            # One explicit signature: compiled once, eagerly, and no dispatch on each call.
            out.append(f"@njit('void(float64[:, ::1], {acc}[:, ::1], int64, int64)', "
                       "cache=True, nogil=True, error_model='numpy')")
            out.append(f"def {name}(X, acc, r0, r1):")
            out.append("    for i in range(r0, r1):")
            body: list[str] = []
            self.used: set[int] = set()
            for t in range(c0, min(T, c0 + TREES_PER_FUNCTION)):
                self._emit_tree(t, body, 2)
            # Scalars only: features read (and prepared) once per row, accumulators in
            # locals, thresholds and float64 leaves as literals. Small IR, fast to compile.
            for f in sorted(self.used):
                out.append("        " + _PREP[self.s["input_mode"]].format(f=f))
            for k in range(self.K):
                out.append(f"        a{k} = acc[i, {k}]")
            out.extend(body)
            for k in range(self.K):
                out.append(f"        acc[i, {k}] = a{k}")
            out.append("")
        return _TEMPLATE.format(zero_t=repr(_ZERO_THRESHOLD), trees="\n".join(out),
                                funcs=", ".join(funcs))

    def _emit_tree(self, t: int, lines: list[str], indent: int) -> None:
        a = self.a
        b, e = int(a["tree_offsets"][t]), int(a["tree_offsets"][t + 1])
        col = int(a["tree_output"][t])
        weighted = a["tree_weight"].size > 0
        w = float(a["tree_weight"][t]) if weighted else 1.0
        n_local = e - b
        count = 0
        # Iterative pre-order walk; "else" markers keep the nesting right for deep trees.
        stack: list[tuple[str, int, int]] = [("node", 0, indent)]
        while stack:
            kind, loc, ind = stack.pop()
            pad = "    " * ind
            if kind == "else":
                lines.append(f"{pad}else:")
                continue
            count += 1
            if count > n_local or not 0 <= loc < n_local:
                raise CompileError("tree structure invalid for the JIT engine")
            if ind - indent > MAX_DEPTH:
                raise CompileError(f"tree {t} is deeper than {MAX_DEPTH} levels: too deep for "
                                   "the JIT engine (use engine='native')")
            g = b + loc
            if int(a["feature"][g]) < 0:
                vals = self.leaf_values(g, w, weighted)
                base = self.n_leaf
                self.leaves.append(vals)
                self.n_leaf += vals.size
                cols = [col] if self.leaf_dim == 1 else list(range(self.K))
                stmts = []
                for j, k in enumerate(cols):
                    # float64: an exact literal; float32: read from the float32 array, so
                    # the addition happens in float32 as in the C++ engine.
                    v = f"LV[{base + j}]" if self.acc32 else _f(float(vals[j]))
                    stmts.append(f"a{k} += {v}")
                lines.append(pad + "; ".join(stmts))
                continue
            lines.append(f"{pad}if {self.cond(g)}:")
            stack.append(("node", int(a["right"][g]), ind + 1))
            stack.append(("else", 0, ind))
            stack.append(("node", int(a["left"][g]), ind + 1))

    def leaf_array(self) -> np.ndarray:
        lv = np.concatenate(self.leaves) if self.leaves else np.zeros(0)
        return lv.astype(np.float32) if self.acc32 else lv.astype(np.float64)


_PREP = {
    # LightGBM reads |x| <= kZeroThreshold as 0.0 (it drops them from the sparse row).
    "lightgbm": "x{f} = X[i, {f}]; x{f} = 0.0 if abs(x{f}) <= ZERO_T else x{f}",
    "float32": "x{f} = np.float64(np.float32(X[i, {f}]))",
    "float64": "x{f} = X[i, {f}]",
}

_TEMPLATE = '''# Generated by forgeline.models.trees_jit; regenerated from the model arrays, never edited.
import os
import numpy as np
from numba import njit

_HERE = os.path.dirname(os.path.abspath(__file__))
LV = np.load(os.path.join(_HERE, "leaves.npy"))
BITS = np.load(os.path.join(_HERE, "bits.npy"))
ZERO_T = {zero_t}
nan = float("nan")
inf = float("inf")


@njit(cache=True, nogil=True, inline="always")
def _zero_left(v, thr, nan_left, default_left):
    if v != v:
        return nan_left
    if v == 0.0:
        return default_left
    return v <= thr


@njit(cache=True, nogil=True, inline="always")
def _cat_left(v, bits, off, nw, nan_left, member_left, invalid_left, rule):
    if v != v:
        return nan_left
    if rule == 0:
        negative = v <= -1.0
    else:
        negative = v < 0.0
    if rule == 2 and v != np.trunc(v):
        negative = True
    if negative or not (v < 32.0 * nw):
        return invalid_left
    c = np.uint32(max(v, 0.0))
    member = (bits[off + (c >> np.uint32(5))] >> (c & np.uint32(31))) & np.uint32(1)
    return (member != 0) == member_left


{trees}

FUNCS = ({funcs},)
'''


_POOL = None


def _pool(n: int):
    global _POOL
    with _LOCK:
        if _POOL is None or _POOL._max_workers < n:
            from concurrent.futures import ThreadPoolExecutor

            _POOL = ThreadPoolExecutor(max_workers=n, thread_name_prefix="forgeline-jit")
        return _POOL


def _import_numba():
    try:
        import numba  # noqa: F401
    except ImportError as exc:
        raise CompileError("the JIT tree engine needs numba: pip install 'forgeline[jit]' "
                           "(or use engine='native')") from exc


def is_cached(settings: dict, n_features: int, arrays: dict, cache_dir=None) -> bool:
    """Whether compiled code for this model is already in the cache (no compile needed)."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = root / model_key(settings, n_features, arrays)
    return (path / "model.py").exists() and any((path / "__pycache__").glob("*.nbi"))


class JitEnsemble:
    """A tree ensemble compiled by Numba into code specialised to its trees.

    Built by :meth:`forgeline.models.trees.TreeEnsemble.set_engine`; never stored in bundles.

    Parameters
    ----------
    settings, n_features, arrays
        The TreeEnsemble's settings, feature count and node arrays.
    cache_dir : path-like, optional
        Cache root (default :func:`default_cache_dir`). The compiled code lives in
        ``<cache_dir>/<model hash>/``.

    Attributes
    ----------
    key : str
        Hash of the model that names its cache directory.
    compile_seconds : float
        Time spent generating and compiling (or loading from cache) on construction.
    cached : bool
        Whether the machine code came from the on-disk cache.

    Raises
    ------
    CompileError
        Without numba, or for models the generator does not handle (more than
        ``MAX_OUTPUTS`` outputs, trees deeper than ``MAX_DEPTH``).
    """

    def __init__(self, settings: dict, n_features: int, arrays: dict, cache_dir=None):
        import time

        _import_numba()
        K = int(settings["n_outputs"])
        if K > MAX_OUTPUTS:
            raise CompileError(f"the JIT tree engine supports at most {MAX_OUTPUTS} outputs, "
                               f"this model has {K} (use engine='native')")
        t = time.perf_counter()
        self.key = model_key(settings, n_features, arrays)
        self.n_features = n_features
        self.n_outputs = K
        self._divisor = float(settings["divisor"])
        self._base = np.ascontiguousarray(arrays["base"], dtype=np.float64)
        self._acc_dtype = np.float32 if settings["accumulate"] == "float32" else np.float64
        root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.path = root / self.key
        with _LOCK:
            mod = _LOADED.get(str(self.path))
            if mod is None:
                self.cached = is_cached(settings, n_features, arrays, cache_dir)
                if not (self.path / "model.py").exists():
                    self._write(settings, n_features, arrays)
                mod = self._load()
                # The functions have explicit signatures: importing the module compiled
                # them (or loaded them from the cache).
                _LOADED[str(self.path)] = mod
            else:
                self.cached = True
        self._mod = mod
        self.compile_seconds = time.perf_counter() - t

    def _write(self, settings, n_features, arrays) -> None:
        import shutil
        import tempfile

        gen = _Gen(settings, n_features, arrays)
        src = gen.source()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.path.parent))
        try:
            np.save(tmp / "leaves.npy", gen.leaf_array())
            bits = np.ascontiguousarray(arrays["cat_bits"], dtype=np.uint32)
            np.save(tmp / "bits.npy", bits if bits.size else np.zeros(1, dtype=np.uint32))
            (tmp / "model.py").write_text(src)
            try:
                os.replace(tmp, self.path)  # atomic: another process may race us
            except OSError:
                if not (self.path / "model.py").exists():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _load(self):
        name = f"_forgeline_jit_{self.key}"
        spec = importlib.util.spec_from_file_location(name, self.path / "model.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod  # numba's cache locator needs an importable module
        try:
            spec.loader.exec_module(mod)
        except Exception as exc:
            sys.modules.pop(name, None)
            raise CompileError(f"could not load the JIT tree code in {self.path}: {exc}") from exc
        return mod

    def _run(self, mod, M, base_margin, divisor, n_threads=1):
        n = M.shape[0]
        acc = np.empty((n, self.n_outputs), dtype=self._acc_dtype)
        if base_margin is not None:
            acc[...] = base_margin.reshape(n, self.n_outputs)
        else:
            acc[...] = self._base
        funcs = mod.FUNCS

        def block(b0):
            b1 = min(n, b0 + BLOCK_ROWS)
            # float64 blocks only (one compiled signature); float32 -> float64 is exact.
            Mb = np.ascontiguousarray(M[b0:b1], dtype=np.float64)
            ab = acc[b0:b1]
            for fn in funcs:  # tree order: the summation order of the C++ engine
                fn(Mb, ab, 0, b1 - b0)

        starts = range(0, n, BLOCK_ROWS)
        if n_threads <= 1 or n <= BLOCK_ROWS:
            for b0 in starts:
                block(b0)
        else:
            # Rows are independent, so any assignment of blocks to threads gives the same bits.
            list(_pool(n_threads).map(block, starts))
        out = acc.astype(np.float64)
        if divisor > 0.0:
            out /= divisor
        return out

    def predict(self, M: np.ndarray, base_margin, n_threads: int, divide: bool) -> np.ndarray:
        """Raw margins (n, n_outputs) for a C-contiguous float32/float64 matrix."""
        threads = n_threads if n_threads > 0 else (os.cpu_count() or 1)
        return self._run(self._mod, M, base_margin, self._divisor if divide else 0.0, threads)
