"""scikit-learn tree importers: DecisionTree, RandomForest, ExtraTrees, GradientBoosting and
HistGradientBoosting, classifiers and regressors.

Semantics follow scikit-learn's predict code:

* ``tree_``-based models compare the input rounded to float32 against float64 thresholds
  with ``<=``; NaN follows the node's ``missing_go_to_left``.
* Classifier trees' leaf values are normalised per leaf (``predict_proba``), forests add
  the per-tree values in estimator order and divide by the number of trees.
* GradientBoosting starts from its init estimator's raw prediction and adds
  ``learning_rate * value`` per stage; HistGradientBoosting starts from the baseline and adds
  tree values (float64 input); its categorical splits treat unknown and negative categories
  as missing.

Not supported (:class:`~forgeline.UnsupportedModelError`): multi-output models, a custom
``init`` estimator in GradientBoosting, and losses other than the built-in ones.
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedModelError
from .trees import (CATEGORICAL, INVALID_LEFT, MEMBER_LEFT, NAN_LEFT, TreeBuilder, TreeEnsemble,
                    settings)


def try_import(obj, **options):
    """Return a :class:`TreeEnsemble` for supported fitted sklearn tree models, else None."""
    mod = type(obj).__module__ or ""
    if not mod.startswith("sklearn."):
        return None
    from sklearn import ensemble, tree
    if isinstance(obj, (ensemble.HistGradientBoostingClassifier, ensemble.HistGradientBoostingRegressor)):
        _fitted(obj, "_predictors")
        return _import_hgb(obj)
    if isinstance(obj, (ensemble.GradientBoostingClassifier, ensemble.GradientBoostingRegressor)):
        _fitted(obj, "estimators_")
        return _import_gb(obj)
    if isinstance(obj, (ensemble.RandomForestClassifier, ensemble.RandomForestRegressor,
                        ensemble.ExtraTreesClassifier, ensemble.ExtraTreesRegressor)):
        _fitted(obj, "estimators_")
        return _import_forest(obj, obj.estimators_)
    if isinstance(obj, (tree.DecisionTreeClassifier, tree.DecisionTreeRegressor)):
        _fitted(obj, "tree_")
        return _import_forest(obj, [obj], single=True)
    return None


def _fitted(obj, attr):
    if not hasattr(obj, attr):
        from ..errors import NotFittedError
        raise NotFittedError(f"{type(obj).__name__} is not fitted")


def _names(obj):
    names = getattr(obj, "feature_names_in_", None)
    n = int(obj.n_features_in_)
    return [str(x) for x in names] if names is not None else [f"x{i}" for i in range(n)]


def _source(obj, extra=None):
    import sklearn
    d = {"library": "sklearn", "version": sklearn.__version__, "estimator": type(obj).__name__}
    d.update(extra or {})
    return d


def _add_sklearn_tree(b: TreeBuilder, t, leaf_values, output=0):
    """Append one sklearn ``Tree`` (``tree_``) with the given per-node leaf values."""
    left = np.asarray(t.children_left, dtype=np.int64)
    right = np.asarray(t.children_right, dtype=np.int64)
    leaf = left < 0
    feat = np.where(leaf, -1, np.asarray(t.feature, dtype=np.int64))
    thr = np.where(leaf, 0.0, np.asarray(t.threshold, dtype=np.float64))
    mgl = np.asarray(getattr(t, "missing_go_to_left", np.zeros(left.size, dtype=np.uint8)), dtype=bool)
    flags = np.where(mgl & ~leaf, NAN_LEFT, 0).astype(np.uint32)
    lv = np.where(leaf[:, None], leaf_values, 0.0) if leaf_values.ndim == 2 else np.where(leaf, leaf_values, 0.0)
    b.add_tree(feat, thr, np.where(leaf, 0, left), np.where(leaf, 0, right), flags, lv, output=output)


def _classifier_leaf_values(t, n_classes):
    # DecisionTreeClassifier.predict_proba: leaf values normalised to sum to one, 0 -> 1.
    proba = np.asarray(t.value)[:, 0, :n_classes].astype(np.float64)
    normalizer = proba.sum(axis=1)[:, np.newaxis]
    normalizer[normalizer == 0.0] = 1.0
    proba /= normalizer
    return proba


def _import_forest(obj, estimators, single=False):
    from sklearn.base import is_classifier
    if getattr(obj, "n_outputs_", 1) != 1:
        raise UnsupportedModelError(f"multi-output {type(obj).__name__} is not supported")
    clf = is_classifier(obj)
    if clf:
        classes = np.asarray(obj.classes_)
        k = len(classes)
        b = TreeBuilder(leaf_dim=k)
        for e in estimators:
            _add_sklearn_tree(b, e.tree_, _classifier_leaf_values(e.tree_, k))
        task = "binary" if k == 2 else "multiclass"
    else:
        classes, k = None, 1
        b = TreeBuilder(leaf_dim=1)
        for e in estimators:
            _add_sklearn_tree(b, e.tree_, np.asarray(e.tree_.value)[:, 0, 0].astype(np.float64))
        task = "regression"
    st = settings(input_mode="float32", n_outputs=k, leaf_dim=k,
                  divisor=0.0 if single else float(len(estimators)))
    return TreeEnsemble(feature_names=_names(obj), task=task, settings=st,
                        arrays=b.arrays(np.zeros(k)), classes=classes, source=_source(obj))


def _loss_link(obj, k, classifier):
    loss = getattr(obj, "_loss", None)
    name = type(loss).__name__ if loss is not None else ""
    if classifier:
        if name == "HalfBinomialLoss":
            return "sigmoid"
        if name == "HalfMultinomialLoss":
            return "softmax"
        if name == "ExponentialLoss":
            raise UnsupportedModelError("GradientBoostingClassifier loss='exponential' is not supported")
        raise UnsupportedModelError(f"{type(obj).__name__} loss {name!r} is not supported")
    if name in ("HalfSquaredError", "AbsoluteError", "PinballLoss", "HuberLoss"):
        return "identity"
    if name in ("HalfPoissonLoss", "HalfGammaLoss", "HalfTweedieLoss", "HalfTweedieLossIdentity"):
        if name == "HalfTweedieLossIdentity":
            return "identity"
        return "exp"
    raise UnsupportedModelError(f"{type(obj).__name__} loss {name!r} is not supported")


def _import_gb(obj):
    from sklearn.base import is_classifier
    from sklearn.dummy import DummyClassifier, DummyRegressor
    clf = is_classifier(obj)
    init = obj.init_
    if not (init == "zero" or isinstance(init, (DummyClassifier, DummyRegressor))):
        raise UnsupportedModelError(f"GradientBoosting with a custom init estimator "
                                    f"({type(init).__name__}) is not supported")
    est = obj.estimators_
    k = est.shape[1]
    base = np.asarray(obj._raw_predict_init(np.zeros((1, obj.n_features_in_), dtype=np.float32)),
                      dtype=np.float64).reshape(-1)
    b = TreeBuilder(leaf_dim=1)
    lr = float(obj.learning_rate)
    for i in range(est.shape[0]):
        for c in range(k):
            t = est[i, c].tree_
            # predict_stages adds `scale * value` per stage; the product is the same double.
            _add_sklearn_tree(b, t, lr * np.asarray(t.value)[:, 0, 0].astype(np.float64), output=c)
    link = _loss_link(obj, k, clf)
    task = ("binary" if k == 1 else "multiclass") if clf else "regression"
    st = settings(input_mode="float32", n_outputs=k, link=link)
    return TreeEnsemble(feature_names=_names(obj), task=task, settings=st, arrays=b.arrays(base),
                        classes=np.asarray(obj.classes_) if clf else None, source=_source(obj),
                        extra={"decision": "raw_ge0"})


def _import_hgb(obj):
    from sklearn.base import is_classifier
    clf = is_classifier(obj)
    k = int(obj.n_trees_per_iteration_)
    base = np.asarray(obj._baseline_prediction, dtype=np.float64).reshape(-1)
    if base.size != k:
        base = np.broadcast_to(base, (k,)).copy()
    n = int(obj.n_features_in_)
    col_of = np.arange(n)  # tree feature index -> input column
    cats = None
    pre = getattr(obj, "_preprocessor", None)
    if pre is not None:
        # Categorical columns go through an OrdinalEncoder (unknown -> NaN) and are moved
        # first. Fold both into the trees: splits on raw integer categories, original order.
        cat_mask = np.asarray(obj.is_categorical_, dtype=bool)
        col_of = np.concatenate([np.nonzero(cat_mask)[0], np.nonzero(~cat_mask)[0]])
        enc = pre.named_transformers_["encoder"]
        cats = []
        for c in enc.categories_:
            c = np.asarray(c)
            if c.dtype.kind not in "iuf":
                raise UnsupportedModelError("HistGradientBoosting with non-numeric categories is not "
                                            "supported; integer-code the categories first")
            c = c[~np.isnan(c.astype(np.float64))].astype(np.float64)
            if c.size and (c.min() < 0 or (c != np.trunc(c)).any() or c.max() > 1e6):
                raise UnsupportedModelError("HistGradientBoosting categories must be integers in [0, 1e6]")
            cats.append(c.astype(np.int64))
    b = TreeBuilder(leaf_dim=1)
    for it in obj._predictors:
        for c, pred in enumerate(it):
            _add_hgb_tree(b, pred, c, col_of, cats)
    link = _loss_link(obj, k, clf)
    task = ("binary" if k == 1 else "multiclass") if clf else "regression"
    st = settings(input_mode="float64", n_outputs=k, link=link, cat_rule="integral")
    return TreeEnsemble(feature_names=_names(obj), task=task, settings=st, arrays=b.arrays(base),
                        classes=np.asarray(obj.classes_) if clf else None, source=_source(obj),
                        extra={"decision": "raw_gt0"})


def _pack(bits: np.ndarray) -> np.ndarray:
    nw = (bits.size + 31) // 32
    padded = np.zeros(nw * 32, dtype=np.uint8)
    padded[:bits.size] = bits
    return np.packbits(padded, bitorder="little").view(np.uint32).copy()


def _add_hgb_tree(b: TreeBuilder, pred, output, col_of, cats):
    nodes = pred.nodes
    leaf = nodes["is_leaf"].astype(bool)
    n = leaf.size
    tf = nodes["feature_idx"].astype(np.int64)
    feat = np.where(leaf, -1, col_of[np.where(leaf, 0, tf)])
    thr = np.where(leaf, 0.0, nodes["num_threshold"].astype(np.float64))
    mgl = nodes["missing_go_to_left"].astype(bool)
    flags = np.where(mgl & ~leaf, NAN_LEFT, 0).astype(np.uint32)
    cat_off = np.zeros(n, dtype=np.int32)
    cat_nw = np.zeros(n, dtype=np.int32)
    is_cat = nodes["is_categorical"].astype(bool) & ~leaf
    for i in np.nonzero(is_cat)[0]:
        words = np.asarray(pred.raw_left_cat_bitsets[nodes["bitset_idx"][i]], dtype=np.uint32)
        codes_left = np.nonzero(np.unpackbits(words.view(np.uint8), bitorder="little"))[0]
        known = cats[int(tf[i])]  # encoder categories: code -> raw value; all codes known
        codes_left = codes_left[codes_left < known.size]
        # Whole words: bits past the last known category are unknown categories too.
        size = (int(known.max()) // 32 + 1) * 32 if known.size else 0
        bits = np.zeros(size, dtype=bool)
        bits[known[codes_left]] = True
        if mgl[i]:
            # Unknown categories are missing; missing goes left: fold them into the left set.
            unknown = np.ones(size, dtype=bool)
            unknown[known] = False
            bits |= unknown
            flags[i] |= INVALID_LEFT
        off, nw = b.add_bitset(_pack(bits))
        cat_off[i], cat_nw[i] = off, nw
        flags[i] |= CATEGORICAL | MEMBER_LEFT
        thr[i] = 0.0
    left = np.where(leaf, 0, nodes["left"].astype(np.int64))
    right = np.where(leaf, 0, nodes["right"].astype(np.int64))
    b.add_tree(feat, thr, left, right, flags, np.where(leaf, nodes["value"], 0.0), output=output,
               cat_offset=cat_off, cat_nwords=cat_nw)
