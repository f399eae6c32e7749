"""Scorer: a compiled plan (schema + native feature program + native model) ready to score.

A Scorer is immutable after construction and safe to share between threads: every call
validates its own input, and the native kernels release the GIL. Scoring runs over row
chunks of ``chunk_rows`` rows, so memory stays bounded by the chunk, not the input.
"""

from __future__ import annotations

import json
import threading

import numpy as np

from . import _frame
from ._native import core
from ._version import __version__
from .errors import BundleError, CompileError, DataError
from .plan import FeaturePlan
from .schema import Schema

#: Upper bound on rows per scoring chunk. The actual chunk is sized so that its feature
#: block (rows x features doubles) stays within CHUNK_BYTES, i.e. in cache, between the
#: feature program writing it and the model reading it.
CHUNK_ROWS = 65_536
CHUNK_BYTES = 4 << 20
_POOL = None
_POOL_LOCK = threading.Lock()


def _pool(n: int):
    """A process-wide thread pool for chunk-parallel scoring (kernels release the GIL)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL._max_workers < n:
            from concurrent.futures import ThreadPoolExecutor

            _POOL = ThreadPoolExecutor(max_workers=n, thread_name_prefix="forgeline")
        return _POOL
BUNDLE_KIND = "scorer"
_MISSING = object()
_PLAIN_NUMBERS = (float, int, np.float64, np.float32, np.int64, np.int32)


def _one_row_scalars(X: dict) -> dict | None:
    """The scalars of a dict whose every value is a one-element list, tuple or 1-D array
    (a one-row frame written as columns), else None."""
    out = {}
    for k, v in X.items():
        if type(v) is np.ndarray:
            if v.ndim != 1 or v.shape[0] != 1:
                return None
        elif type(v) not in (list, tuple) or len(v) != 1:
            return None
        out[k] = v[0]
    return out


class Scorer:
    """Score data with a compiled model. Build one with :func:`forgeline.compile` or
    :func:`forgeline.load`.

    Attributes
    ----------
    schema : Schema
        Input columns, kinds and vocabularies, checked on every call.
    features : FeaturePlan
        The native preprocessing program.
    model : NativeModel or None
        The native model; None for a transform-only scorer.
    profile : forgeline.Profile or None
        Reference profile fitted on the compile sample (inputs and model outputs).
    metadata : dict
        forgeline version, source library and version, creation time, sample size, feature
        names and ``classes_``.
    """

    def __init__(self, schema: Schema, features: FeaturePlan, model=None, *, profile=None,
                 metadata: dict | None = None, folded=None, tree_fold=None):
        self.schema = schema
        self.features = features
        self.model = model
        # The model folded into the feature plan (forgeline._fold), or None: predictions
        # then run as one fused native pass with no feature matrix.
        self.folded = folded
        # Monotone maps folded into the thresholds of a tree model (forgeline._fold_trees),
        # or None: predictions then run its shorter plan and rewritten model.
        self.tree_fold = tree_fold
        self.profile = profile
        self.metadata = dict(metadata or {})
        self._monitor = None
        self._monitor_lock = threading.Lock()

    # ------------------------------------------------------------------ properties
    @property
    def classes_(self):
        return None if self.model is None else self.model.classes_

    @property
    def feature_names_out(self) -> list[str]:
        return list(self.features.feature_names)

    def __repr__(self) -> str:
        model = "transform-only" if self.model is None else type(self.model).__name__
        return (f"Scorer({model}; {len(self.schema)} input columns -> "
                f"{self.features.n_features} features; source={self.metadata.get('source')})")

    # ------------------------------------------------------------------ scoring
    def _validate(self, X) -> _frame.Frame:
        return self.schema.validate(X)

    def _chunk_rows(self) -> int:
        per_row = 8 * max(self._scoring()[0].n_features, 1)  # the plan predictions run
        return int(min(CHUNK_ROWS, max(512, CHUNK_BYTES // per_row)))

    def _scoring(self):
        """(feature plan, model) that predictions run: the folded tree plan if any."""
        tf = self.tree_fold
        return (self.features, self.model) if tf is None else (tf.features, tf.model)

    def _map_chunks(self, frame: _frame.Frame, fn, n_threads, features=None) -> list:
        """fn(feature_block, n_threads) over cache-sized row chunks, in row order.

        Chunks run on a thread pool, each single-threaded, so a chunk's features are still
        in that core's cache when its model runs. Every chunk is computed the same way
        whatever the thread count, so results do not depend on it.
        """
        n = frame.n_rows
        step = self._chunk_rows()
        features = self.features if features is None else features
        bounds = [(a, min(n, a + step)) for a in range(0, max(n, 1), step)]
        threads = resolve_threads_count(n_threads)
        if len(bounds) == 1 or threads == 1:
            return [fn(features.run(frame, n_threads, a, b), n_threads) for a, b in bounds]

        def one(ab):
            a, b = ab
            return fn(features.run(frame, 1, a, b), 1)
        return list(_pool(threads).map(one, bounds))

    def _require_model(self, what: str):
        if self.model is None:
            raise CompileError(f"this Scorer has no model (transform-only); {what} is not available")
        return self.model

    def set_engine(self, engine: str = "auto", *, cache_dir=None) -> Scorer:
        """Choose the model's batch engine (tree ensembles: ``"auto"``, ``"native"``, ``"jit"``).

        See :meth:`forgeline.models.trees.TreeEnsemble.set_engine` for the rule ``"auto"``
        follows. Models without a JIT engine accept ``"auto"`` and ``"native"`` and keep
        their native engine; ``"jit"`` raises :class:`~forgeline.CompileError` for them.
        The choice is not saved in bundles. Returns ``self``.
        """
        model = self._require_model("set_engine")
        if hasattr(model, "set_engine"):
            model.set_engine(engine, cache_dir=cache_dir)
            if self.tree_fold is not None:
                self.tree_fold.model.set_engine(engine, cache_dir=cache_dir)
        elif engine == "jit":
            raise CompileError(f"{type(model).__name__} has no JIT engine")
        elif engine not in ("auto", "native"):
            raise ValueError(f"engine must be 'auto', 'native' or 'jit', got {engine!r}")
        return self

    def _row_spec(self):
        spec = self.__dict__.get("_row_spec_cache")
        if spec is None:
            spec = []
            for name, kind in self.features.inputs:
                vocab = None
                if kind == _frame.CATEGORICAL:
                    vocab = {v: i for i, v in enumerate(self.schema[name].vocabulary or ())}
                spec.append((name, kind, vocab))
            self.__dict__["_row_spec_cache"] = spec
        return spec

    def _array_row_index(self):
        """Column positions of the plan's inputs in a numpy array (whose columns are named
        ``x0, x1, ...``), or None when some schema column is not numeric or not so named."""
        spec = self.__dict__.get("_array_row_cache", _MISSING)
        if spec is _MISSING:
            spec = None
            pos = {f"x{j}": j for j in range(len(self.schema))}
            if all(c.kind == _frame.NUMERIC and c.name in pos for c in self.schema):
                idx = [pos[name] for name, _ in self.features.inputs]
                # None: the inputs are the leading columns in order, so a slice (no copy) will do.
                take = None if idx == list(range(len(idx))) else np.asarray(idx, dtype=np.intp)
                spec = (max(pos[c.name] for c in self.schema) + 1, take, len(idx))
            self.__dict__["_array_row_cache"] = spec
        return spec

    def _row_values(self, X) -> np.ndarray | None:
        """The input row (1, n_inputs) for one row given as a mapping of scalars or a
        (1, n) float ndarray: the low-latency path; categorical values become their codes as doubles.

        Returns None when ``X`` is anything else (or needs the general path to report a
        problem), so behaviour is the same as the general path, only faster.
        """
        if type(X) is np.ndarray:
            if X.ndim != 2 or X.shape[0] != 1 or X.dtype.kind != "f":
                return None
            spec = self._array_row_index()
            if spec is None or X.shape[1] < spec[0]:
                return None
            # The general path also widens numeric columns to float64 before the plan runs.
            row = X[:, :spec[2]] if spec[1] is None else X[:, spec[1]]
            return np.ascontiguousarray(row, dtype=np.float64)
        if not isinstance(X, dict) or not X:
            return None
        fast = self._row_values_plain(X)
        if fast is not None:
            return fast
        one = _one_row_scalars(X)
        if one is not None:  # {"col": [v]} / {"col": np.array([v])}: the row's own scalars
            return self._row_values(one)
        vals = []
        for name, kind, vocab in self._row_spec():
            v = X.get(name, _MISSING)
            if v is _MISSING or isinstance(v, (list, tuple, np.ndarray, str)) and kind != _frame.CATEGORICAL:
                return None
            if v is None or (isinstance(v, float) and v != v):
                vals.append(np.nan)
            elif kind == _frame.CATEGORICAL:
                if isinstance(v, (list, tuple, np.ndarray)):
                    return None
                vals.append(vocab.get(v, _frame.UNSEEN_CODE))
            elif kind == _frame.DATETIME:
                return None
            else:
                vals.append(v)
        try:
            return np.array([vals], dtype=np.float64)
        except (TypeError, ValueError):
            return None

    def _pandas_row(self, X) -> np.ndarray | None:
        """:meth:`_row_values_plain` for a one-row pandas DataFrame: reading the row as Python
        scalars costs far less than pulling every column out of pandas."""
        if not _frame._is_pandas_frame(X) or len(X) != 1:
            return None
        cols = X.columns
        if not cols.is_unique or not all(type(c) is str for c in cols):
            return None
        return self._row_values_plain(dict(zip(cols, X.to_numpy(dtype=object)[0])))

    def _row_values_plain(self, X: dict) -> np.ndarray | None:
        """:meth:`_row_values` for the common row: Python/numpy floats and ints in numeric
        columns, strings in categorical ones; None for anything else (the general loop)."""
        plan = self.__dict__.get("_row_plain_cache")
        if plan is None:
            spec = self._row_spec()
            if any(kind not in (_frame.NUMERIC, _frame.CATEGORICAL) for _, kind, _ in spec):
                plan = ()
            else:
                plan = ([name for name, _, _ in spec],
                        [i for i, (_, kind, _) in enumerate(spec) if kind == _frame.NUMERIC],
                        [(i, vocab) for i, (_, kind, vocab) in enumerate(spec)
                         if kind == _frame.CATEGORICAL])
            self.__dict__["_row_plain_cache"] = plan
        if not plan:
            return None
        names, num_idx, cat_idx = plan
        get = X.get
        vals = [get(n, _MISSING) for n in names]
        for i in num_idx:
            if type(vals[i]) not in _PLAIN_NUMBERS:
                return None
        for i, vocab in cat_idx:
            v = vals[i]
            if type(v) is not str:
                return None
            vals[i] = vocab.get(v, _frame.UNSEEN_CODE)
        return np.array([vals], dtype=np.float64)

    def _model_call(self, X, method: str, n_threads, monitor: bool):
        model = self._require_model(method)
        if not monitor:
            row = (self._row_values(X) if isinstance(X, (dict, np.ndarray))
                   else self._pandas_row(X))
            if row is not None:
                if self.folded is not None:
                    z = self.folded.margins_rows(row)
                    if z is not None:
                        from ._fold import finish_row

                        return finish_row(model, z, method)
                feats, smodel = self._scoring()
                block = feats.program().run_rows(row, 1)
                return getattr(smodel, method)(block, n_threads=1)
        if self.folded is not None:
            from ._fastinput import plan_columns

            fast = plan_columns(X, self.schema, self.folded.features.inputs,
                                self.__dict__.setdefault("_vocab_cache", {}), n_threads)
            if fast is not None:
                from ._fold import native_logistic

                link = native_logistic(model, self.folded, method)
                z = self.folded.margins_columns(*fast, n_threads, logistic=link)
                if z is not None:
                    out = z if link else model.finish(z, method)
                    if monitor:
                        self._accumulate(X, out)
                    return out
        frame = self._validate(X)
        if self.folded is not None:
            z = self.folded.margins(frame, n_threads)
            if z is not None:  # None: a non-finite feature; the model's path names it
                out = model.finish(z, method)
                if monitor:
                    self._accumulate(X, out)
                return out
        feats, smodel = self._scoring()
        call = getattr(smodel, method)
        parts = self._map_chunks(frame, lambda block, nt: call(block, n_threads=nt), n_threads,
                                 feats)
        out = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
        if monitor:
            self._accumulate(X, out)
        return out

    def predict(self, X, *, n_threads: int | None = None, monitor: bool = False) -> np.ndarray:
        """Predictions as the source model's ``predict`` gives them (labels for classifiers).

        Parameters
        ----------
        X
            Any input forgeline accepts (pandas, polars, pyarrow, numpy, dict); checked
            against :attr:`schema`.
        n_threads : int, optional
            Native threads (None = all cores). Results do not depend on it.
        monitor : bool
            Also accumulate ``X`` into the current-data profile used by :meth:`drift`.
        """
        return self._model_call(X, "predict", n_threads, monitor)

    def predict_proba(self, X, *, n_threads: int | None = None, monitor: bool = False) -> np.ndarray:
        """Class probabilities, shape (n_rows, n_classes)."""
        return self._model_call(X, "predict_proba", n_threads, monitor)

    def predict_raw(self, X, *, n_threads: int | None = None, monitor: bool = False) -> np.ndarray:
        """Raw margins / decision values before the link function."""
        return self._model_call(X, "predict_raw", n_threads, monitor)

    def transform(self, X, *, n_threads: int | None = None) -> np.ndarray:
        """The feature matrix the model sees (the plan without the model)."""
        frame = self._validate(X)
        return self.features.run(frame, n_threads)

    def score(self, X, *, n_threads: int | None = None, monitor: bool = False):
        """All outputs as a table: ``prediction``, raw margins and class probabilities.

        Returns a pandas DataFrame when ``X`` is one, otherwise a pyarrow Table.
        """
        import pyarrow as pa

        self._require_model("score")
        feats, model = self._scoring()
        frame = self._validate(X)
        is_clf = model.classes_ is not None

        def outputs(block, nt):
            return (model.predict_raw(block, n_threads=nt), model.predict(block, n_threads=nt),
                    model.predict_proba(block, n_threads=nt) if is_clf else None)
        parts = self._map_chunks(frame, outputs, n_threads, feats)
        raw_parts = [p[0] for p in parts]
        pred_parts = [p[1] for p in parts]
        proba_parts = [p[2] for p in parts]
        raw = np.concatenate(raw_parts, axis=0)
        cols = {"prediction": np.concatenate(pred_parts, axis=0)}
        if raw.ndim == 1:
            cols["raw"] = raw
        else:
            for k in range(raw.shape[1]):
                cols[f"raw_{k}"] = raw[:, k]
        if is_clf:
            proba = np.concatenate(proba_parts, axis=0)
            for k, c in enumerate(model.classes_):
                cols[f"proba_{c}"] = proba[:, k]
        if monitor:
            self._accumulate(X, proba if is_clf else cols["prediction"])
        table = pa.table(cols)
        if _frame._module_root(X) == "pandas":
            return table.to_pandas()
        return table

    # ------------------------------------------------------------------ drift
    def profile_frame(self, X) -> _frame.Frame:
        """``X``'s schema columns for profiling: kinds coerced as at scoring, but categories
        kept as their own values (not the schema's codes), so unseen categories are counted
        as themselves by drift statistics."""
        return _frame.to_frame(X, columns=self.schema.names, kinds=self.schema.kinds)

    def _accumulate(self, X, outputs: np.ndarray) -> None:
        from .drift import Profile

        part = Profile.fit(self.profile_frame(X), prediction=_prediction_column(outputs))
        with self._monitor_lock:
            self._monitor = part if self._monitor is None else self._monitor.merge(part)

    @property
    def monitored(self):
        """Profile of all data scored with ``monitor=True`` since the last :meth:`reset_monitor`."""
        return self._monitor

    def reset_monitor(self) -> None:
        with self._monitor_lock:
            self._monitor = None

    def drift(self, current=None, **options):
        """Compare ``current`` (a frame or Profile; default: the data scored with
        ``monitor=True``) against the reference profile. Options go to :func:`forgeline.compare`.
        """
        from .drift import compare

        if self.profile is None:
            raise DataError("this Scorer has no reference profile (compile it with a sample)")
        if current is None:
            current = self._monitor
            if current is None:
                raise DataError("no current data: pass a frame, or score with monitor=True first")
        elif not _is_profile(current):
            frame = self.profile_frame(current)
            pred = None
            if self.model is not None and self.profile_has_prediction():
                outputs = self._model_call(current, "predict_proba" if self.model.classes_ is not None
                                           else "predict", options.get("n_threads"), False)
                pred = _prediction_column(outputs)
            from .drift import Profile

            current = Profile.fit(frame, prediction=pred,
                                  **({"sample_size": options.pop("sample_size")}
                                     if "sample_size" in options else {}))
        return compare(self.profile, current, **options)

    def profile_has_prediction(self) -> bool:
        p = self.profile
        return p is not None and "__prediction__" in getattr(p, "columns", {})

    # ------------------------------------------------------------------ persistence
    def explain_plan(self) -> str:
        """The native ops, one line per group: the plan as compiled (before folding), then,
        when the model was folded into it, the fused plan that predictions run."""
        lines = [f"before folding: {len(self.schema)} input columns -> "
                 f"{self.features.n_features} features -> model"]
        lines += ["  " + line for line in self.features.describe()]
        if self.model is not None:
            lines.append(f"  model: {type(self.model).__name__} ({self.model.task}, "
                         f"{self.model.n_features} features)")
        if self.tree_fold is not None:
            t = self.tree_fold
            lines.append(f"after folding: {len(t.folds)} fold(s) into the trees' splits; the "
                         f"model reads {t.model.n_features} features (was "
                         f"{self.model.n_features}) from this plan:")
            lines += ["  " + line for line in t.describe()]
            lines += ["  " + line for line in t.features.describe()]
        elif self.folded is None:
            lines.append("after folding: not folded (the model reads the feature matrix)")
        else:
            f = self.folded
            lines.append(f"after folding: {len(f.features.groups)} groups -> {f.n_out} margin(s), "
                         f"no feature matrix ({f.folded_ops} affine ops folded into weights)")
            lines += ["  " + line for line in f.describe()]
        return "\n".join(lines)

    def to_parts(self) -> tuple[dict, dict[str, np.ndarray]]:
        fmeta, farrays = self.features.to_parts()
        arrays = {f"features.{k}": v for k, v in farrays.items()}
        body = {"kind": BUNDLE_KIND, "forgeline_version": __version__,
                "schema": self.schema.to_dict(), "features": fmeta,
                "metadata": _json_safe(self.metadata), "model": None, "profile": None}
        if self.model is not None:
            mmeta, marrays = self.model.to_parts()
            body["model"] = mmeta
            arrays.update({f"model.{k}": v for k, v in marrays.items()})
        if self.folded is not None:
            ometa, oarrays = self.folded.to_parts()
            body["folded"] = ometa
            arrays.update({f"folded.{k}": v for k, v in oarrays.items()})
        if self.tree_fold is not None:
            tmeta, tarrays = self.tree_fold.to_parts()
            body["tree_fold"] = tmeta
            arrays.update({f"tree_fold.{k}": v for k, v in tarrays.items()})
        if self.profile is not None:
            pmeta, parrays = self.profile.to_parts()
            body["profile"] = pmeta
            arrays.update({f"profile.{k}": v for k, v in parrays.items()})
        return body, arrays

    @classmethod
    def from_parts(cls, body: dict, arrays: dict[str, np.ndarray], *,
                   allow_code: bool = False) -> Scorer:
        if not isinstance(body, dict) or body.get("kind") != BUNDLE_KIND:
            raise BundleError("bundle does not hold a forgeline Scorer")
        metadata = body.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise BundleError("bundle metadata must be a mapping")

        def sub(prefix):
            return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
        try:
            schema = Schema.from_dict(body["schema"])
        except (KeyError, ValueError) as exc:
            raise BundleError(f"bundle schema is invalid: {exc}") from exc
        features = FeaturePlan.from_parts(body.get("features"), sub("features."),
                                          allow_code=allow_code)
        missing = [n for n, _ in features.inputs if n not in schema]
        if missing:
            raise BundleError(f"feature plan reads columns the schema lacks: {missing}")
        model = None
        if body.get("model") is not None:
            from .models import model_from_parts

            model = model_from_parts(body["model"], sub("model."))
            if model.n_features != features.n_features:
                raise BundleError(f"model expects {model.n_features} features but the plan "
                                  f"produces {features.n_features}")
        folded = None
        if body.get("folded") is not None:
            from ._fold import FoldedLinear

            if model is None:
                raise BundleError("bundle has a folded plan but no model")
            folded = FoldedLinear.from_parts(body["folded"], sub("folded."))
            if folded.n_out != model.n_outputs or folded.features.inputs != features.inputs:
                raise BundleError("folded plan does not match the model and feature plan")
        tree_fold = None
        if body.get("tree_fold") is not None:
            from ._fold_trees import FoldedTrees

            if model is None:
                raise BundleError("bundle has a folded tree plan but no model")
            tree_fold = FoldedTrees.from_parts(body["tree_fold"], sub("tree_fold."),
                                               allow_code=allow_code)
            if tree_fold.n_out != model.n_outputs or tree_fold.features.inputs != features.inputs:
                raise BundleError("folded tree plan does not match the model and feature plan")
        profile = None
        if body.get("profile") is not None:
            from .drift import Profile

            profile = Profile.from_parts(body["profile"], sub("profile."))
        return cls(schema, features, model, profile=profile, metadata=metadata, folded=folded,
                   tree_fold=tree_fold)

    def save(self, path) -> None:
        """Write the scorer to one ``.forge`` file (a zip of a JSON manifest and ``.npy``
        arrays; no pickle). Written atomically: a crash never leaves a partial file."""
        from .bundle import write_bundle

        body, arrays = self.to_parts()
        # Member names in the zip are plain indices; the logical names (which may hold "/"
        # and other characters a file name should not) travel in the manifest.
        names = sorted(arrays)
        body["array_names"] = {f"a{i}": n for i, n in enumerate(names)}
        write_bundle(path, body, {f"a{i}": arrays[n] for i, n in enumerate(names)})


def load(path, *, allow_code: bool = False, **limits) -> Scorer:
    """Load a Scorer saved with :meth:`Scorer.save`.

    Checks the format version, member paths, sizes and SHA-256 checksums. A bundle is data
    and loading it executes no code, except a bundle with user-defined functions
    (``forgeline.udf``): those are refused unless ``allow_code=True``, and then compiled
    with Numba from the source stored in the bundle. Needs only forgeline, numpy and
    pyarrow (and numba for udfs): no sklearn, LightGBM, XGBoost or torch.

    Parameters
    ----------
    path : str or path-like
    allow_code : bool, default False
        Compile and run the bundle's udfs. Only for bundles from a trusted source; see
        ``forgeline inspect`` to read their source first.
    **limits
        Size caps passed to :func:`forgeline.bundle.read_bundle`.

    Raises
    ------
    BundleError
        For a missing, truncated, corrupted or tampered file, one from a newer forgeline,
        or one with udfs when ``allow_code`` is False (the message names them).
    """
    body, arrays = _read_parts(path, **limits)
    return Scorer.from_parts(body, arrays, allow_code=allow_code)


def _read_parts(path, **limits) -> tuple[dict, dict[str, np.ndarray]]:
    """A bundle's manifest body and its arrays by logical name (checked, nothing built)."""
    from .bundle import read_bundle

    body, stored = read_bundle(path, **limits)
    names = body.get("array_names", {}) if isinstance(body, dict) else {}
    if not isinstance(names, dict) or set(names) != set(stored) or \
            not all(isinstance(v, str) for v in names.values()):
        raise BundleError("bundle array index does not match its members")
    return body, {names[k]: v for k, v in stored.items()}


def resolve_threads_count(n_threads: int | None) -> int:
    """The concrete thread count for a public ``n_threads`` argument."""
    if n_threads is None or n_threads <= 0:
        return int(core.default_num_threads())
    return int(n_threads)


def _prediction_column(outputs: np.ndarray) -> np.ndarray:
    """The one column drift monitoring tracks: P(class 1) for binary, max proba for
    multiclass, the value itself for regression."""
    out = np.asarray(outputs)
    if out.ndim == 2:
        return out[:, 1] if out.shape[1] == 2 else out.max(axis=1)
    return out.astype(np.float64, copy=False)


def _is_profile(obj) -> bool:
    return type(obj).__name__ == "Profile"


def _json_safe(obj):
    return json.loads(json.dumps(obj, default=_json_default))


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)
