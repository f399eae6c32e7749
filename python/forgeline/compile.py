"""compile(): fitted pipeline or model -> verified native :class:`~forgeline.Scorer`."""

from __future__ import annotations

import platform
import time
from datetime import datetime, timezone

import numpy as np

from . import _frame
from ._sklearn_plan import Builder, apply
from ._version import __version__
from .errors import CompileError, UnsupportedModelError
from .models import import_model
from .plan import FeaturePlan, Sym, used_groups
from .schema import ColumnSpec, Schema
from .scorer import Scorer

#: Relative tolerance of self-verification, by the precision the source computes in
#: (DESIGN.md's exactness contract).
RTOL_FLOAT64 = 1e-12
# Sources that compute in float32 (XGBoost): margins agree to ~1 ulp, but the source's own
# float32 link function adds a few ulps of its own rounding; 1e-6 is the float32 contract.
RTOL_FLOAT32 = 1e-6


def compile(fitted, sample=None, *, verify: bool = True, profile: bool = True,
            n_threads: int | None = None, fold: bool = True, **model_options) -> Scorer:  # noqa: A001
    """Compile a fitted model or pipeline into a native :class:`~forgeline.Scorer`.

    Parameters
    ----------
    fitted
        A fitted scikit-learn ``Pipeline`` (with ``ColumnTransformer`` steps, sklearn's or
        forgeline's transformers and a supported final estimator), a bare supported model
        (LightGBM/XGBoost booster or sklearn wrapper, sklearn estimator, torch/keras MLP), or
        a pipeline of transformers only (the Scorer then only has ``transform``).
    sample
        Representative input rows (any container forgeline accepts). It fixes the input
        schema, is scored by both the original and the plan to verify the compilation, and
        fits the reference drift profile. Required unless ``verify=False`` and the model
        carries its feature names.
    verify : bool
        Score ``sample`` with the original and the Scorer and raise :class:`CompileError`
        (naming the first differing op and column) if they disagree beyond the exactness
        contract.
    profile : bool
        Fit the reference :class:`~forgeline.Profile` on ``sample`` (inputs + model output).
    n_threads : int, optional
        Threads for verification scoring.
    fold : bool
        Fold a linear model into the feature plan (scalers into the weights, encoders into
        table look-ups; see :mod:`forgeline._fold`), so predictions run as one fused native
        pass; fold the per-column monotone maps in front of a tree model (imputers,
        scalers, log1p, clip, binning) into its split thresholds, so those columns are read
        raw (see :mod:`forgeline._fold_trees`). Verification scores the sample through the
        folded plan.
    **model_options
        Passed to the model importer (e.g. ``num_iteration`` for LightGBM).

    Raises
    ------
    UnsupportedModelError
        Naming the first transformer, layer or model feature that cannot be compiled.
    CompileError
        When verification finds a mismatch.
    """
    t0 = time.perf_counter()
    steps, final = _split(fitted)
    in_names = _input_names(fitted, steps, final, sample)
    if sample is not None:
        sample_frame = _frame.to_frame(sample, columns=in_names) if in_names else _frame.to_frame(sample)
        if not in_names:
            in_names = sample_frame.names
    else:
        if not in_names:
            raise CompileError("compile needs a sample (or a model that records its feature names)")
        sample_frame = None
    if sample_frame is not None:
        base_schema = Schema.infer(sample_frame)
        inputs = [(c.name, c.kind) for c in base_schema]
        vocabs = {c.name: list(c.vocabulary) for c in base_schema if c.vocabulary is not None}
    else:
        inputs = [(n, _frame.NUMERIC) for n in in_names]
        vocabs = {}
    native_categorical = _lightgbm_pandas_categories(final, steps, sample)
    for col, cats in native_categorical.items():
        vocabs[col] = list(cats)  # LightGBM's own category order defines the codes
    b = Builder(inputs, vocabs)
    syms = b.base_syms()
    for step_name, step in steps:
        syms = apply(b, step, syms, step_name)
    feature_names = _feature_names(fitted, steps, len(syms))
    for s in syms:
        if b.is_code[s.group] and b.groups[s.group].emit == "scalar" and \
                b.groups[s.group].source not in native_categorical:
            g = b.groups[s.group]
            raise UnsupportedModelError(
                f"categorical column {g.source!r} reaches the model without an encoder; add an "
                "OneHotEncoder/OrdinalEncoder", column=g.source)
    _check_onehot_unique(syms)
    model = None
    if final is not None:
        model = import_model(final, **model_options)
        if model.n_features != len(syms):
            raise CompileError(f"the model expects {model.n_features} features but the "
                               f"preprocessing produces {len(syms)}")
    # Columns no output depends on (dropped by a ColumnTransformer, all-missing) are not
    # required at scoring time.
    used = {b.groups[g].source for g in used_groups(b.groups, syms)}
    inputs = [(n, k) for n, k in inputs if n in used]
    schema = Schema([ColumnSpec(n, k, _dtype_of(sample_frame, n, k),
                                tuple(b.vocab[n]) if k == _frame.CATEGORICAL else None)
                     for n, k in inputs])
    features = FeaturePlan(inputs, b.groups, syms, feature_names,
                           {k: u for k, (u, _) in b.udfs.items()}).pruned()
    metadata = _metadata(fitted, final, model, sample_frame, in_names)
    scorer = Scorer(schema, features, model, metadata=metadata)
    if fold and model is not None:
        from ._fold import fold as fold_linear

        scorer.folded = fold_linear(features, model)
        if scorer.folded is None:
            from ._fold_trees import fold as fold_trees

            scorer.tree_fold = fold_trees(features, model)
    if sample is not None and verify:
        _verify(fitted, steps, final, scorer, sample, n_threads)
    if sample is not None and profile:
        scorer.profile = _fit_profile(scorer, sample, n_threads)
    scorer.metadata["compile_seconds"] = round(time.perf_counter() - t0, 4)
    return scorer


