"""Shared machinery of forgeline transformers: reading input, feature names, parts."""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np

from .._frame import CATEGORICAL, DATETIME, NUMERIC, BOOLEAN, Frame, to_frame
from .._native import resolve_threads
from ..errors import BundleError, DataError, InputError, SchemaError
from . import _engine as eng
from ._base import HAVE_SKLEARN, _Base, check_is_fitted, wrap_output

PARTS_VERSION = 1


def _is_sparse(X) -> bool:
    return type(X).__module__.startswith("scipy.sparse") or hasattr(X, "tocsr")


def _column_names(X) -> tuple[list[str], bool]:
    """Names of X's columns and whether they are real names (sklearn's feature_names_in_)."""
    root = type(X).__module__.split(".", 1)[0]
    if isinstance(X, np.ndarray):
        return [f"x{j}" for j in range(X.shape[1])], False
    if root == "pandas" and hasattr(X, "columns"):
        cols = list(X.columns)
        real = len(cols) > 0 and all(isinstance(c, str) for c in cols)
        return [str(c) for c in cols], real
    if root == "polars" and hasattr(X, "columns"):
        return list(X.columns), True
    if hasattr(X, "column_names"):
        return list(X.column_names), True
    if isinstance(X, Mapping):
        return [str(k) for k in X], True
    raise InputError(f"unsupported input type {type(X).__module__}.{type(X).__name__}")


def _n_rows(X) -> int:
    if isinstance(X, np.ndarray) or hasattr(X, "shape"):
        return int(X.shape[0])
    if hasattr(X, "num_rows"):
        return int(X.num_rows)
    if isinstance(X, Mapping):
        return len(next(iter(X.values()))) if X else 0
    return len(X)


def _codes_for(vals: np.ndarray, vocab) -> np.ndarray:
    """int32 codes of float values into ``vocab`` (UNSEEN for others, MISSING for NaN)."""
    v = np.asarray(vocab, dtype=np.float64)
    codes = np.full(vals.shape, -2, dtype=np.int32)
    if v.size:
        order = np.argsort(v, kind="stable")
        sv = v[order]
        idx = np.minimum(np.searchsorted(sv, vals), sv.size - 1)
        hit = sv[idx] == vals
        codes[hit] = order[idx[hit]]
    codes[np.isnan(vals)] = -1
    return codes


def _code_numeric_columns(frame: Frame, vocabularies) -> Frame:
    from .._frame import Column
    cols = []
    for c in frame.columns:
        if c.kind not in (NUMERIC, BOOLEAN):
            cols.append(c)
            continue
        vals = c.values
        if vocabularies is not None:
            vocab = tuple(vocabularies[c.name])
        else:
            uniq = np.unique(vals[~np.isnan(vals)])
            integral = c.source_dtype.startswith(("int", "uint", "Int", "UInt", "bool")) or \
                c.kind == BOOLEAN
            vocab = tuple(int(u) for u in uniq) if integral else tuple(float(u) for u in uniq)
        cols.append(Column(c.name, CATEGORICAL, _codes_for(vals, vocab), vocab,
                           c.valid, c.source_dtype))
    return Frame(cols, frame.n_rows)


_PARALLEL_MIN_CELLS = 200_000


def _to_frame(X, kinds, columns, vocabularies, input_kind, n_threads) -> Frame:
    """``to_frame`` of X; categorical columns are converted in parallel column groups.

    Arrow's string kernels (``index_in``, ``unique``) release the GIL, so threads over
    column groups overlap the per-column encoding. Groups are contiguous and their results
    are taken in order, so a bad column raises the same error as the serial conversion.
    """
    names = list(columns) if columns is not None else None
    if names is None and isinstance(X, Mapping):
        names = [str(k) for k in X]
    elif names is None and hasattr(X, "columns") and not isinstance(X, np.ndarray):
        names = [str(c) for c in X.columns]
    if n_threads <= 0:  # the native convention's "all cores"
        from .._native import core
        n_threads = int(core.default_num_threads())
    threads = min(n_threads, len(names) if names else 1)
    if (input_kind != CATEGORICAL or threads < 2 or columns is None
            or _n_rows(X) * len(names) < _PARALLEL_MIN_CELLS):
        return to_frame(X, float_dtype=np.float64, kinds=kinds, columns=columns,
                        vocabularies=vocabularies)
    from concurrent.futures import ThreadPoolExecutor
    groups = [list(g) for g in np.array_split(np.asarray(names, dtype=object), threads) if len(g)]

    def convert(group):
        sub_kinds = None if kinds is None else {n: kinds[n] for n in group if n in kinds}
        sub_vocab = None if vocabularies is None else {n: vocabularies[n] for n in group
                                                       if n in vocabularies}
        return to_frame(X, float_dtype=np.float64, kinds=sub_kinds, columns=group,
                        vocabularies=sub_vocab)

    with ThreadPoolExecutor(len(groups)) as ex:
        futures = [ex.submit(convert, g) for g in groups]
        frames = [f.result() for f in futures]
    return Frame([c for f in frames for c in f.columns], frames[0].n_rows)


