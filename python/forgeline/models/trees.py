"""Native tree ensembles: one model class for LightGBM, XGBoost and scikit-learn trees.

A :class:`TreeEnsemble` is plain data (node arrays plus a few settings) evaluated by the C++
engine in ``cpp/src/trees.cpp``. On CPUs with AVX-512 (checked at run time) batches use a
QuickScorer kernel (``cpp/src/trees_qs.cpp``) for every tree with at most 64 leaves, no
categorical or LightGBM Zero-missing split and no NaN / +inf threshold: 16 rows go through a
tree together, as 64-bit leaf sets AND-ed in registers. Other trees are walked in the same
pass, so each row still adds its trees in the source library's order and results are
bit-identical to the walk (and independent of the thread count). One-row calls use a
per-tree AVX-512 version (float32 values, at most 64 features; a float64 row whose values
are all float32 numbers counts) or a scalar per-feature version. Importers (:mod:`forgeline.models.lightgbm`,
:mod:`~forgeline.models.xgboost`, :mod:`~forgeline.models.sklearn_trees`) build one with
:func:`build_ensemble`; bundles rebuild it with :meth:`TreeEnsemble.from_parts`.

Node arrays (all trees concatenated, tree-local child indices, root = local node 0):

``feature`` (int32, -1 for leaves), ``threshold`` (float64), ``left``/``right`` (int32),
``flags`` (uint32, bits: NaN-goes-left, categorical, LightGBM zero-missing, default-left,
member-goes-left, invalid-category-goes-left), ``cat_offset``/``cat_nwords`` (int32, into
``cat_bits`` uint32 words), ``leaf_value`` (float64, ``leaf_dim`` per node).
"""

from __future__ import annotations

import numpy as np

from .._native import core, resolve_threads
from ..errors import BundleError, LimitError, SchemaError
from .base import TASKS, NativeModel

NAN_LEFT, CATEGORICAL, ZERO_MISSING, DEFAULT_LEFT, MEMBER_LEFT, INVALID_LEFT = (1, 2, 4, 8, 16, 32)
INPUT_MODES = {"lightgbm": 0, "float32": 1, "float64": 2}
CAT_RULES = {"truncate": 0, "negative": 1, "integral": 2}
LINKS = {"identity": 0, "sigmoid": 1, "softmax": 2, "exp": 3, "sigmoid_f32": 4,
         "softmax_f32": 5, "exp_f32": 6}

#: ``engine="auto"`` keeps the C++ engine when its AVX-512 QuickScorer kernel takes every tree
#: (T1's first 30 trees, 50k rows, one thread: 2.6x less CPU time than the Numba JIT, which
#: is itself about 1.5x faster than the C++ tree walk) and this is True ...
JIT_AUTO_SIMD_FIRST = True
#: ... otherwise it picks the Numba JIT (bit-identical) when the model fits the generator (depth) and this node
#: budget (Numba compiles roughly linearly in nodes: a T1-sized 37,500-node model takes
#: minutes cold) ...
JIT_AUTO_MAX_NODES = 100_000
JIT_AUTO_MAX_DEPTH = 60
#: ... and, unless this is True, only when the compiled code is already in the cache, so
#: that "auto" never starts a compile of seconds to minutes behind the caller's back.
JIT_AUTO_COMPILE = False

#: Safety limits for imported and loaded ensembles (bundles are untrusted input).
MAX_NODES = 50_000_000
MAX_TREES = 1_000_000
MAX_CAT_WORDS = 10_000_000

_ARRAYS = {
    "tree_offsets": np.int64, "tree_output": np.int32, "tree_weight": np.float64,
    "feature": np.int32, "threshold": np.float64, "left": np.int32, "right": np.int32,
    "flags": np.uint32, "cat_offset": np.int32, "cat_nwords": np.int32,
    "cat_bits": np.uint32, "leaf_value": np.float64, "base": np.float64,
}
_META_KEYS = ("input_mode", "cat_rule", "accumulate", "xgb_less_than", "divisor", "leaf_dim",
              "link", "link_param", "n_outputs")


