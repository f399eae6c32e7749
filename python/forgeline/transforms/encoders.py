"""Categorical encoders: OneHotEncoder, OrdinalEncoder (sklearn's), CountEncoder, HashEncoder.

Input columns are read as categories through ``_frame.to_frame`` (strings are encoded with
Arrow compute); the native kernel then maps codes through small per-column tables.
"""

from __future__ import annotations

import numbers
import zlib

import numpy as np

from .._frame import CATEGORICAL, MISSING_CODE, UNSEEN_CODE
from ..errors import DataError, InputError
from . import _engine as eng
from ._common import NativeTransformer, StatelessTransformer


def _is_nan(v) -> bool:
    return v is None or (isinstance(v, float) and v != v)


def _copy_categories(obj, fitted):
    """Copy a fitted sklearn encoder's categories, vocabularies and infrequent indices onto
    ``obj`` (shared by OneHotEncoder.from_sklearn and OrdinalEncoder.from_sklearn)."""
    from .scalers import _copy_fitted

    obj = _copy_fitted(obj, fitted, ())
    obj.categories_ = [np.asarray(c) for c in fitted.categories_]
    obj._vocab = [[_py(v) for v in c if not _is_nan(v)] for c in fitted.categories_]
    inf = getattr(fitted, "_infrequent_indices", None) or [None] * len(fitted.categories_)
    obj._infrequent = [np.zeros(0, dtype=np.int64) if i is None else np.asarray(i, np.int64)
                       for i in inf]
    return obj


class _CategoricalBase(NativeTransformer):
    """Shared fitting of categories and their frequencies (mergeable: exact counts)."""

    _input_kind = CATEGORICAL

    def _explicit(self, n):
        cats = getattr(self, "categories", "auto")
        if isinstance(cats, str):
            if cats != "auto":
                raise InputError(f"categories must be 'auto' or a list, got {cats!r}")
            return None
        if len(cats) != n:
            raise InputError("Shape mismatch: if categories is an array, it has to be of shape "
                             "(n_features,).")
        return [tuple(x for x in c if not _is_nan(x)) for c in cats]

    def _accumulate(self, frame, y):
        """Per column: (vocabulary, counts per vocabulary entry, missing count)."""
        acc = []
        for c in frame.columns:
            vocab = tuple(c.vocabulary or ())
            # one counting pass: slot 0 unseen, 1 missing, 2 + code the categories
            both = np.bincount(c.values - UNSEEN_CODE, minlength=len(vocab) + 2)
            counts = both[2:].astype(np.int64)
            n_missing = int(both[MISSING_CODE - UNSEEN_CODE])
            acc.append((vocab, counts, n_missing))
        return {"cols": acc, "rows": frame.n_rows}

    @staticmethod
    def _merge_acc(a, b):
        cols = []
        for (va, ca, ma), (vb, cb, mb) in zip(a["cols"], b["cols"]):
            vocab = tuple(sorted(set(va) | set(vb)))
            pos = {v: i for i, v in enumerate(vocab)}
            counts = np.zeros(len(vocab), dtype=np.int64)
            counts[[pos[v] for v in va]] += ca
            counts[[pos[v] for v in vb]] += cb
            cols.append((vocab, counts, ma + mb))
        return {"cols": cols, "rows": a["rows"] + b["rows"]}

    def _fit_frame(self, frame, y):
        explicit = self._explicit(len(frame.names))
        if explicit is not None:
            frame = self._read_explicit(frame, explicit)
        self._acc = self._accumulate(frame, y)
        self._finalize(self._acc)

    def _read_explicit(self, frame, explicit):
        from .._frame import Frame, Column
        cols = []
        for c, voc in zip(frame.columns, explicit):
            vals = c.vocabulary or ()
            pos = {v: i for i, v in enumerate(voc)}
            remap = np.array([pos.get(v, UNSEEN_CODE) for v in vals] + [UNSEEN_CODE, MISSING_CODE],
                             dtype=np.int32)
            codes = remap[c.values]  # -1 -> MISSING, -2 -> UNSEEN via the two extra slots
            if np.any(codes == UNSEEN_CODE) and getattr(self, "handle_unknown", "error") == "error":
                bad = [v for v in vals if v not in pos][:5]
                raise DataError(f"Found unknown categories {bad} in column {c.name!r} during fit",
                                column=c.name)
            cols.append(Column(c.name, CATEGORICAL, codes, voc, c.valid))
        return Frame(cols, frame.n_rows)

    def _set_categories(self, acc):
        self._vocab = [list(v) for v, _, _ in acc["cols"]]
        cats = []
        for vocab, _, n_missing in acc["cols"]:
            vals = list(vocab) + ([np.nan] if n_missing else [])
            ints = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in vocab)
            nums = all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
                       for v in vocab)
            # sklearn's dtypes: int64 for integer categories, float64 for floats (NaN last),
            # object for strings
            dtype = (np.int64 if ints and vocab and not n_missing else
                     np.float64 if nums and vocab else object)
            cats.append(np.asarray(vals, dtype=dtype))
        self.categories_ = cats

    def _vocabularies(self):
        return [tuple(v) for v in self._vocab]

    def _check_unknown(self, frame):
        for c in frame.columns:
            if np.any(c.values == UNSEEN_CODE):
                raise DataError(f"Found unknown categories in column {c.name!r} during transform",
                                column=c.name)

    def _missing_seen(self, j) -> bool:
        cats = self.categories_[j]
        return len(cats) > 0 and _is_nan(cats[-1])