def sums_pairwise(X, select=None) -> bool:
    """Whether numpy sums X's columns pairwise when sklearn reduces ``np.asarray(X)`` on axis 0.

    numpy sums a contiguous column pairwise, but reduces a C-ordered matrix row by row; the
    two differ in the last bits, which matters where outputs cancel (``x - mean_``). A
    C-ordered 2-D array with several columns -- and a pandas frame that is not a single
    consolidated block, which numpy interleaves into C order -- is summed row by row.
    """
    if isinstance(X, np.ndarray):
        if X.ndim != 2 or X.shape[1] == 1:
            return True
        return bool(X.flags.f_contiguous and not X.flags.c_contiguous)
    if type(X).__module__.split(".", 1)[0] == "pandas" and hasattr(X, "columns"):
        if select is not None:  # X[select] is one consolidated block iff one dtype
            if len(select) == 1:
                return True
            # by position: label look-ups on a string-dtype index convert it on every call
            by_name = dict(zip((str(c) for c in X.columns), X.dtypes.to_numpy()))
            return len({str(by_name.get(str(c))) for c in select}) == 1
        if X.shape[1] == 1:
            return True
        try:
            return len(X._mgr.blocks) == 1
        except AttributeError:  # pragma: no cover - pandas internals moved
            return True
    return True