class TreeEnsemble(NativeModel):
    """A fitted tree ensemble evaluated natively, with the source library's exact semantics.

    Build one with :func:`forgeline.models.import_model` (LightGBM, XGBoost, scikit-learn)
    rather than directly.

    Attributes
    ----------
    feature_names, task, classes_, n_outputs, source
        See :class:`~forgeline.models.base.NativeModel`.
    settings : dict
        Engine settings: ``input_mode`` ("lightgbm", "float32", "float64"), ``cat_rule``,
        ``accumulate`` ("float64"/"float32"), ``divisor`` (RF averaging), ``leaf_dim``,
        ``link`` and ``link_param`` (raw margin -> prediction), ``xgb_less_than``.
    """

    kind = "tree_ensemble"

    def __init__(self, *, feature_names, task, settings, arrays, classes=None, source=None,
                 extra=None):
        self.feature_names = [str(f) for f in feature_names]
        if task not in TASKS:
            raise BundleError(f"unknown task {task!r}")
        self.task = task
        self.settings = dict(settings)
        self.n_outputs = int(self.settings["n_outputs"])
        self.classes_ = None if classes is None else np.asarray(classes)
        self.source = dict(source or {})
        self.extra = dict(extra or {})
        self._arrays = {k: np.ascontiguousarray(arrays[k], dtype=dt) for k, dt in _ARRAYS.items()}
        _check_limits(self._arrays)
        self._link = LINKS[self.settings["link"]]
        self._link_param = float(self.settings.get("link_param", 1.0))
        cfg = {
            "input_mode": INPUT_MODES[self.settings["input_mode"]],
            "cat_rule": CAT_RULES[self.settings["cat_rule"]],
            "accumulate_f32": self.settings["accumulate"] == "float32",
            "xgb_less_than": bool(self.settings["xgb_less_than"]),
            "n_features": len(self.feature_names),
            "n_outputs": self.n_outputs,
            "leaf_dim": int(self.settings["leaf_dim"]),
            "divisor": float(self.settings["divisor"]),
            "link": self._link,
            "link_param": self._link_param,
            "divide_raw": bool(self.settings.get("divide_raw", True)),
        }
        try:
            self._core = core.TreeEnsembleCore(cfg, self._arrays)
        except (ValueError, RuntimeError, MemoryError) as exc:
            raise BundleError(f"invalid tree ensemble: {exc}") from exc
        self._jit = None
        self.engine = "native"

    # -- engine ------------------------------------------------------------------------
    def set_engine(self, engine: str = "auto", *, cache_dir=None) -> TreeEnsemble:
        """Choose the batch engine: the C++ interpreter or Numba code specialised to this model.

        Parameters
        ----------
        engine : {"auto", "native", "jit"}
            ``"native"``: the C++ engine (the default; no compile, no numba).
            ``"jit"``: generate and compile code for these trees with Numba
            (:mod:`forgeline.models.trees_jit`), cached on disk by a hash of the model;
            raises :class:`~forgeline.CompileError` without numba.
            ``"auto"``: the JIT (faster per row, see bench/README.md) when numba is
            installed, the model has at most ``JIT_AUTO_MAX_NODES`` nodes and depth
            ``JIT_AUTO_MAX_DEPTH`` (compile-time budget and generator limit), *and* its
            compiled code is already cached (or ``JIT_AUTO_COMPILE`` allows compiling now).
            Otherwise the C++ engine. Both engines give bit-identical results.
        cache_dir : path-like, optional
            JIT cache root; default ``$FORGELINE_JIT_CACHE`` or the user cache dir
            (``~/.cache/forgeline/jit``).

        Returns
        -------
        TreeEnsemble
            ``self``; :attr:`engine` says which engine was picked and, for the JIT,
            :attr:`jit_info` gives the compile time and whether it came from the cache.
        """
        from . import trees_jit

        if engine not in ("auto", "native", "jit"):
            raise ValueError(f"engine must be 'auto', 'native' or 'jit', got {engine!r}")
        if engine == "native" or (engine == "auto" and not self._jit_pays(cache_dir)):
            self._jit, self.engine = None, "native"
            return self
        self._jit = trees_jit.JitEnsemble(self.settings, self.n_features, self._arrays,
                                          cache_dir=cache_dir)
        self.engine = "jit"
        return self

    def _jit_pays(self, cache_dir) -> bool:
        from . import trees_jit as tj

        if not tj.numba_available() or self.n_outputs > tj.MAX_OUTPUTS:
            return False
        if JIT_AUTO_SIMD_FIRST and self._core.simd and self._core.n_qs_trees == self.n_trees:
            return False
        if self.n_nodes > JIT_AUTO_MAX_NODES or self._max_depth() > JIT_AUTO_MAX_DEPTH:
            return False
        return JIT_AUTO_COMPILE or tj.is_cached(self.settings, self.n_features, self._arrays,
                                                cache_dir)

    def _max_depth(self) -> int:
        d = self.__dict__.get("_depth")
        if d is None:
            d = _max_depth(self._arrays)
            self.__dict__["_depth"] = d
        return d

    @property
    def jit_info(self) -> dict | None:
        """``{"key", "path", "compile_seconds", "cached"}`` of the JIT engine, or None."""
        j = self._jit
        if j is None:
            return None
        return {"key": j.key, "path": str(j.path), "compile_seconds": j.compile_seconds,
                "cached": j.cached}

    # -- info --------------------------------------------------------------------------
    @property
    def n_trees(self) -> int:
        """Number of trees."""
        return int(self._core.n_trees)

    @property
    def n_nodes(self) -> int:
        """Number of nodes (leaves included)."""
        return int(self._core.n_nodes)

    def __repr__(self) -> str:
        lib = self.source.get("library", "?")
        return (f"TreeEnsemble({lib}, task={self.task!r}, trees={self.n_trees}, "
                f"features={self.n_features}, outputs={self.n_outputs})")

    # -- scoring -----------------------------------------------------------------------
    def _matrix(self, X):
        if isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype in (np.float32, np.float64):
            if X.shape[1] != self.n_features:
                raise SchemaError(f"expected {self.n_features} feature columns, got {X.shape[1]}",
                                  problems={"<shape>": f"{X.shape[1]} != {self.n_features}"})
            return X
        if isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype.kind not in "fiub":
            raise SchemaError(f"expected a numeric matrix, got dtype {X.dtype}",
                              problems={"<dtype>": str(X.dtype)})
        if isinstance(X, np.ndarray) and X.ndim != 2:
            raise SchemaError(f"expected a 2-D input, got {X.ndim} dimension(s)",
                              problems={"<shape>": str(X.shape)})
        return self.as_matrix(X, dtype=np.float64)

    def _raw(self, X, n_threads, base_margin=None, trees=None, linked=False):
        M = self._matrix(X)
        t0, t1 = (0, -1) if trees is None else trees
        if base_margin is not None:
            base_margin = np.ascontiguousarray(base_margin, dtype=np.float64)
            if base_margin.size != M.shape[0] * self.n_outputs:
                raise SchemaError(f"base_margin needs {M.shape[0] * self.n_outputs} values, "
                                  f"got {base_margin.size}")
        divide = linked or self.settings.get("divide_raw", True)
        if M.shape[0] == 1 and trees is None and base_margin is None:
            # One row: the latency path (no thread pool, no GIL round trip).
            return self._core.predict_row(M[0], 0, 1.0, divide).reshape(1, -1)
        if self._jit is not None and trees is None and M.shape[0] > 1:
            if not M.flags.c_contiguous:
                M = np.ascontiguousarray(M)
            return self._jit.predict(M, base_margin, resolve_threads(n_threads), divide)
        return self._core.predict(M, base_margin, t0, t1, resolve_threads(n_threads), divide)

    def predict_raw(self, X, n_threads: int | None = None, *, base_margin=None) -> np.ndarray:
        """Raw margins: shape (n,) when ``n_outputs == 1``, else (n, n_outputs).

        Parameters
        ----------
        X
            Anything :func:`forgeline._frame.to_frame` accepts, or a 2-D float array.
        n_threads
            Threads to use; None means all cores. Results do not depend on it.
        base_margin
            Optional per-row starting margins (XGBoost's ``base_margin``), replacing the
            model's base score.
        """
        out = self._raw(X, n_threads, base_margin)
        return out[:, 0] if self.n_outputs == 1 else out

    def _linked(self, X, n_threads, base_margin=None):
        if (base_margin is None and type(X) is np.ndarray and X.ndim == 2 and X.shape[0] == 1
                and X.shape[1] == self.n_features and X.dtype in (np.float32, np.float64)):
            # One row (the Scorer's 1-row block): one native call, link included.
            return self._core.predict_one(X[0], True).reshape(1, -1)
        out = self._raw(X, n_threads, base_margin, linked=True)
        if self._link:
            core.tree_apply_link(out, self._link, self._link_param, resolve_threads(n_threads))
        return out

    def predict_proba(self, X, n_threads: int | None = None, *, base_margin=None) -> np.ndarray:
        """Class probabilities (n, n_classes), computed with the source library's link."""
        if self.task not in ("binary", "multiclass"):
            raise NotImplementedError(f"predict_proba needs a classifier, this is {self.task}")
        out = self._linked(X, n_threads, base_margin)
        if out.shape[1] == 1:
            p = out[:, 0]
            proba = np.empty((len(p), 2))  # np.stack costs more than the 1-row model call
            proba[:, 1] = p
            np.subtract(1.0, p, out=proba[:, 0])
            return proba
        return out

    def predict(self, X, n_threads: int | None = None, *, base_margin=None) -> np.ndarray:
        """Labels (from ``classes_``) for classifiers, linked values otherwise.

        Labels use the source library's decision rule (``extra["decision"]``): argmax of
        the probabilities (LightGBM, sklearn forests), ``raw >= 0`` / ``raw > 0`` then argmax
        of the raw margins (sklearn GradientBoosting / HistGradientBoosting), or
        ``p > 0.5`` (XGBoost), which differ only on exact ties.
        """
        if self.task in ("binary", "multiclass") and self.classes_ is not None:
            rule = self.extra.get("decision", "argmax_proba")
            if rule in ("raw_ge0", "raw_gt0", "argmax_raw"):
                raw = self._raw(X, n_threads, base_margin, linked=True)
                if raw.shape[1] == 1:
                    idx = (raw[:, 0] >= 0) if rule == "raw_ge0" else (raw[:, 0] > 0)
                    return self.classes_[idx.astype(np.intp)]
                return self.classes_[np.argmax(raw, axis=1)]
            proba = self.predict_proba(X, n_threads, base_margin=base_margin)
            if rule == "proba_gt_half" and proba.shape[1] == 2:
                return self.classes_[(proba[:, 1] > 0.5).astype(np.intp)]
            return self.classes_[np.argmax(proba, axis=1)]
        out = self._linked(X, n_threads, base_margin)
        return out[:, 0] if self.n_outputs == 1 else out

    def predict_contrib(self, X, n_threads: int | None = None):
        """Feature contributions (LightGBM ``pred_contrib`` / XGBoost ``pred_contribs``).

        Not supported: always raises :class:`~forgeline.UnsupportedModelError`.
        """
        from ..errors import UnsupportedModelError

        raise UnsupportedModelError("pred_contrib (TreeSHAP feature contributions) is not supported "
                                    "by forgeline tree ensembles; use the source library")

    def predict_one(self, x, output: str = "value") -> np.ndarray:
        """Score one row (a 1-D float array) with minimal overhead: no thread pool, no frame.

        ``output="raw"`` gives raw margins, ``"value"`` the linked values (probability of the
        positive class for binary models, class probabilities for multiclass).
        """
        try:
            # One native call: no frame, no thread pool, no GIL release, only the output
            # array allocated (bench: T1 single-row).
            return self._core.predict_one(x, output != "raw")
        except (ValueError, TypeError) as exc:
            raise SchemaError(f"predict_one: {exc}") from exc

    # -- persistence -----------------------------------------------------------------
    def to_parts(self):
        """JSON-safe metadata and numeric arrays that rebuild this model."""
        meta = {
            "kind": self.kind,
            "feature_names": list(self.feature_names),
            "task": self.task,
            "settings": dict(self.settings),
            "classes": None if self.classes_ is None else self.classes_.tolist(),
            "source": dict(self.source),
            "extra": dict(self.extra),
        }
        return meta, {k: v.copy() for k, v in self._arrays.items()}

    @classmethod
    def from_parts(cls, meta, arrays):
        """Rebuild from :meth:`to_parts` output, validating everything (raises BundleError)."""
        try:
            if not isinstance(meta, dict) or meta.get("kind") != cls.kind:
                raise BundleError("not a tree_ensemble part")
            settings = meta["settings"]
            if not isinstance(settings, dict) or any(k not in settings for k in _META_KEYS):
                raise BundleError("tree_ensemble settings incomplete")
            if settings["input_mode"] not in INPUT_MODES or settings["cat_rule"] not in CAT_RULES \
                    or settings["link"] not in LINKS or settings["accumulate"] not in ("float32", "float64"):
                raise BundleError("tree_ensemble settings have unknown values")
            names = meta["feature_names"]
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise BundleError("feature_names must be a list of strings")
            arr = {}
            for k, dt in _ARRAYS.items():
                a = arrays.get(k) if isinstance(arrays, dict) else None
                if not isinstance(a, np.ndarray) or a.ndim != 1 or a.dtype.kind not in "iuf":
                    raise BundleError(f"tree_ensemble array {k!r} missing or not a 1-D numeric array")
                if np.dtype(dt).kind in "iu" and a.dtype.kind == "f":
                    raise BundleError(f"tree_ensemble array {k!r} must be integer")
                arr[k] = a
            classes = meta.get("classes")
            if classes is not None and not isinstance(classes, list):
                raise BundleError("classes must be a list")
            for k in ("leaf_dim", "n_outputs"):
                v = settings.get(k, 1)
                if type(v) is not int or not 1 <= v <= 1 << 20:
                    raise BundleError(f"tree_ensemble setting {k!r} must be an int in [1, 2**20]")
            if not isinstance(settings.get("divide_raw", True), bool) or \
                    not isinstance(settings["xgb_less_than"], bool):
                raise BundleError("tree_ensemble settings divide_raw/xgb_less_than must be booleans")
            return cls(feature_names=names, task=meta["task"], settings=settings, arrays=arr,
                       classes=classes, source=meta.get("source") or {},
                       extra=meta.get("extra") or {})
        except LimitError as exc:
            raise BundleError(str(exc)) from exc
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            if isinstance(exc, BundleError):
                raise
            raise BundleError(f"invalid tree_ensemble parts: {exc}") from exc


