"""Importer for scikit-learn linear models.

Prediction follows scikit-learn 1.9 exactly: ``decision_function = X @ coef_.T +
intercept_``; classifiers predict ``classes_[decision > 0]`` (binary) or the argmax;
``LogisticRegression.predict_proba`` is ``expit`` for two classes and softmax otherwise;
``SGDClassifier`` uses one-vs-rest normalised ``expit`` (``log_loss``) or the modified
Huber formula; GLMs apply their link's inverse (identity or exp). Like scikit-learn,
non-finite inputs are rejected (:class:`~forgeline.DataError`).

One-vs-rest logistic regression is ``OneVsRestClassifier(LogisticRegression())`` in
scikit-learn 1.9 (``multi_class="ovr"`` is gone): its binary linear estimators are stacked
into one layer; ``predict_proba`` is each estimator's ``expit`` normalised over the classes,
and ``predict`` takes the first maximal decision value (``OneVsRestClassifier`` breaks ties
as ``np.argmax`` does).
"""

from __future__ import annotations

import numpy as np

from ..errors import NotFittedError, UnsupportedModelError
from .linear import LinearModel

# Estimators whose predict is exactly ``X @ coef_.T + intercept_``.
_REGRESSORS = {
    "LinearRegression", "Ridge", "RidgeCV", "Lasso", "LassoCV", "ElasticNet", "ElasticNetCV",
    "Lars", "LarsCV", "LassoLars", "LassoLarsCV", "LassoLarsIC", "OrthogonalMatchingPursuit",
    "BayesianRidge", "ARDRegression", "HuberRegressor", "QuantileRegressor",
    "TheilSenRegressor", "SGDRegressor",
}
_GLMS = {"PoissonRegressor", "GammaRegressor", "TweedieRegressor"}
# LinearClassifierMixin.decision_function, with the predict_proba each class defines.
_CLASSIFIERS = {
    "LogisticRegression", "LogisticRegressionCV", "SGDClassifier", "LinearSVC",
    "RidgeClassifier", "RidgeClassifierCV", "Perceptron",
}


def _feature_names(est, n):
    names = getattr(est, "feature_names_in_", None)
    return [str(c) for c in names] if names is not None else [f"x{i}" for i in range(n)]


def _source(est):
    import sklearn

    return {"library": "scikit-learn", "version": sklearn.__version__,
            "estimator": type(est).__name__}


def _glm_link(est) -> str:
    link = getattr(getattr(est, "_base_loss", None), "link", None)
    name = type(link).__name__
    if name == "IdentityLink":
        return "identity"
    if name == "LogLink":
        return "exp"
    raise UnsupportedModelError(f"{type(est).__name__}: unsupported GLM link {name}")


def try_import(obj, **options):
    """Return a :class:`~forgeline.models.linear.LinearModel` for a fitted scikit-learn
    linear estimator, or None when ``obj`` is not one.

    Raises
    ------
    NotFittedError
        The estimator is not fitted.
    UnsupportedModelError
        Sparse coefficients or a multilabel classifier.
    """
    mod = type(obj).__module__ or ""
    name = type(obj).__name__
    if mod.startswith("sklearn.multiclass") and name == "OneVsRestClassifier":
        return _import_ovr(obj, options)
    if not mod.startswith("sklearn.linear_model") and not mod.startswith("sklearn.svm"):
        return None
    if name not in _REGRESSORS | _GLMS | _CLASSIFIERS:
        return None
    if options:
        raise TypeError(f"unexpected importer options for {name}: {sorted(options)}")
    if not hasattr(obj, "coef_"):
        raise NotFittedError(f"{name} is not fitted")
    coef = obj.coef_
    if not isinstance(coef, np.ndarray):
        raise UnsupportedModelError(f"{name}: sparse coef_ is not supported; call densify()")
    # numpy promotion decides the dtype sklearn computes in (a python-float intercept is weak).
    dtype = np.result_type(coef, obj.intercept_)
    coef = coef.astype(dtype, copy=False)
    intercept = np.asarray(obj.intercept_, dtype=dtype)
    n_features = coef.shape[-1]
    common = {"feature_names": _feature_names(obj, n_features), "source": _source(obj),
              "input_cast": "promote", "finite_only": True}
    if name in _CLASSIFIERS:
        lb = getattr(obj, "_label_binarizer", None)
        if lb is not None and str(getattr(lb, "y_type_", "")).startswith("multilabel"):
            raise UnsupportedModelError(f"{name}: multilabel targets are not supported")
        classes = np.asarray(obj.classes_)
        proba = "none"
        if name in ("LogisticRegression", "LogisticRegressionCV"):
            proba = "logistic" if classes.size <= 2 else "softmax"
        elif name == "SGDClassifier":
            proba = {"log_loss": "logistic", "modified_huber": "modified_huber"}.get(obj.loss, "none")
        task = "binary" if classes.size <= 2 else "multiclass"
        return LinearModel.from_coef(coef, intercept, task=task, classes=classes, proba=proba,
                                     predict_from="raw", **common)
    link = _glm_link(obj) if name in _GLMS else "identity"
    return LinearModel.from_coef(coef, intercept, task="regression", link=link,
                                 output_2d=coef.ndim == 2, **common)


def _import_ovr(obj, options):
    """``OneVsRestClassifier`` over linear classifiers, as one multi-output linear layer."""
    if options:
        raise TypeError(f"unexpected importer options for OneVsRestClassifier: {sorted(options)}")
    if not hasattr(obj, "estimators_"):
        raise NotFittedError("OneVsRestClassifier is not fitted")
    if obj.multilabel_:
        raise UnsupportedModelError("OneVsRestClassifier: multilabel targets are not supported")
    parts = []
    for i, est in enumerate(obj.estimators_):
        sub = type(est).__name__
        if not (type(est).__module__ or "").startswith(("sklearn.linear_model", "sklearn.svm")) \
                or sub not in _CLASSIFIERS:
            raise UnsupportedModelError(f"OneVsRestClassifier: estimator {i} is {sub}; only linear "
                                        "classifiers are supported (a class seen in every or no "
                                        "training row gives a constant predictor)")
        m = try_import(est)
        if m.n_outputs != 1:
            raise UnsupportedModelError(f"OneVsRestClassifier: estimator {i} ({sub}) is not binary")
        parts.append(m)
    kinds = {p.proba for p in parts}
    if kinds - {"logistic", "none"}:
        # sklearn normalises modified-Huber rows that sum to zero into NaN; no exact match.
        raise UnsupportedModelError("OneVsRestClassifier: only logistic or probability-free "
                                    f"estimators are supported, got {sorted(kinds)}")
    proba = "logistic" if kinds == {"logistic"} else "none"
    dtype = np.result_type(*[p.arrays["l0.weight"] for p in parts])
    coef = np.vstack([p.coef_ for p in parts]).astype(dtype)
    intercept = np.concatenate([p.intercept_ for p in parts]).astype(dtype)
    classes = np.asarray(obj.classes_)
    task = "binary" if classes.size <= 2 else "multiclass"
    return LinearModel.from_coef(coef, intercept, task=task, classes=classes, proba=proba,
                                 predict_from="raw", feature_names=parts[0].feature_names,
                                 source=_source(obj), input_cast="promote", finite_only=True)