class NativeTransformer(_Base):
    """Base of every forgeline transformer (internal).

    Subclasses set ``_input_kind`` (``"numeric"``, ``"categorical"`` or ``"datetime"``) and
    implement ``_fit_columns``, ``_programs`` and ``_names_out``.
    """

    _input_kind = NUMERIC
    _allow_nan = True
    _allow_inf = False

    # ------------------------------------------------------------------ sklearn tags
    if HAVE_SKLEARN:
        def __sklearn_tags__(self):
            tags = super().__sklearn_tags__()
            tags.input_tags.allow_nan = self._allow_nan
            tags.transformer_tags.preserves_dtype = ["float64"]
            if self._input_kind == CATEGORICAL:
                tags.input_tags.categorical = True
                tags.input_tags.string = True
            return tags

    # ------------------------------------------------------------------ input
    def _coerce(self, X):
        if X is None:
            raise InputError(f"{type(self).__name__} needs data, got None")
        if _is_sparse(X):
            raise InputError(f"{type(self).__name__} does not accept sparse input; pass a dense "
                             "array or a DataFrame")
        if isinstance(X, (list, tuple)):
            X = np.asarray(X, dtype=object if self._input_kind != NUMERIC else None)
            if X.dtype == object and self._input_kind == NUMERIC:
                X = X.astype(np.float64)
        if isinstance(X, np.ndarray):
            if X.ndim != 2:
                raise InputError(f"Expected 2D array, got {X.ndim}D array instead. Reshape your "
                                 "data using array.reshape(-1, 1) for a single feature or "
                                 "array.reshape(1, -1) for a single sample.")
            if X.dtype.kind == "c":
                raise InputError("Complex data not supported")
            if self._input_kind == NUMERIC and X.dtype.kind in "OUS":
                X = X.astype(np.float64)  # TypeError/ValueError like numpy's, naming the value
        elif hasattr(X, "__array__") and not hasattr(X, "columns") and not isinstance(X, Mapping) \
                and not hasattr(X, "column_names"):
            return self._coerce(np.asarray(X))
        names, _ = _column_names(X)
        n = _n_rows(X)
        if n == 0:
            raise DataError(f"Found array with 0 sample(s) (shape=({n}, {len(names)})) while a "
                            f"minimum of 1 is required by {type(self).__name__}.")
        if not names:
            raise DataError(f"Found array with 0 feature(s) (shape=({n}, 0)) while a minimum of 1 "
                            f"is required by {type(self).__name__}.")
        return X

    def _read(self, X, reset: bool, vocabularies: dict | None = None, select=None) -> Frame:
        """Validate X and convert it through ``_frame.to_frame``; set or check the schema.

        ``select`` restricts a named container to those columns without copying it (what a
        ColumnTransformer branch sees).
        """
        if isinstance(X, eng.Deferred):
            return self._read_deferred(X, reset)
        X = self._coerce(X)
        names, real = _column_names(X)
        if reset and select is None:  # set by ColumnTransformer/Pipeline for one fit call
            select = self.__dict__.pop("_fit_select_cols", None)
        if select is not None:
            names, real = [str(c) for c in select], True
        if reset:
            columns = None if select is None else names
            hint = getattr(self, "_layout_hint", None)
            self._pairwise_sums = sums_pairwise(X, select) if hint is None else hint
            self.n_features_in_ = len(names)
            if real:
                self.feature_names_in_ = np.asarray(names, dtype=object)
            elif hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
            self._in_names = names
        else:
            check_is_fitted(self)
            fitted = getattr(self, "feature_names_in_", None)
            if fitted is not None and real:
                columns = list(fitted)  # by name; extra columns are ignored
            elif fitted is not None and select is not None:
                columns = list(fitted)
            else:
                if len(names) != self.n_features_in_:
                    raise SchemaError(
                        f"X has {len(names)} features, but {type(self).__name__} is expecting "
                        f"{self.n_features_in_} features as input.",
                        problems={"n_features": f"{len(names)} != {self.n_features_in_}"})
                columns = None if select is None else names
        # Categorical transformers let numeric columns stay numeric here and code them
        # against float vocabularies themselves (sklearn accepts float categories).
        kind = {NUMERIC: None, CATEGORICAL: None, DATETIME: DATETIME}[self._input_kind]
        kinds = None
        if kind is not None:
            kinds = {n: kind for n in (columns if columns is not None else names)}
        if vocabularies is not None:
            vocabularies = dict(zip(columns if columns is not None else names, vocabularies))
        frame = _to_frame(X, kinds, columns, vocabularies, self._input_kind, self._threads)
        if columns is None and not reset and not real and frame.names != names:
            raise SchemaError("internal: column names changed")  # pragma: no cover
        if self._input_kind == CATEGORICAL:
            frame = _code_numeric_columns(frame, vocabularies)
        if self._input_kind == NUMERIC:
            for c in frame.columns:
                if c.kind not in (NUMERIC, BOOLEAN):
                    raise SchemaError(f"column {c.name!r} is {c.kind}, but {type(self).__name__} "
                                      "needs numeric columns", column=c.name,
                                      problems={c.name: f"kind {c.kind}"})
        return frame

    def _read_deferred(self, X, reset: bool):
        """A Pipeline step's fit on the previous steps' deferred output: what ``_read`` of
        the materialised output (a dict of named float64 columns) would set."""
        if not reset:
            raise InputError("internal: deferred columns are for fit only")  # pragma: no cover
        hint = getattr(self, "_layout_hint", None)
        self._pairwise_sums = True if hint is None else hint
        self.n_features_in_ = len(X.names)
        self.feature_names_in_ = np.asarray(X.names, dtype=object)
        self._in_names = list(X.names)
        return eng.DeferredFrame(X)

    def _fit_deferred_ok(self, n_rows: int) -> bool:
        """Whether ``fit`` may read :class:`~._engine.Deferred` columns: true for transformers
        whose fit only takes moments / quantiles / medians of float columns."""
        return False

    def _float_cols(self, frame: Frame) -> list[np.ndarray]:
        if isinstance(frame, eng.DeferredFrame):
            return frame.deferred
        return [np.asarray(c.values, dtype=np.float64) for c in frame.columns]

    @property
    def _threads(self) -> int:
        return resolve_threads(getattr(self, "n_threads", None))

    # ------------------------------------------------------------------ public API
    def fit(self, X, y=None):
        """Fit the transformer on ``X``.

        Parameters
        ----------
        X : DataFrame, pyarrow Table, 2-D array or dict of columns
            Training data (any container ``forgeline._frame.to_frame`` accepts).
        y : ignored
            Present for API consistency.

        Returns
        -------
        self
        """
        self._reset()
        frame = self._read(X, reset=True)
        self._fit_frame(frame, y)
        if self.__dict__.get("_keep_fit_frame"):  # a Pipeline continues from this read
            self._kept_frame = frame
        return self

    def _reset(self) -> None:
        for k in [k for k in vars(self) if k.endswith("_") and not k.startswith("__")]:
            delattr(self, k)

    def transform(self, X):
        """Transform ``X`` with the fitted state (in C++, columns fused, GIL released).

        Parameters
        ----------
        X : DataFrame, pyarrow Table, 2-D array or dict of columns

        Returns
        -------
        numpy.ndarray of shape (n_samples, n_features_out), float64
            (a pandas or polars DataFrame after ``set_output``).
        """
        check_is_fitted(self)
        sources = eng.Sources()
        progs, n_rows = self._plan(X, sources)
        if self._sparse_out:  # straight into CSR: no dense intermediate
            out, fired = eng.run_csr(sources, progs, n_rows, self._threads)
        else:
            out, fired = eng.run(sources, progs, n_rows, self._threads)
        self._raise_fired(fired)
        return wrap_output(self, out, self.get_feature_names_out(), getattr(X, "index", None))

    # Whether transform returns a scipy CSR matrix (as sklearn's counterpart does).
    _sparse_out = False

    def _fit_nnz(self, n_rows: int) -> int:
        """Stored entries of ``transform(training data)``, for ColumnTransformer's density."""
        return n_rows * len(self.get_feature_names_out())

    def _plan(self, X, sources: eng.Sources, select=None):
        """Read X and return (programs computing the output from `sources`, n_rows)."""
        check_is_fitted(self)
        frame = self._read(X, reset=False, vocabularies=self._vocabularies(), select=select)
        ups = self._source_progs(frame, sources)
        return self._programs(ups, frame), frame.n_rows

    def _columns_out(self, X) -> dict:
        """transform(X) as a dict of contiguous output columns (for fitting a next step)."""
        sources = eng.Sources()
        progs, n_rows = self._plan(X, sources)
        out = np.empty((eng.width_of(progs), n_rows)).T  # column-major: contiguous columns
        out, fired = eng.run(sources, progs, n_rows, self._threads, out=out)
        self._raise_fired(fired)
        return dict(zip([str(n) for n in self.get_feature_names_out()], out.T))

    def _raise_fired(self, fired) -> None:
        if fired:
            p, code = fired[0]
            what = eng.FLAG_MESSAGES.get(code, "invalid values")
            raise DataError(f"Input contains {what}: column {p.name!r} has {what} values, which "
                            f"{type(self).__name__} does not allow", column=p.name)

    def _source_progs(self, frame: Frame, sources: eng.Sources) -> list:
        ups = []
        for c in frame.columns:
            if self._input_kind == CATEGORICAL:
                ups.append(eng.Prog(eng.SRC_CODE, sources.add(eng.SRC_CODE, c.values), c.name))
            elif self._input_kind == DATETIME:
                ups.append(eng.Prog(eng.SRC_DATETIME, sources.add(eng.SRC_DATETIME, c.values), c.name))
            else:
                ups.append(eng.Prog(eng.SRC_FLOAT, sources.add(eng.SRC_FLOAT, c.values), c.name))
        return ups

    def _vocabularies(self) -> dict | None:
        return None

    def _input_names(self, input_features=None) -> list[str]:
        check_is_fitted(self)
        if input_features is not None:
            input_features = [str(f) for f in input_features]
            fitted = getattr(self, "feature_names_in_", None)
            if len(input_features) != self.n_features_in_:
                raise InputError(f"input_features should have length equal to number of "
                                 f"features ({self.n_features_in_}), got {len(input_features)}")
            if fitted is not None and list(fitted) != input_features:
                raise InputError("input_features is not equal to feature_names_in_")
            return input_features
        fitted = getattr(self, "feature_names_in_", None)
        if fitted is not None:
            return [str(f) for f in fitted]
        return [f"x{j}" for j in range(self.n_features_in_)]

    def get_feature_names_out(self, input_features=None):
        """Output feature names, as scikit-learn names them.

        Parameters
        ----------
        input_features : array-like of str, optional
            Input names; defaults to ``feature_names_in_`` or ``x0, x1, ...``.

        Returns
        -------
        numpy.ndarray of str (object dtype)
        """
        return np.asarray(self._names_out(self._input_names(input_features)), dtype=object)

    def _names_out(self, names: list[str]) -> list[str]:
        return list(names)

    # ------------------------------------------------------------------ mergeable fitting
    def partial_fit(self, X, y=None):
        """Update the fitted state with a chunk of rows (mergeable fitting).

        Parameters
        ----------
        X : DataFrame, pyarrow Table, 2-D array or dict of columns
        y : ignored

        Returns
        -------
        self
        """
        # An exact `fit` of a quantile-based transformer keeps no sketch: partial_fit then
        # starts a new mergeable state (documented in each class).
        first = getattr(self, "_acc", None) is None
        if first:
            self._reset()
        frame = self._read(X, reset=first)
        acc = self._accumulate(frame, y)
        if first:
            self._acc = acc
        else:
            self._acc = self._merge_acc(self._acc, acc)
        self._finalize(self._acc)
        return self

    def merge(self, other):
        """Merge another instance's partial state into this one (in place) and return self.

        Both must have been fitted with ``partial_fit`` (or ``fit``) on the same columns.
        """
        if getattr(self, "_acc", None) is None or getattr(other, "_acc", None) is None:
            raise InputError("merge needs two instances fitted with partial_fit or fit")
        if other.n_features_in_ != self.n_features_in_ or list(
                getattr(other, "feature_names_in_", [])) != list(getattr(self, "feature_names_in_", [])):
            raise SchemaError("cannot merge transformers fitted on different columns")
        self._acc = self._merge_acc(self._acc, other._acc)
        self._finalize(self._acc)
        return self

    # ------------------------------------------------------------------ parts
    _state: tuple = ()

    def to_parts(self) -> tuple[dict, dict[str, np.ndarray]]:
        """Fitted state as plain parts: a JSON-safe dict and named numpy arrays."""
        check_is_fitted(self)
        meta = {"format": "forgeline.transform", "version": PARTS_VERSION,
                "class": type(self).__name__, "params": _json_params(self.get_params(deep=False)),
                "n_features_in_": int(self.n_features_in_),
                "feature_names_in_": None if not hasattr(self, "feature_names_in_")
                else [str(f) for f in self.feature_names_in_], "state": {}}
        arrays: dict[str, np.ndarray] = {}
        for name in self._state:
            if not hasattr(self, name):
                continue
            _put(meta["state"], arrays, name, getattr(self, name))
        return meta, arrays

    @classmethod
    def from_parts(cls, meta: dict, arrays: Mapping[str, np.ndarray]):
        """Rebuild a fitted transformer from :meth:`to_parts` output.

        Raises
        ------
        forgeline.BundleError
            When the parts are malformed or inconsistent.
        """
        try:
            if not isinstance(meta, Mapping) or meta.get("format") != "forgeline.transform":
                raise BundleError("not a forgeline transform part")
            if meta.get("version") != PARTS_VERSION:
                raise BundleError(f"unsupported transform part version {meta.get('version')!r}")
            if meta.get("class") != cls.__name__:
                raise BundleError(f"parts are for {meta.get('class')!r}, not {cls.__name__}")
            obj = cls(**dict(meta["params"]))
            obj.n_features_in_ = int(meta["n_features_in_"])
            if obj.n_features_in_ < 1:
                raise BundleError("n_features_in_ must be positive")
            if meta.get("feature_names_in_") is not None:
                names = [str(x) for x in meta["feature_names_in_"]]
                if len(names) != obj.n_features_in_:
                    raise BundleError("feature_names_in_ does not match n_features_in_")
                obj.feature_names_in_ = np.asarray(names, dtype=object)
            for name, spec in dict(meta["state"]).items():
                if name not in cls._state:
                    raise BundleError(f"unexpected state entry {name!r}")
                setattr(obj, name, _get(spec, arrays, name))
            obj._check_state()
        except BundleError:
            raise
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise BundleError(f"malformed {cls.__name__} parts: {exc}") from exc
        return obj

    _not_per_feature = frozenset({"_indicator_features", "target_mean_", "classes_", "encodings_"})

    def _check_state(self) -> None:
        for name in self._required_state():
            if not hasattr(self, name):
                raise BundleError(f"{type(self).__name__} parts lack {name!r}")
        n = self.n_features_in_
        for name in self._state:
            v = getattr(self, name, None)
            if name in self._not_per_feature or v is None:
                continue
            if isinstance(v, np.ndarray) and v.ndim != 1 and v.ndim != 0:
                raise BundleError(f"{name} must be 1-D, got shape {v.shape}")
            is_seq = isinstance(v, list) or (isinstance(v, np.ndarray) and v.ndim == 1)
            if is_seq and len(v) != n:
                raise BundleError(f"{name} has shape ({len(v)},) but the transformer has {n} "
                                  "input features")
            if isinstance(v, np.ndarray) and v.dtype.kind not in "biufO":
                raise BundleError(f"{name} has unsupported dtype {v.dtype}")

    def _required_state(self) -> tuple:
        return ()