# --------------------------------------------------------------------------- structure

def _lightgbm_pandas_categories(final, steps, sample) -> dict[str, list]:
    """{column: categories} for a bare LightGBM model trained on pandas ``category`` columns.

    LightGBM codes such a column by its position in the training categories
    (``pandas_categorical``), and treats negative codes (unseen) like missing values, which
    is what the plan's code register gives (-2 unseen, NaN missing).
    """
    if steps or final is None or sample is None or _frame._module_root(sample) != "pandas":
        return {}
    if not type(final).__module__.startswith("lightgbm"):
        return {}
    booster = getattr(final, "booster_", final)
    cats = getattr(booster, "pandas_categorical", None)
    if not cats:
        return {}
    cat_cols = [str(c) for c in sample.columns if str(sample[c].dtype) == "category"]
    if len(cat_cols) != len(cats):
        raise UnsupportedModelError(
            f"the LightGBM model has {len(cats)} pandas categorical features but the sample has "
            f"{len(cat_cols)} category-dtype columns; pass a sample with the training dtypes")
    return {c: list(v) for c, v in zip(cat_cols, cats)}


def _is_estimator_with_output(obj) -> bool:
    return any(hasattr(obj, m) for m in ("predict", "predict_proba", "decision_function"))


def _split(fitted):
    """(preprocessing steps, final model or None)."""
    if type(fitted).__name__ == "Pipeline":
        steps = list(fitted.steps)
        last_name, last = steps[-1]
        if last in ("passthrough", None) or not _is_estimator_with_output(last) or \
                type(last).__name__ in ("ColumnTransformer", "Pipeline"):
            return steps, None
        return steps[:-1], last
    if type(fitted).__name__ == "ColumnTransformer" or (hasattr(fitted, "transform") and
                                                         not _is_estimator_with_output(fitted)):
        return [("", fitted)], None
    return [], fitted


def _input_names(fitted, steps, final, sample) -> list[str]:
    names = getattr(fitted, "feature_names_in_", None)
    if names is None and steps:
        names = getattr(steps[0][1], "feature_names_in_", None)
    if names is not None:
        return [str(n) for n in names]
    if final is not None and not steps:
        fn = _model_feature_names(final)
        if fn and sample is not None:
            cols = _frame.to_frame(sample).names
            if set(fn) <= set(cols):
                return fn
        if sample is None and fn:
            return fn
    if sample is not None:
        return []  # take the sample's columns in order
    return []


def _model_feature_names(model) -> list[str] | None:
    for attr in ("feature_names_in_", "feature_name_", "feature_names"):
        v = getattr(model, attr, None)
        if v is not None and not callable(v):
            return [str(n) for n in v]
    fn = getattr(model, "feature_name", None)
    if callable(fn):
        try:
            return [str(n) for n in fn()]
        except Exception:  # noqa: BLE001 - a booster without names
            return None
    return None