def _check_limits(a: dict) -> None:
    n_nodes = a["feature"].size
    n_trees = a["tree_output"].size
    if n_nodes > MAX_NODES:
        raise LimitError(f"tree ensemble has {n_nodes} nodes, above the limit {MAX_NODES}")
    if n_trees > MAX_TREES:
        raise LimitError(f"tree ensemble has {n_trees} trees, above the limit {MAX_TREES}")
    if a["cat_bits"].size > MAX_CAT_WORDS:
        raise LimitError(f"categorical bitsets have {a['cat_bits'].size} words, above {MAX_CAT_WORDS}")


def _max_depth(a: dict) -> int:
    """Depth of the deepest tree (a leaf-only tree has depth 0)."""
    feat, left, right, offs = a["feature"], a["left"], a["right"], a["tree_offsets"]
    depth = np.zeros(feat.size, dtype=np.int64)
    best = 0
    for t in range(offs.size - 1):
        b, e = int(offs[t]), int(offs[t + 1])
        stack = [0]
        depth[b] = 0
        while stack:
            loc = stack.pop()
            g = b + loc
            d = int(depth[g])
            best = max(best, d)
            if feat[g] >= 0:
                for c in (int(left[g]), int(right[g])):
                    depth[b + c] = d + 1
                    stack.append(c)
    return best


