"""TargetEncoder mirroring scikit-learn's (cross-fitted ``fit_transform``)."""

from __future__ import annotations

import numbers
import warnings

import numpy as np

from ..errors import InputError
from . import _engine as eng
from ._base import HAVE_SKLEARN
from .encoders import _CategoricalBase


def _type_of_target(y) -> str:
    if HAVE_SKLEARN:
        from sklearn.utils.multiclass import type_of_target
        return type_of_target(y, input_name="y")
    y = np.asarray(y)  # pragma: no cover - sklearn-less fallback
    if y.dtype.kind == "f" and np.any(y != np.round(y)):  # pragma: no cover
        return "continuous"
    return "binary" if np.unique(y).size <= 2 else "multiclass"  # pragma: no cover


class TargetEncoder(_CategoricalBase):
    """Encode categories by a shrunk mean of the target, as sklearn's TargetEncoder.

    ``fit(X, y).transform(X)`` uses encodings learnt on all rows; ``fit_transform(X, y)``
    cross-fits like sklearn (each fold encoded with encodings learnt on the other folds,
    using sklearn's own ``check_cv`` splitter when sklearn is installed, else a shuffled
    K-fold). Smoothing ``"auto"`` is the empirical-Bayes shrinkage of Micci-Barreca, computed
    with the same summation order as sklearn, so encodings match bit for bit. Binary,
    multiclass (one column per class) and continuous targets.

    Parameters
    ----------
    categories : "auto" or list of array-like
    target_type : {"auto", "continuous", "binary", "multiclass"}
    smooth : "auto" or float
    cv : int or splitter
    shuffle, random_state
        As sklearn 1.9 (deprecated there; passed to the splitter when set).
    n_threads : int or None
    """

    _state = ("categories_", "_vocab", "encodings_", "target_mean_", "target_type_", "classes_")

    def __init__(self, categories="auto", target_type="auto", smooth="auto", cv=5,
                 shuffle="deprecated", random_state="deprecated", n_threads=None):
        self.categories = categories
        self.target_type = target_type
        self.smooth = smooth
        self.cv = cv
        self.shuffle = shuffle
        self.random_state = random_state
        self.n_threads = n_threads

    if HAVE_SKLEARN:
        def __sklearn_tags__(self):
            tags = super().__sklearn_tags__()
            tags.target_tags.required = True
            return tags

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y):
        """Learn categories and target encodings on all rows.

        Parameters
        ----------
        X : DataFrame, Table, 2-D array or dict of columns
        y : array-like of shape (n_samples,)

        Returns
        -------
        self
        """
        self._fit_all(X, y)
        return self

    def _fit_all(self, X, y):
        self._reset()
        if y is None:
            raise InputError("TargetEncoder requires y to be passed, but the target y is None")
        frame = self._read(X, reset=True)
        explicit = self._explicit(len(frame.names))
        if explicit is not None:
            frame = self._read_explicit(frame, explicit)
        acc = self._accumulate(frame, None)
        self._set_categories(acc)
        y = self._encode_y(y, frame.n_rows)
        codes = np.stack([self._ordinal(j, c.values) for j, c in enumerate(frame.columns)], 1)
        self.target_mean_ = np.mean(y, axis=0)
        self.encodings_ = self._encodings(codes, y, self.target_mean_)
        self._acc = None
        return codes, y

    def _encode_y(self, y, n):
        y = np.asarray(y)
        if y.ndim != 1 or y.shape[0] != n:
            raise InputError(f"y must be 1-D with {n} values, got shape {y.shape}")
        if self.target_type == "auto":
            t = _type_of_target(y)
            if t not in ("binary", "multiclass", "continuous"):
                raise InputError(f"Unknown label type: Target type was inferred to be {t!r}. "
                                 "Only ('binary', 'multiclass', 'continuous') are supported.")
        else:
            t = self.target_type
        self.target_type_ = t
        self.classes_ = None
        if t == "binary":
            self.classes_, y = np.unique(y, return_inverse=True)
            return y.astype(np.int64)
        if t == "multiclass":
            self.classes_, inv = np.unique(y, return_inverse=True)
            out = np.zeros((n, self.classes_.size), dtype=np.int64)
            out[np.arange(n), inv] = 1
            return out
        try:
            yf = y.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise InputError(f"continuous target must be numeric: {exc}") from exc
        if not np.all(np.isfinite(yf)):
            raise InputError("Input y contains NaN or infinity.")
        return yf

    def _ordinal(self, j, codes):
        """Codes into categories_ (missing -> the nan category when seen), -1 unknown."""
        n_vocab = len(self._vocab[j])
        missing = n_vocab if self._missing_seen(j) else -1
        out = codes.astype(np.int64)
        out[codes == -2] = -1
        out[codes == -1] = missing
        return out

    def _encodings(self, codes, y, target_mean):
        n_cats = [len(c) for c in self.categories_]
        if self.target_type_ == "multiclass":
            per_class = [self._encode_1d(codes, y[:, k], n_cats, target_mean[k])
                         for k in range(y.shape[1])]
            return [per_class[k][f] for f in range(codes.shape[1]) for k in range(y.shape[1])]
        return self._encode_1d(codes, y, n_cats, target_mean)

    def _encode_1d(self, codes, y, n_cats, y_mean):
        y = np.asarray(y, dtype=np.float64)
        out = []
        if self.smooth == "auto":
            y_var = np.var(y)
        elif not isinstance(self.smooth, numbers.Real) or self.smooth < 0:
            raise InputError(f"smooth must be 'auto' or a non-negative float, got {self.smooth!r}")
        for f in range(codes.shape[1]):
            c = codes[:, f]
            known = c >= 0
            ck, yk = c[known], y[known]
            # np.bincount adds in row order, exactly like sklearn's Cython loops.
            counts = np.bincount(ck, minlength=n_cats[f]).astype(np.float64)
            sums = np.bincount(ck, weights=yk, minlength=n_cats[f])
            with np.errstate(invalid="ignore", divide="ignore"):
                if self.smooth == "auto":
                    means = sums / counts
                    ssd = np.bincount(ck, weights=(yk - means[ck]) ** 2, minlength=n_cats[f])
                    lam = y_var * counts / (y_var * counts + ssd / counts)
                    enc = np.where(np.isnan(lam), y_mean, lam * means + (1 - lam) * y_mean)
                else:
                    s = float(self.smooth)
                    sm = np.full(n_cats[f], s * y_mean)
                    cnt = np.full(n_cats[f], s)
                    # sklearn starts each sum at smooth*mean and adds in row order
                    tot = np.bincount(np.concatenate([np.arange(n_cats[f]), ck]),
                                      weights=np.concatenate([sm, yk]), minlength=n_cats[f])
                    cnt = cnt + counts
                    enc = np.where(cnt == 0, y_mean, tot / cnt)
            out.append(enc.astype(np.float64))
        return out

    def fit_transform(self, X, y, **params):
        """Fit, then encode X with cross fitting (as sklearn's ``fit_transform``).

        Parameters
        ----------
        X : DataFrame, Table, 2-D array or dict of columns
        y : array-like of shape (n_samples,)

        Returns
        -------
        numpy.ndarray of shape (n_samples, n_features * n_outputs)
        """
        codes, y_enc = self._fit_all(X, y)
        folds = list(self._folds(X, y, codes.shape[0]))
        k = y_enc.shape[1] if y_enc.ndim == 2 else 1
        out = np.empty((codes.shape[0], codes.shape[1] * k))
        for train, test in folds:
            y_tr = y_enc[train]
            mean = np.mean(y_tr, axis=0)
            enc = self._encodings(codes[train], y_tr, mean)
            means = np.atleast_1d(mean)
            for e, table in enumerate(enc):
                f, cls = divmod(e, k)
                ct = codes[test, f]
                col = np.where(ct >= 0, table[np.maximum(ct, 0)], means[cls])
                out[test, e] = col
        from ._base import wrap_output
        return wrap_output(self, out, self.get_feature_names_out(), getattr(X, "index", None))

    def _folds(self, X, y, n):
        if HAVE_SKLEARN:
            from sklearn.model_selection import check_cv
            shuffle = True if self.shuffle == "deprecated" else self.shuffle
            kw = {"shuffle": shuffle}
            if self.random_state != "deprecated":
                kw["random_state"] = self.random_state
            if self.shuffle != "deprecated" or self.random_state != "deprecated":
                warnings.warn("`TargetEncoder.shuffle` and `TargetEncoder.random_state` are "
                              "deprecated in version 1.9 and will be removed in version 1.11. "
                              "Pass a cross-validation generator as `cv` argument to specify "
                              "the shuffling behaviour instead.", FutureWarning, stacklevel=3)
            cv = check_cv(self.cv, y, classifier=self.target_type_ != "continuous", **kw)
            Xa = np.zeros((n, 1))
            yield from cv.split(Xa, y)
            return
        # pragma: no cover - sklearn-less fallback: shuffled K-fold, sklearn's fold sizes
        k = int(self.cv)  # pragma: no cover
        rs = None if self.random_state == "deprecated" else self.random_state  # pragma: no cover
        idx = np.arange(n)  # pragma: no cover
        np.random.RandomState(rs).shuffle(idx)  # pragma: no cover
        sizes = np.full(k, n // k)  # pragma: no cover
        sizes[: n % k] += 1  # pragma: no cover
        start = 0  # pragma: no cover
        for s in sizes:  # pragma: no cover
            test = idx[start:start + s]
            yield np.setdiff1d(idx, test, assume_unique=False), test
            start += s

    # ------------------------------------------------------------------ transform
    def _n_out(self):
        return 1 if self.target_type_ != "multiclass" else len(self.classes_)

    def _programs(self, ups, frame=None):
        out = []
        k = self._n_out()
        means = np.atleast_1d(np.asarray(self.target_mean_, dtype=np.float64))
        for j, p in enumerate(ups):
            n_vocab = len(self._vocab[j])
            table = np.empty((n_vocab + 2, k))
            for cls in range(k):
                enc = np.asarray(self.encodings_[j * k + cls], dtype=np.float64)
                table[0, cls] = means[cls]
                table[1, cls] = enc[n_vocab] if self._missing_seen(j) else means[cls]
                table[2:, cls] = enc[:n_vocab]
            out.append(p.emitting(eng.EMIT_CODE_LOOKUP, k, table))
        return out

    def _names_out(self, names):
        if self.target_type_ != "multiclass":
            return list(names)
        return [f"{n}_{c}" for n in names for c in self.classes_]

    @property
    def partial_fit(self):
        """Not available: cross-fitting needs all rows at once."""
        raise AttributeError("TargetEncoder has no partial_fit: cross-fitting needs all rows")

    def _check_state(self):
        super()._check_state()
        self._vocab = [list(v) for v in self._vocab]
        self.encodings_ = [np.asarray(e, dtype=np.float64) for e in self.encodings_]
        if self.classes_ is not None:
            self.classes_ = np.asarray(self.classes_)

    @classmethod
    def from_sklearn(cls, fitted):
        """Build the equivalent fitted forgeline TargetEncoder from sklearn's."""
        from .encoders import _is_nan, _py
        from .scalers import _copy_fitted
        obj = _copy_fitted(cls(categories=fitted.categories, target_type=fitted.target_type,
                               smooth=fitted.smooth, cv=fitted.cv), fitted, ())
        obj.categories_ = [np.asarray(c) for c in fitted.categories_]
        obj._vocab = [[_py(v) for v in c if not _is_nan(v)] for c in fitted.categories_]
        obj.encodings_ = [np.asarray(e, dtype=np.float64) for e in fitted.encodings_]
        obj.target_mean_ = fitted.target_mean_
        obj.target_type_ = fitted.target_type_
        obj.classes_ = fitted.classes_
        return obj