def _feature_names(fitted, steps, n: int) -> list[str]:
    if steps:
        try:
            pre = fitted[:-1] if type(fitted).__name__ == "Pipeline" and len(steps) < len(fitted.steps) \
                else (fitted if type(fitted).__name__ == "Pipeline" else steps[0][1])
            names = [str(x) for x in pre.get_feature_names_out()]
            if len(names) == n:
                return names
        except Exception:  # noqa: BLE001 - transformers without names
            pass
    return [f"f{i}" for i in range(n)]


def _check_onehot_unique(syms: list[Sym]) -> None:
    seen = set()
    for s in syms:
        if s in seen:
            raise UnsupportedModelError("the same one-hot/feature output is used twice")
        seen.add(s)


def _dtype_of(frame, name, kind) -> str:
    if frame is None or kind != _frame.NUMERIC:
        return "float64" if kind == _frame.NUMERIC else ""
    return str(frame[name].values.dtype)


def _metadata(fitted, final, model, sample_frame, in_names) -> dict:
    src = getattr(model, "source", None) or {}
    est = final if final is not None else fitted
    return {
        "forgeline_version": __version__,
        "source": src.get("library") or type(est).__module__.split(".")[0],
        "source_version": src.get("version", _lib_version(type(est).__module__.split(".")[0])),
        "estimator": f"{type(fitted).__module__}.{type(fitted).__qualname__}",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "sample_rows": None if sample_frame is None else int(sample_frame.n_rows),
        "feature_names": list(in_names),
        "classes": None if model is None or model.classes_ is None else
        [c.item() if isinstance(c, np.generic) else c for c in model.classes_],
        "task": None if model is None else model.task,
    }


def _lib_version(mod: str) -> str | None:
    import sys

    m = sys.modules.get(mod)
    return getattr(m, "__version__", None)


# --------------------------------------------------------------------------- verification

def _rtol(model) -> float:
    if model is None:
        return RTOL_FLOAT64
    return float(getattr(model, "verify_rtol", None) or
                 (RTOL_FLOAT32 if (model.source or {}).get("library") == "xgboost" else RTOL_FLOAT64))