class OneHotEncoder(_CategoricalBase):
    """One-hot encode categorical columns, as sklearn's OneHotEncoder.

    Supports ``handle_unknown`` in ``{"error", "ignore", "infrequent_if_exist"}``,
    ``min_frequency``, ``max_categories`` and ``drop`` (None, "first", "if_binary" or one
    category per feature). Missing values seen in ``fit`` are a category (last, ``nan``).
    Category frequencies are merged exactly by ``partial_fit``/``merge``.

    Parameters
    ----------
    categories : "auto" or list of array-like
    drop : None, "first", "if_binary" or array-like
    sparse_output : bool
        True returns a scipy CSR matrix (sklearn's default), False a dense array.
    dtype : numpy float64
    handle_unknown : {"error", "ignore", "infrequent_if_exist"}
    min_frequency : int or float, optional
    max_categories : int, optional
    feature_name_combiner : "concat"
    n_threads : int or None
    """

    _state = ("categories_", "_vocab", "_infrequent", "drop_idx_")

    def __init__(self, *, categories="auto", drop=None, sparse_output=True, dtype=np.float64,
                 handle_unknown="error", min_frequency=None, max_categories=None,
                 feature_name_combiner="concat", n_threads=None):
        self.categories = categories
        self.drop = drop
        self.sparse_output = sparse_output
        self.dtype = dtype
        self.handle_unknown = handle_unknown
        self.min_frequency = min_frequency
        self.max_categories = max_categories
        self.feature_name_combiner = feature_name_combiner
        self.n_threads = n_threads

    def _check_params(self):
        if self.handle_unknown not in ("error", "ignore", "infrequent_if_exist", "warn"):
            raise InputError(f"handle_unknown must be 'error', 'ignore' or 'infrequent_if_exist', "
                             f"got {self.handle_unknown!r}")
        if self.feature_name_combiner != "concat":
            raise InputError("forgeline's OneHotEncoder supports feature_name_combiner='concat'")
        if self.dtype not in (np.float64, "float64", float):
            raise InputError(f"dtype must be float64, got {self.dtype!r}")

    def _infrequent_enabled(self):
        return (self.max_categories is not None and self.max_categories >= 1) or \
            self.min_frequency is not None

    def _identify_infrequent(self, counts, n_samples):
        mf = self.min_frequency
        if isinstance(mf, numbers.Integral):
            mask = counts < mf
        elif isinstance(mf, numbers.Real):
            mask = counts < n_samples * mf
        else:
            mask = np.zeros(counts.shape[0], dtype=bool)
        n_current = counts.size - mask.sum() + 1
        if self.max_categories is not None and self.max_categories < n_current:
            keep = self.max_categories - 1
            if keep == 0:
                mask[:] = True
            else:
                mask[np.argsort(counts, kind="mergesort")[:-keep]] = True
        out = np.flatnonzero(mask)
        return out if out.size else None

    def _finalize(self, acc):
        self._check_params()
        self._set_categories(acc)
        infrequent = []
        for j, (vocab, counts, n_missing) in enumerate(acc["cols"]):
            full = np.concatenate([counts, [n_missing]]) if n_missing else counts
            infrequent.append(self._identify_infrequent(full, acc["rows"])
                              if self._infrequent_enabled() else None)
        self._infrequent = [np.zeros(0, dtype=np.int64) if i is None else i.astype(np.int64)
                            for i in infrequent]
        self._set_drop()

    def _grouping(self, j):
        """Category index -> grouped index (frequent in order, then the infrequent group)."""
        n = len(self.categories_[j])
        inf = self._infrequent[j]
        if inf.size == 0:
            return np.arange(n), n
        mapping = np.empty(n, dtype=np.int64)
        n_freq = n - inf.size
        mapping[inf] = n_freq
        mapping[np.setdiff1d(np.arange(n), inf)] = np.arange(n_freq)
        return mapping, n_freq + 1

    def _set_drop(self):
        n = len(self.categories_)
        drop_after = [None] * n
        if self.drop is None:
            self.drop_idx_ = None
        elif isinstance(self.drop, str):
            if self.drop == "first":
                drop_after = [0] * n
            elif self.drop == "if_binary":
                drop_after = [0 if self._grouping(j)[1] == 2 else None for j in range(n)]
            else:
                raise InputError(f"drop must be None, 'first', 'if_binary' or array-like, got "
                                 f"{self.drop!r}")
        else:
            drops = list(self.drop)
            if len(drops) != n:
                raise InputError(f"`drop` should have length equal to the number of features "
                                 f"({n}), got {len(drops)}")
            for j, d in enumerate(drops):
                cats = list(self.categories_[j])
                idx = next((i for i, c in enumerate(cats) if (_is_nan(c) and _is_nan(d)) or
                            (not _is_nan(c) and not _is_nan(d) and c == d)), None)
                if idx is None:
                    raise InputError(f"The following categories were supposed to be dropped, but "
                                     f"were not found in the training data.\nCategory: {d}, "
                                     f"Feature: {j}")
                if idx in set(self._infrequent[j].tolist()):
                    raise InputError(f"Unable to drop category {cats[idx]!r} from feature {j} "
                                     "because it is infrequent")
                drop_after[j] = int(self._grouping(j)[0][idx])
        self._drop_after = drop_after
        if self.drop is not None:
            idx = []
            for j, d in enumerate(drop_after):
                if d is None or self._infrequent[j].size == 0:
                    idx.append(d)
                else:
                    idx.append(int(np.flatnonzero(self._grouping(j)[0] == d)[0]))
            self.drop_idx_ = np.asarray(idx, dtype=object)

    def _slots(self, j):
        """Map for the kernel (index code+2) and the output width of column j."""
        mapping, n_groups = self._grouping(j)
        d = self._drop_after[j] if hasattr(self, "_drop_after") else None
        group_slot = np.arange(n_groups)
        if d is not None:
            group_slot = np.where(group_slot == d, -1, np.where(group_slot > d, group_slot - 1,
                                                                group_slot))
        width = n_groups - (d is not None)
        n_vocab = len(self._vocab[j])
        m = np.full(n_vocab + 2, -1, dtype=np.int32)
        m[2:] = group_slot[mapping[:n_vocab]]
        has_inf = self._infrequent[j].size > 0
        if self._missing_seen(j):
            m[1] = group_slot[mapping[-1]]
        elif self._handle() == "infrequent_if_exist" and has_inf:
            m[1] = group_slot[n_groups - 1]
        if self._handle() == "infrequent_if_exist" and has_inf:
            m[0] = group_slot[n_groups - 1]
        return m, width

    def _handle(self):
        return "infrequent_if_exist" if self.handle_unknown == "warn" else self.handle_unknown

    def _programs(self, ups, frame=None):
        if frame is not None and self.handle_unknown == "error":
            self._check_unknown_or_missing(frame)
        if frame is not None and (self.handle_unknown == "warn" or (
                self.drop is not None and self.handle_unknown in ("ignore", "infrequent_if_exist"))):
            self._warn_unknown(frame)
        out = []
        for j, p in enumerate(ups):
            m, width = self._slots(j)
            if width == 0:
                continue
            out.append(p.emitting(eng.EMIT_CODE_ONEHOT, width, m))
        return out

    def _warn_unknown(self, frame):
        import warnings
        bad = [j for j, c in enumerate(frame.columns) if np.any(c.values == UNSEEN_CODE) or (
            not self._missing_seen(j) and np.any(c.values == MISSING_CODE))]
        if bad:
            tail = ("the infrequent category" if self._handle() == "infrequent_if_exist"
                    else "all zeros")
            warnings.warn(f"Found unknown categories in columns {bad} during transform. These "
                          f"unknown categories will be encoded as {tail}", UserWarning,
                          stacklevel=4)

    def _check_unknown_or_missing(self, frame):
        for j, c in enumerate(frame.columns):
            bad = np.any(c.values == UNSEEN_CODE) or (
                not self._missing_seen(j) and np.any(c.values == MISSING_CODE))
            if bad:
                raise DataError(f"Found unknown categories in column {j} ({c.name!r}) during "
                                "transform", column=c.name)

    @property
    def _sparse_out(self):
        return bool(self.sparse_output)

    def _fit_nnz(self, n_rows):
        """Ones in the one-hot output of the training data, from the fitted category counts."""
        acc = getattr(self, "_acc", None)
        if acc is None:
            return super()._fit_nnz(n_rows)
        nnz = 0
        for j, (_, counts, n_missing) in enumerate(acc["cols"]):
            m, width = self._slots(j)
            if width == 0:
                continue
            nnz += int(counts[m[2:] >= 0].sum()) + (int(n_missing) if m[1] >= 0 else 0)
        return nnz

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags

    def _names_out(self, names):
        out = []
        for j, name in enumerate(names):
            mapping, n_groups = self._grouping(j)
            cats = list(self.categories_[j])
            inf = set(self._infrequent[j].tolist())
            labels = [str(c) for i, c in enumerate(cats) if i not in inf]
            if inf:
                labels.append("infrequent_sklearn")
            d = self._drop_after[j]
            if d is not None:
                labels = [lb for g, lb in enumerate(labels) if g != d]
            out += [f"{name}_{lb}" for lb in labels]
        return out

    @property
    def infrequent_categories_(self):
        return [None if i.size == 0 else np.asarray(c)[i]
                for c, i in zip(self.categories_, self._infrequent)]

    def _check_state(self):
        super()._check_state()
        self._vocab = [list(v) for v in self._vocab] if hasattr(self, "_vocab") else None
        if self._vocab is None or len(self._vocab) != self.n_features_in_:
            raise _bundle("vocabulary does not match n_features_in_")
        self._infrequent = [np.asarray(i, dtype=np.int64) for i in self._infrequent]
        self._set_drop()

    @classmethod
    def from_sklearn(cls, fitted):
        """Build the equivalent fitted forgeline OneHotEncoder from sklearn's."""
        obj = cls(categories=fitted.categories, drop=fitted.drop,
                  sparse_output=fitted.sparse_output, handle_unknown=fitted.handle_unknown,
                  min_frequency=fitted.min_frequency, max_categories=fitted.max_categories)
        obj = _copy_categories(obj, fitted)
        obj._set_drop()
        return obj


