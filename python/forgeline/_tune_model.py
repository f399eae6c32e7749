"""Model-level reuse in :mod:`forgeline.tune`: the binned training matrix of
``HistGradientBoosting*``.

sklearn's histogram gradient boosting starts every ``fit`` by binning its training matrix
(``_BinMapper``: one sort per column, about half the fit time on a wide one-hot matrix). The
binning depends only on the training rows and the mapper's own parameters (``max_bins``,
categorical columns and, above ``subsample`` rows, the seed), never on the boosting
parameters a search usually varies. So every candidate that shares the fold and the cached
prefix gets the same bins: we fit the mapper once and hand the fitted mapper and its binned
matrix to the other candidates. The model is then bit-identical to a plain ``fit``: same
thresholds, same uint8 matrix, same trees.

The hand-over goes through the estimator's ``_bin_data`` hook, set on the fold's private
clone only (never on the user's estimator or ``best_estimator_``). When anything does not
match exactly (an internal early-stopping split, another dtype or memory layout, a sample
weight, a newer sklearn that no longer calls the hook) the hook steps aside and the model
bins its data itself.
"""

from __future__ import annotations

import numpy as np

from ._tune_cv import freeze


def _hgb_base():
    try:
        from sklearn.ensemble._hist_gradient_boosting.gradient_boosting import (
            BaseHistGradientBoosting)
    except ImportError:  # pragma: no cover - private path moved in a future sklearn
        return None
    return BaseHistGradientBoosting


def _same_buffer(a, b) -> bool:
    return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape
            and a.dtype == b.dtype and a.strides == b.strides
            and a.__array_interface__["data"][0] == b.__array_interface__["data"][0])


def _mapper_key(mapper, n_rows: int):
    params = mapper.get_params()
    params.pop("n_threads", None)  # the thresholds are computed per column: no effect
    if n_rows <= params.get("subsample") or params.get("subsample") is None:
        params.pop("random_state", None)  # only used to subsample more than that many rows
    return freeze(params)


def install_bin_cache(model, X_train, cache, key) -> list:
    """Let ``model`` (a fold's private clone) reuse binned training data cached under
    ``key`` (fold, rows and prefix). Returns a one-element list set to True on a hit;
    does nothing unless ``model`` is a HistGradientBoosting estimator and ``X_train`` an
    ndarray."""
    hit = [False]
    base = _hgb_base()
    if (cache is None or base is None or not isinstance(model, base)
            or not isinstance(X_train, np.ndarray) or not hasattr(base, "_bin_data")):
        return hit
    original = type(model)._bin_data

    def _bin_data(X, sample_weight, is_training_data, *args, **kwargs):
        mapper = getattr(model, "_bin_mapper", None)
        if (args or kwargs or not is_training_data or sample_weight is not None
                or mapper is None or not _same_buffer(X, X_train)):
            return original(model, X, sample_weight, is_training_data, *args, **kwargs)
        mkey = ("hgb-bins", key, _mapper_key(mapper, X.shape[0]))

        def _fit():
            binned = original(model, X, sample_weight, is_training_data)
            # shared read-only between candidates: a write would raise, never corrupt
            binned.flags.writeable = False
            return (model._bin_mapper, binned)

        (fitted, binned), was_hit, _ = cache.get_or_fit(mkey, _fit)
        if was_hit:
            model._bin_mapper = fitted
            hit[0] = True
        return binned

    model._bin_data = _bin_data
    return hit


def remove_bin_cache(model) -> None:
    """Drop the hook so the fitted fold model pickles and behaves like a plain one."""
    model.__dict__.pop("_bin_data", None)
