"""Pipeline and ColumnTransformer for forgeline transformers, fused into one native pass.

``Pipeline`` chains transformers; at ``transform`` time consecutive elementwise steps are
fused (``SimpleImputer -> Log1p -> StandardScaler`` becomes one op list per column).
``ColumnTransformer`` runs every branch's programs in a single kernel call that writes
straight into one output matrix. Both are also plain sklearn-style estimators.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .._frame import NUMERIC
from .._native import resolve_threads
from ..errors import DataError, InputError, SchemaError
from . import _engine as eng
from ._base import _Base, check_is_fitted, wrap_output
from ._common import NativeTransformer, _column_names, _n_rows


def _fusable(progs) -> bool:
    return all(p.emit == eng.EMIT_VALUE and p.source != eng.SRC_CODE for p in progs)


class Pipeline(_Base):
    """A chain of forgeline transformers, fused natively at transform time.

    Parameters
    ----------
    steps : list of (name, transformer)
    n_threads : int or None
    """

    def __init__(self, steps, *, n_threads=None):
        self.steps = steps
        self.n_threads = n_threads

    def _check(self):
        if not self.steps:
            raise InputError("Pipeline needs at least one step")
        for name, t in self.steps:
            if not isinstance(t, (NativeTransformer, Pipeline)):
                raise InputError(f"step {name!r} is not a forgeline transformer: "
                                 f"{type(t).__name__}")

    def fit(self, X, y=None):
        """Fit each step on the previous step's output."""
        return self._fit(X, y, None)

    def _fit(self, X, y, select):
        """Fit step by step. Elementwise steps are never materialised: after the first step
        (whose input read is kept), later steps that fit from moments / quantiles take them
        natively from the fused programs so far (:class:`~._engine.Deferred`); a step that
        needs real column values gets the materialised output, as before."""
        self._check()
        Xt = X
        deferred = None
        n = len(self.steps)
        for i, (_, t) in enumerate(self.steps):
            last = i + 1 == n
            if i == 0:
                keep = not last and isinstance(t, NativeTransformer) and t._input_kind == NUMERIC
                if select is not None:
                    _select_for_fit(t, select)
                if keep:
                    t._keep_fit_frame = True
                try:
                    t.fit(Xt, y)
                finally:
                    t.__dict__.pop("_fit_select_cols", None)
                    t.__dict__.pop("_keep_fit_frame", None)
                frame = t.__dict__.pop("_kept_frame", None)
                if last:
                    continue
                if frame is not None:
                    deferred = _deferred_from(t, frame)
                elif select is not None:
                    Xt = _columns_out_select(t, Xt, select)
                else:
                    Xt = t._columns_out(Xt)
                continue
            # later steps see what sklearn would: the first step's memory layout
            t._layout_hint = getattr(self.steps[0][1], "_pairwise_sums", None)
            if deferred is not None:
                if (isinstance(t, NativeTransformer) and t._input_kind == NUMERIC
                        and len(deferred) and _fusable(deferred.progs)
                        and t._fit_deferred_ok(deferred.n_rows)):
                    t.fit(deferred, y)
                    if not last:
                        deferred = deferred.then(t._programs(deferred.progs, None),
                                                 t.get_feature_names_out())
                    continue
                Xt = deferred.columns(resolve_threads(self.n_threads))
                deferred = None
            t.fit(Xt, y)
            if not last:
                Xt = t._columns_out(Xt)
        first = self.steps[0][1]
        self.n_features_in_ = first.n_features_in_
        if hasattr(first, "feature_names_in_"):
            self.feature_names_in_ = first.feature_names_in_
        return self

    def _plan(self, X, sources, select=None):
        check_is_fitted(self)
        progs, n_rows = self.steps[0][1]._plan(X, sources, select=select)
        for _, t in self.steps[1:]:
            if _fusable(progs) and t._input_kind == NUMERIC:
                progs = t._programs(progs, None)
            else:  # materialise and continue from the intermediate columns
                out, fired = eng.run(sources, progs, n_rows, resolve_threads(self.n_threads))
                self._raise(fired)
                progs, _ = t._plan(out, sources)
        return progs, n_rows

    def _raise(self, fired):
        if fired:
            self.steps[0][1]._raise_fired(fired)

    @property
    def _sparse_out(self):
        return self.steps[-1][1]._sparse_out

    def _fit_nnz(self, n_rows: int) -> int:
        return self.steps[-1][1]._fit_nnz(n_rows)

    def transform(self, X):
        """Transform X through every step in one fused native pass where possible."""
        sources = eng.Sources()
        progs, n_rows = self._plan(X, sources)
        runner = eng.run_csr if self._sparse_out else eng.run
        out, fired = runner(sources, progs, n_rows, resolve_threads(self.n_threads))
        self._raise(fired)
        return wrap_output(self, out, self.get_feature_names_out(), getattr(X, "index", None))

    def _columns_out(self, X) -> dict:
        sources = eng.Sources()
        progs, n_rows = self._plan(X, sources)
        out = np.empty((eng.width_of(progs), n_rows)).T
        out, fired = eng.run(sources, progs, n_rows, resolve_threads(self.n_threads), out=out)
        self._raise(fired)
        return dict(zip([str(n) for n in self.get_feature_names_out()], out.T))

    def get_feature_names_out(self, input_features=None):
        """Output names of the last step."""
        names = input_features
        for _, t in self.steps:
            names = t.get_feature_names_out(names)
        return names

    @property
    def _input_kind(self):
        return self.steps[0][1]._input_kind