class OrdinalEncoder(_CategoricalBase):
    """Encode categories as integers 0..n-1 (float64), as sklearn's OrdinalEncoder.

    Missing values seen in ``fit`` are encoded as ``encoded_missing_value``; with
    ``handle_unknown="use_encoded_value"`` unseen categories become ``unknown_value``.
    ``min_frequency``/``max_categories`` group infrequent categories into the last code.

    Parameters
    ----------
    categories : "auto" or list of array-like
    dtype : numpy float64
    handle_unknown : {"error", "use_encoded_value"}
    unknown_value : int or np.nan, optional
    encoded_missing_value : int or np.nan
    min_frequency, max_categories : optional
    n_threads : int or None
    """

    _state = ("categories_", "_vocab", "_infrequent")

    def __init__(self, *, categories="auto", dtype=np.float64, handle_unknown="error",
                 unknown_value=None, encoded_missing_value=np.nan, min_frequency=None,
                 max_categories=None, n_threads=None):
        self.categories = categories
        self.dtype = dtype
        self.handle_unknown = handle_unknown
        self.unknown_value = unknown_value
        self.encoded_missing_value = encoded_missing_value
        self.min_frequency = min_frequency
        self.max_categories = max_categories
        self.n_threads = n_threads

    _identify_infrequent = OneHotEncoder._identify_infrequent
    _infrequent_enabled = OneHotEncoder._infrequent_enabled
    _grouping = OneHotEncoder._grouping

    def _finalize(self, acc):
        if self.handle_unknown not in ("error", "use_encoded_value"):
            raise InputError("handle_unknown should be 'error' or 'use_encoded_value', got "
                             f"{self.handle_unknown!r}")
        if self.handle_unknown == "use_encoded_value":
            uv = self.unknown_value
            if not (_is_nan(uv) or isinstance(uv, numbers.Integral)):
                raise InputError("unknown_value should be an integer or np.nan when "
                                 f"handle_unknown is 'use_encoded_value', got {uv!r}")
        elif self.unknown_value is not None:
            raise InputError("unknown_value should only be set when handle_unknown is "
                             "'use_encoded_value'")
        self._set_categories(acc)
        self._infrequent = []
        for vocab, counts, n_missing in acc["cols"]:
            if not self._infrequent_enabled():
                self._infrequent.append(np.zeros(0, dtype=np.int64))
                continue
            # sklearn's OrdinalEncoder never treats the missing category as infrequent
            inf = self._identify_infrequent(counts, acc["rows"])
            self._infrequent.append(np.zeros(0, dtype=np.int64) if inf is None
                                    else inf.astype(np.int64))

    def _table(self, j):
        n_vocab = len(self._vocab[j])
        inf = self._infrequent[j]
        codes = np.arange(n_vocab, dtype=np.float64)
        if inf.size:
            mapping = np.empty(n_vocab, dtype=np.int64)
            n_freq = n_vocab - inf.size
            mapping[inf] = n_freq
            mapping[np.setdiff1d(np.arange(n_vocab), inf)] = np.arange(n_freq)
            codes = mapping.astype(np.float64)
        unknown = np.nan if self.unknown_value is None else float(self.unknown_value)
        missing = float(self.encoded_missing_value) if self._missing_seen(j) else unknown
        return np.concatenate([[unknown, missing], codes])

    def _programs(self, ups, frame=None):
        if frame is not None and self.handle_unknown == "error":
            OneHotEncoder._check_unknown_or_missing(self, frame)
        return [p.emitting(eng.EMIT_CODE_LOOKUP, 1, self._table(j)) for j, p in enumerate(ups)]

    def _check_state(self):
        super()._check_state()
        self._vocab = [list(v) for v in self._vocab]
        self._infrequent = [np.asarray(i, dtype=np.int64) for i in self._infrequent]

    @classmethod
    def from_sklearn(cls, fitted):
        """Build the equivalent fitted forgeline OrdinalEncoder from sklearn's."""
        obj = cls(categories=fitted.categories, handle_unknown=fitted.handle_unknown,
                  unknown_value=fitted.unknown_value,
                  encoded_missing_value=fitted.encoded_missing_value,
                  min_frequency=fitted.min_frequency, max_categories=fitted.max_categories)
        obj = _copy_categories(obj, fitted)
        return obj