def _close(a, b, rtol, scale=None, atol=None) -> np.ndarray:
    """|a - b| <= rtol * (|b| + scale) + atol, NaN matching NaN.

    ``scale`` is the magnitude of the terms summed into ``b`` (a linear model's or network's
    ``error_scale``): two correct summation orders of a cancelling sum differ by about
    eps * sum|terms|, not eps * |sum|, so the contract is relative to that magnitude.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    both_nan = np.isnan(a) & np.isnan(b)
    mag = np.abs(b) if scale is None else np.abs(b) + np.asarray(scale, dtype=np.float64).reshape(b.shape)
    return both_nan | (np.abs(a - b) <= rtol * mag + (rtol * 1e-3 if atol is None else atol))


def _reference(fitted, final, X):
    """Outputs of the original: dict name -> array."""
    out = {}
    if final is None:
        out["transform"] = _dense(fitted.transform(X))
        return out
    for name, call in (("predict_proba", getattr(fitted, "predict_proba", None)),
                       ("predict", getattr(fitted, "predict", None))):
        if call is None:
            continue
        try:
            out[name] = np.asarray(call(X))
        except (AttributeError, NotImplementedError):
            continue
    return out


def _dense(m):
    return m.toarray() if hasattr(m, "toarray") else np.asarray(m)


def _booster_reference(fitted, sample):
    """predict() of a bare LightGBM / XGBoost booster, or None for other objects."""
    mod = type(fitted).__module__ or ""
    name = type(fitted).__name__
    if mod.startswith("lightgbm") and name == "Booster":
        return {"predict": np.asarray(fitted.predict(sample))}
    if mod.startswith("xgboost") and name == "Booster":
        import xgboost as xgb

        cats = _frame._module_root(sample) == "pandas" and any(
            str(t) == "category" for t in getattr(sample, "dtypes", []))
        return {"predict": np.asarray(fitted.predict(xgb.DMatrix(sample, enable_categorical=cats)))}
    return None


def _verify(fitted, steps, final, scorer: Scorer, sample, n_threads) -> None:
    model = scorer.model
    if final is not None and not _is_sklearn_like(fitted):
        ref = _booster_reference(fitted, sample)
        if ref is None:
            return  # torch/keras modules: covered by the importers' oracle tests (see notes)
    else:
        ref = _reference(fitted, final, sample)
    rtol = _rtol(model)
    if steps:
        pre = fitted if final is None else (fitted[:-1] if type(fitted).__name__ == "Pipeline" else None)
        if pre is not None:
            want = ref["transform"] if final is None else _dense(pre.transform(sample))
            got = scorer.transform(sample, n_threads=n_threads)
            _compare_features(scorer, want, got)
    if final is None:
        return
    booster = final is not None and not _is_sklearn_like(fitted)
    for name, want in ref.items():
        if booster and model.classes_ is not None:
            # a booster's predict() gives probabilities: P(class 1) for binary models
            got = scorer.predict_proba(sample, n_threads=n_threads)
            if got.ndim == 2 and got.shape[1] == 2 and want.ndim == 1:
                got = got[:, 1]
        else:
            got = getattr(scorer, name)(sample, n_threads=n_threads)
        if name == "predict" and (want.dtype.kind not in "fc"):
            mismatch = np.asarray(got) != want
            proba = ref.get("predict_proba")
            if proba is not None and proba.ndim == 2 and len(proba):
                # a row whose top two probabilities tie to within rounding may flip label
                top2 = np.sort(proba, axis=1)[:, -2:] if proba.shape[1] > 1 else np.c_[proba, proba]
                mismatch &= (top2[:, 1] - top2[:, 0]) > 1e-9
            bad = np.flatnonzero(mismatch)
        elif name == "predict_proba" or (booster and model.classes_ is not None):
            # probabilities live in [0, 1]: an absolute tolerance is the meaningful one
            bad = np.flatnonzero(~_close(got, want, rtol, atol=rtol).reshape(len(want), -1).all(axis=1))
        else:
            scale = _error_scale(scorer, sample, want)
            bad = np.flatnonzero(~_close(got, want, rtol, scale=scale).reshape(len(want), -1).all(axis=1))
        if bad.size:
            i = int(bad[0])
            raise CompileError(
                f"verification failed: {name} differs from the original on {bad.size} of "
                f"{len(want)} sample rows (first: row {i}, got {np.asarray(got)[i]!r}, "
                f"want {want[i]!r}); op: model {type(model).__name__}", op=type(model).__name__)


def _error_scale(scorer: Scorer, sample, want):
    """The model's summed-term magnitude for regression outputs, when it can say (linear
    models and networks); None otherwise (trees sum in the source's own order)."""
    fn = getattr(scorer.model, "error_scale", None)
    if fn is None:
        return None
    scale = np.asarray(fn(scorer.transform(sample)), dtype=np.float64)
    if scorer.folded is not None:
        # folded scaler shifts are terms of the sum too (forgeline._fold's docstring)
        shift = scorer.folded.shift_magnitude
        scale = scale + (shift if scale.ndim == 2 else shift[0])
    return scale if scale.size == np.asarray(want).size else None


def _is_sklearn_like(obj) -> bool:
    return hasattr(obj, "get_params") and hasattr(obj, "predict") or type(obj).__name__ == "Pipeline"


def _compare_features(scorer: Scorer, want, got) -> None:
    want = np.asarray(want, dtype=np.float64)
    if want.shape != got.shape:
        raise CompileError(f"verification failed: the plan produces {got.shape[1]} features, "
                           f"the original {want.shape[1]}")
    ok = _close(got, want, RTOL_FLOAT64)
    if ok.all():
        return
    rows, cols = np.nonzero(~ok)
    j = int(cols.min())
    i = int(rows[cols == j][0])
    sym = scorer.features.outputs[j]
    g = scorer.features.groups[sym.group]
    raise CompileError(
        f"verification failed at feature {scorer.features.feature_names[j]!r} (row {i}: got "
        f"{got[i, j]!r}, want {want[i, j]!r}); op: {g.origin}, column: {g.source!r}",
        op=g.origin, column=g.source)


def _fit_profile(scorer: Scorer, sample, n_threads):
    try:
        from .drift import Profile
    except ImportError:  # drift module not available in this build
        return None
    from .scorer import _prediction_column

    frame = scorer.profile_frame(sample)
    pred = None
    if scorer.model is not None:
        out = (scorer.predict_proba(sample, n_threads=n_threads) if scorer.model.classes_ is not None
               else scorer.predict(sample, n_threads=n_threads))
        pred = _prediction_column(out)
    return Profile.fit(frame, prediction=pred)