def _deferred_from(t, frame) -> eng.Deferred:
    """The fitted first step's output over the frame its fit read, as deferred programs."""
    sources = eng.Sources()
    progs = t._programs(t._source_progs(frame, sources), frame)
    return eng.Deferred(sources, progs, frame.n_rows, t.get_feature_names_out())


def _columns_out_select(t, X, select) -> dict:
    sources = eng.Sources()
    progs, n_rows = t._plan(X, sources, select=select)
    out = np.empty((eng.width_of(progs), n_rows)).T
    out, fired = eng.run(sources, progs, n_rows, resolve_threads(getattr(t, "n_threads", None)),
                         out=out)
    if fired:
        raise DataError(f"Input contains invalid values in column {fired[0][0].name!r}",
                        column=fired[0][0].name)
    return dict(zip([str(n) for n in t.get_feature_names_out()], out.T))


def _select_for_fit(t, cols) -> None:
    if isinstance(t, Pipeline):
        _select_for_fit(t.steps[0][1], cols)
    else:
        t._fit_select_cols = list(cols)


def make_pipeline(*steps, n_threads=None) -> Pipeline:
    """A :class:`Pipeline` with steps named after their lower-cased class names."""
    return Pipeline([(type(s).__name__.lower(), s) for s in steps], n_threads=n_threads)


def _subset(X, cols):
    root = type(X).__module__.split(".", 1)[0]
    if isinstance(X, np.ndarray):
        idx = [int(c) for c in cols]
        return X[:, idx]
    if root == "pandas":
        return X[list(cols)]
    if root == "polars":
        return X.select(list(cols))
    if hasattr(X, "select") and hasattr(X, "column_names"):
        return X.select(list(cols))
    if isinstance(X, Mapping):
        return {c: X[c] for c in cols}
    raise InputError(f"unsupported input type {type(X).__name__}")