def _json_params(params: dict) -> dict:
    out = {}
    for k, v in params.items():
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, type):
            v = np.dtype(v).name
        elif isinstance(v, np.ndarray):
            v = v.tolist()
        elif isinstance(v, (list, tuple)):
            v = [x.tolist() if isinstance(x, np.ndarray) else x for x in v]
        try:
            json.dumps(v, allow_nan=True)
        except TypeError as exc:
            raise InputError(f"parameter {k}={v!r} is not JSON-safe; it cannot be saved") from exc
        out[k] = v
    return out


def _put(meta: dict, arrays: dict, name: str, value) -> None:
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        arrays[name] = value
        meta[name] = {"array": name}
    elif isinstance(value, list) and all(isinstance(v, np.ndarray) for v in value):
        keys = []
        for i, v in enumerate(value):
            if v.dtype.kind in "biuf":
                arrays[f"{name}/{i}"] = v
                keys.append({"array": f"{name}/{i}"})
            else:
                keys.append({"values": [_scalar(x) for x in v.tolist()]})
        meta[name] = {"list": keys}
    elif isinstance(value, np.ndarray) and value.dtype == object and value.size and all(
            isinstance(v, np.ndarray) for v in value):
        sub: dict = {}
        _put(sub, arrays, name, list(value))
        meta[name] = {"objarray": sub[name]}
    elif isinstance(value, np.ndarray):
        meta[name] = {"values": [_scalar(x) for x in value.tolist()]}
    else:
        meta[name] = {"value": _scalar(value) if not isinstance(value, (dict, list)) else value}