class CountEncoder(_CategoricalBase):
    """Replace each category by its count (or frequency) in the fitted data.

    Missing values map to the count of missing values seen in ``fit``; unseen categories to
    ``unknown_value``. Counts merge exactly with ``partial_fit``/``merge``.

    Parameters
    ----------
    normalize : bool
        Frequencies (count / rows) instead of counts.
    unknown_value : float
    n_threads : int or None
    """

    _state = ("categories_", "_vocab", "counts_", "n_samples_seen_")

    def __init__(self, *, normalize=False, unknown_value=0.0, n_threads=None):
        self.normalize = normalize
        self.unknown_value = unknown_value
        self.n_threads = n_threads

    def _finalize(self, acc):
        self._set_categories(acc)
        self.counts_ = [np.concatenate([c, [m]]).astype(np.float64) if m else c.astype(np.float64)
                        for _, c, m in acc["cols"]]
        self._n_missing = [float(m) for _, _, m in acc["cols"]]
        self.n_samples_seen_ = int(acc["rows"])

    def _table(self, j):
        n_vocab = len(self._vocab[j])
        counts = self.counts_[j]
        missing = counts[-1] if len(counts) > n_vocab else 0.0
        t = np.concatenate([[float(self.unknown_value), missing], counts[:n_vocab]])
        if self.normalize:
            t[1:] = t[1:] / self.n_samples_seen_
        return t

    def _programs(self, ups, frame=None):
        return [p.emitting(eng.EMIT_CODE_LOOKUP, 1, self._table(j)) for j, p in enumerate(ups)]

    def _check_state(self):
        super()._check_state()
        self._vocab = [list(v) for v in self._vocab]
        self.counts_ = [np.asarray(c, dtype=np.float64) for c in self.counts_]