class ColumnTransformer(_Base):
    """Apply forgeline transformers (or :class:`Pipeline`\\ s) to column subsets.

    All branches run in one native kernel call that writes into one output matrix, in
    parallel over row blocks with the GIL released. Output names follow sklearn's
    ``verbose_feature_names_out=True`` (``"{branch}__{feature}"``).

    Parameters
    ----------
    transformers : list of (name, transformer, columns)
        ``columns`` are names (or integer positions for numpy input). A transformer may be a
        list of transformers, meaning a :class:`Pipeline`.
    remainder : "drop"
    sparse_threshold : float, default 0.3
        As sklearn's: when a branch outputs a sparse matrix (a one-hot encoder with
        ``sparse_output=True``, ``KBinsDiscretizer(encode="onehot")``) and the overall density
        of the training output is below this value, ``transform`` returns a CSR matrix
        (built natively, without a dense intermediate); ``sparse_output_`` records it.
    verbose_feature_names_out : bool
    n_threads : int or None
    """

    def __init__(self, transformers, *, remainder="drop", sparse_threshold=0.3,
                 verbose_feature_names_out=True, n_threads=None):
        self.transformers = transformers
        self.remainder = remainder
        self.sparse_threshold = sparse_threshold
        self.verbose_feature_names_out = verbose_feature_names_out
        self.n_threads = n_threads

    def _branches(self):
        if self.remainder != "drop":
            raise InputError("forgeline's ColumnTransformer supports remainder='drop' only")
        out = []
        for name, t, cols in self.transformers:
            if isinstance(t, (list, tuple)):
                t = make_pipeline(*t, n_threads=self.n_threads)
            if not isinstance(t, (NativeTransformer, Pipeline)):
                raise InputError(f"branch {name!r} is not a forgeline transformer")
            out.append((name, t, list(cols)))
        return out

    def fit(self, X, y=None):
        """Fit every branch on its columns."""
        names, real = _column_names(X) if not isinstance(X, list) else ([], False)
        self.transformers_ = []
        for name, t, cols in self._branches():
            if isinstance(X, np.ndarray):
                t.fit(_subset(X, cols), y)
            elif isinstance(t, Pipeline):
                t._fit(X, y, cols)
            else:  # the branch reads its columns straight from X: no sub-frame copy
                _select_for_fit(t, cols)
                try:
                    t.fit(X, y)
                finally:
                    t.__dict__.pop("_fit_select_cols", None)
            self.transformers_.append((name, t, cols))
        self._set_sparse_output(_n_rows(X))
        self.n_features_in_ = len(names)
        if real:
            self.feature_names_in_ = np.asarray(names, dtype=object)
        return self

    def _set_sparse_output(self, n_rows: int) -> None:
        """sklearn's rule: sparse when some branch is sparse and the training output's
        density (stored entries of sparse branches, every entry of dense ones) is below
        ``sparse_threshold``."""
        thr = self.sparse_threshold
        if not isinstance(thr, (int, float)) or isinstance(thr, bool) or not 0 <= thr <= 1:
            raise InputError(f"sparse_threshold must be a number in [0, 1], got {thr!r}")
        branches = [t for _, t, _ in self.transformers_]
        if not any(t._sparse_out for t in branches):
            self.sparse_output_ = False
            return
        total = nnz = 0
        for t in branches:
            width = len(t.get_feature_names_out())
            total += n_rows * width
            nnz += t._fit_nnz(n_rows) if t._sparse_out else n_rows * width
        self.sparse_output_ = bool(total and nnz / total < thr)

    def fit_transform(self, X, y=None, **kw):
        return self.fit(X, y).transform(X)

    def transform(self, X):
        """Transform X: every branch, one native pass, one output matrix."""
        check_is_fitted(self, "transformers_")
        if isinstance(X, np.ndarray) and X.shape[1] != self.n_features_in_:
            raise SchemaError(f"X has {X.shape[1]} features, but ColumnTransformer is expecting "
                              f"{self.n_features_in_} features as input.")
        sources = eng.Sources()
        progs = []
        n_rows = None
        for _, t, cols in self.transformers_:
            if isinstance(X, np.ndarray):
                p, n = t._plan(_subset(X, cols), sources)
            else:  # read the branch's columns straight from X: no sub-frame copy
                p, n = t._plan(X, sources, select=cols)
            progs += p
            n_rows = n
        runner = eng.run_csr if getattr(self, "sparse_output_", False) else eng.run
        out, fired = runner(sources, progs, n_rows, resolve_threads(self.n_threads))
        if fired:
            self.transformers_[0][1]._raise_fired(fired) if isinstance(
                self.transformers_[0][1], NativeTransformer) else None
            from ..errors import DataError
            raise DataError(f"Input contains invalid values in column {fired[0][0].name!r}",
                            column=fired[0][0].name)
        return wrap_output(self, out, self.get_feature_names_out(), getattr(X, "index", None))

    def get_feature_names_out(self, input_features=None):
        """Output names, ``"{branch}__{feature}"``."""
        check_is_fitted(self, "transformers_")
        out = []
        for name, t, _ in self.transformers_:
            for f in t.get_feature_names_out():
                out.append(f"{name}__{f}" if self.verbose_feature_names_out else str(f))
        return np.asarray(out, dtype=object)


def make_column_transformer(*transformers, n_threads=None) -> ColumnTransformer:
    """A :class:`ColumnTransformer` from ``(transformer, columns)`` pairs."""
    return ColumnTransformer([(f"{type(t).__name__.lower()}-{i}", t, c)
                              for i, (t, c) in enumerate(transformers)], n_threads=n_threads)