class TreeBuilder:
    """Accumulates trees (tree-local node lists) into the flat arrays of a TreeEnsemble."""

    def __init__(self, leaf_dim: int = 1):
        self.leaf_dim = leaf_dim
        self.offsets = [0]
        self.outputs: list[int] = []
        self.weights: list[float] = []
        self.cols: dict[str, list] = {k: [] for k in
                                      ("feature", "threshold", "left", "right", "flags",
                                       "cat_offset", "cat_nwords", "leaf_value")}
        self.cat_bits: list[np.ndarray] = []
        self.n_cat_words = 0

    def add_bitset(self, words) -> tuple[int, int]:
        """Store a uint32 bitset; returns (offset, n_words)."""
        w = np.asarray(words, dtype=np.uint32)
        off = self.n_cat_words
        self.cat_bits.append(w)
        self.n_cat_words += w.size
        if self.n_cat_words > MAX_CAT_WORDS:
            raise LimitError(f"categorical bitsets exceed {MAX_CAT_WORDS} words")
        return off, int(w.size)

    def add_tree(self, feature, threshold, left, right, flags, leaf_value, output=0, weight=1.0,
                 cat_offset=None, cat_nwords=None):
        """Append one tree given as arrays over its nodes (leaves: feature == -1)."""
        n = len(feature)
        if self.offsets[-1] + n > MAX_NODES:
            raise LimitError(f"tree ensemble exceeds the limit of {MAX_NODES} nodes")
        if len(self.outputs) + 1 > MAX_TREES:
            raise LimitError(f"tree ensemble exceeds the limit of {MAX_TREES} trees")
        c = self.cols
        c["feature"].append(np.asarray(feature, dtype=np.int32))
        c["threshold"].append(np.asarray(threshold, dtype=np.float64))
        c["left"].append(np.asarray(left, dtype=np.int32))
        c["right"].append(np.asarray(right, dtype=np.int32))
        c["flags"].append(np.asarray(flags, dtype=np.uint32))
        zeros = np.zeros(n, dtype=np.int32)
        c["cat_offset"].append(zeros if cat_offset is None else np.asarray(cat_offset, dtype=np.int32))
        c["cat_nwords"].append(zeros if cat_nwords is None else np.asarray(cat_nwords, dtype=np.int32))
        c["leaf_value"].append(np.asarray(leaf_value, dtype=np.float64).reshape(-1))
        self.offsets.append(self.offsets[-1] + n)
        self.outputs.append(int(output))
        self.weights.append(float(weight))

    def arrays(self, base, use_weights: bool = False) -> dict:
        def cat(key, dt):
            parts = self.cols[key]
            return np.concatenate(parts).astype(dt) if parts else np.zeros(0, dtype=dt)
        out = {k: cat(k, _ARRAYS[k]) for k in self.cols}
        out["tree_offsets"] = np.asarray(self.offsets, dtype=np.int64)
        out["tree_output"] = np.asarray(self.outputs, dtype=np.int32)
        out["tree_weight"] = (np.asarray(self.weights, dtype=np.float64) if use_weights
                              else np.zeros(0, dtype=np.float64))
        out["cat_bits"] = (np.concatenate(self.cat_bits).astype(np.uint32) if self.cat_bits
                           else np.zeros(0, dtype=np.uint32))
        out["base"] = np.asarray(base, dtype=np.float64).reshape(-1)
        return out


def settings(*, input_mode, n_outputs, link="identity", link_param=1.0, accumulate="float64",
             cat_rule="negative", xgb_less_than=False, divisor=0.0, leaf_dim=1) -> dict:
    """The settings dict of a TreeEnsemble, with defaults."""
    return {"input_mode": input_mode, "cat_rule": cat_rule, "accumulate": accumulate,
            "xgb_less_than": bool(xgb_less_than), "divisor": float(divisor),
            "leaf_dim": int(leaf_dim), "link": link, "link_param": float(link_param),
            "n_outputs": int(n_outputs)}


def bits_from_ints(values, n_words: int | None = None) -> np.ndarray:
    """A uint32 bitset with the given non-negative integers set."""
    vals = np.asarray(values, dtype=np.int64)
    if vals.size and vals.min() < 0:
        raise ValueError("negative category in a bitset")
    nw = n_words if n_words is not None else (int(vals.max()) // 32 + 1 if vals.size else 0)
    words = np.zeros(nw, dtype=np.uint32)
    for v in vals.tolist():
        words[v >> 5] |= np.uint32(1 << (v & 31))
    return words