class HashEncoder(StatelessTransformer):
    """Hash each category into one of ``n_components`` one-hot columns per input column.

    Stateless apart from the schema: the bucket is ``crc32(utf-8 of str(value)) %
    n_components``, computed once per distinct value of a batch (never per row). Missing
    values give all zeros.

    Parameters
    ----------
    n_components : int
    n_threads : int or None
    """

    _input_kind = CATEGORICAL
    _state = ()

    def __init__(self, *, n_components=8, n_threads=None):
        self.n_components = n_components
        self.n_threads = n_threads

    def _check_params(self):
        if not isinstance(self.n_components, numbers.Integral) or self.n_components < 1:
            raise InputError(f"n_components must be a positive int, got {self.n_components!r}")

    def _programs(self, ups, frame=None):
        out = []
        for p, col in zip(ups, frame.columns):
            vocab = col.vocabulary or ()
            m = np.full(len(vocab) + 2, -1, dtype=np.int32)
            m[2:] = [zlib.crc32(str(v).encode("utf-8")) % self.n_components for v in vocab]
            out.append(p.emitting(eng.EMIT_CODE_ONEHOT, int(self.n_components), m))
        return out

    def _names_out(self, names):
        return [f"{n}_hash{k}" for n in names for k in range(int(self.n_components))]


def _py(v):
    return v.item() if isinstance(v, np.generic) else v


def _bundle(msg):
    from ..errors import BundleError
    return BundleError(msg)