def _scalar(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, float) and x != x:
        return None  # NaN category -> null; restored as NaN
    return x


def _get(spec: dict, arrays: Mapping, name: str):
    if "array" in spec:
        a = arrays[spec["array"]]
        if not isinstance(a, np.ndarray):
            raise BundleError(f"array {spec['array']!r} is not a numpy array")
        return a
    if "list" in spec:
        return [_get(s, arrays, name) for s in spec["list"]]
    if "objarray" in spec:
        items = _get(spec["objarray"], arrays, name)
        out = np.empty(len(items), dtype=object)
        for i, v in enumerate(items):
            out[i] = np.asarray(v, dtype=np.float64)
        return out
    if "values" in spec:
        vals = [np.nan if v is None else v for v in spec["values"]]
        return np.asarray(vals, dtype=object)
    return spec["value"]


class StatelessTransformer(NativeTransformer):
    """A transformer whose fit learns nothing from the values (only the input columns), so
    ``partial_fit``/``merge`` have no statistics to accumulate. Subclasses may override
    ``_check_params`` to validate their parameters at fit time."""

    def _check_params(self):
        pass

    def _fit_deferred_ok(self, n_rows: int) -> bool:
        return True

    def _fit_frame(self, frame, y):
        self._check_params()
        self._acc = {}

    def _accumulate(self, frame, y):
        self._check_params()
        return {}

    @staticmethod
    def _merge_acc(a, b):
        return {}

    def _finalize(self, acc):
        pass
