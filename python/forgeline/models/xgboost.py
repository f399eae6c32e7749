"""XGBoost importer: a Booster, an ``XGBModel`` wrapper, or a JSON / UBJSON model (bytes or path).

The model is read from its JSON form (``Booster.save_raw("json")``), whose float32 values
print in shortest round-trip form. Semantics follow XGBoost's CPU predictor: the input is
cast to float32, a split goes left when ``x < split_condition`` (float32), missing (NaN)
follows ``default_left``; margins start from the base score (margin space) and each tree's
leaf is added in float32, trees in order. Categorical splits send listed categories right;
negative / unknown categories go left.
"""

from __future__ import annotations

import json
import os

import numpy as np

from ..errors import UnsupportedModelError
from .trees import (CATEGORICAL, INVALID_LEFT, NAN_LEFT, TreeBuilder, TreeEnsemble,
                    bits_from_ints, settings)

# objective -> (task, link, base_score transform to margin)
_OBJECTIVES = {
    "binary:logistic": ("binary", "sigmoid_f32", "logit"),
    "reg:logistic": ("regression", "sigmoid_f32", "logit"),
    "binary:logitraw": ("binary_raw", "identity", "identity"),
    "reg:squarederror": ("regression", "identity", "identity"),
    "reg:squaredlogerror": ("regression", "identity", "identity"),
    "reg:pseudohubererror": ("regression", "identity", "identity"),
    "reg:absoluteerror": ("regression", "identity", "identity"),
    "reg:quantileerror": ("regression", "identity", "identity"),
    "count:poisson": ("regression", "exp_f32", "log"),
    "reg:gamma": ("regression", "exp_f32", "log"),
    "reg:tweedie": ("regression", "exp_f32", "log"),
    "multi:softprob": ("multiclass", "softmax_f32", "identity"),
    "multi:softmax": ("multiclass", "softmax_f32", "identity"),
    "rank:pairwise": ("ranking", "identity", "identity"),
    "rank:ndcg": ("ranking", "identity", "identity"),
    "rank:map": ("ranking", "identity", "identity"),
}


def try_import(obj, **options):
    """Return a :class:`TreeEnsemble` for XGBoost objects / model files, else None.

    Options: ``iteration_range=(begin, end)`` as in ``Booster.predict`` (end 0 = all).
    """
    model, classes, est = _model_json(obj)
    if model is None:
        return None
    return from_json(model, classes=classes, estimator=est, **options)


def _model_json(obj):
    mod = type(obj).__module__ or ""
    if isinstance(obj, (str, os.PathLike, bytes, bytearray)):
        raw = obj
        if isinstance(obj, (str, os.PathLike)):
            p = os.fspath(obj)
            if not (p.endswith((".json", ".ubj")) and os.path.isfile(p)):
                return None, None, None
            with open(p, "rb") as fh:
                raw = fh.read()
        return _decode(bytes(raw)), None, "model_file"
    if not mod.startswith("xgboost"):
        return None, None, None
    import xgboost as xgb
    if isinstance(obj, xgb.Booster):
        return json.loads(obj.save_raw("json")), None, "Booster"
    if isinstance(obj, xgb.XGBModel):
        booster = obj.get_booster()
        classes = getattr(obj, "classes_", None) if isinstance(obj, xgb.XGBClassifier) else None
        return json.loads(booster.save_raw("json")), classes, type(obj).__name__
    return None, None, None


def _decode(raw: bytes):
    s = raw.lstrip()
    if s[:1] == b"{" and (s[1:2] in (b'"', b" ", b"\n", b"\r", b"\t")):
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            pass
    try:
        import xgboost as xgb
    except ImportError as exc:  # pragma: no cover
        raise UnsupportedModelError("reading UBJSON XGBoost models needs xgboost installed") from exc
    b = xgb.Booster()
    b.load_model(bytearray(raw))
    return json.loads(b.save_raw("json"))


def _floats(v):
    if isinstance(v, str):
        v = v.strip()
        if v.startswith("["):
            return [float(x) for x in v.strip("[]").split(",") if x.strip()]
        return [float(v)]
    if isinstance(v, (list, tuple)):
        return [float(x) for x in v]
    return [float(v)]


def _margin(p: float, how: str) -> np.float32:
    """base_score (stored in output space) -> margin, in float32 as XGBoost computes it."""
    f = np.float32(p)
    if how == "logit":
        with np.errstate(divide="ignore"):
            return np.float32(-np.log(np.float32(1.0) / f - np.float32(1.0)))
    if how == "log":
        return np.float32(np.log(f))
    return f


def _base_from_xgboost(model: dict, n_features: int, k: int):
    """The base margin exactly as XGBoost derives it from the stored base_score.

    XGBoost's own prob -> margin conversion is not reproducible bit for bit from the JSON
    value with a plain float32 formula (it can differ by one ulp), so when xgboost is
    installed we ask it: the same model with its trees removed predicts just the base margin.
    """
    try:
        import xgboost as xgb
    except ImportError:  # pragma: no cover - formula fallback
        return None
    m = json.loads(json.dumps(model))
    gb = m["learner"]["gradient_booster"]
    outer = gb
    if gb.get("name") == "dart":
        gb = gb["gbtree"]
    inner = gb["model"]
    # Keep the first iteration's trees with every leaf zeroed: margin = base + 0.0 exactly.
    # (With no trees at all XGBoost skips the prob -> margin step.)
    ptr = inner.get("iteration_indptr") or [0, len(inner["tree_info"][:k])]
    n_keep = int(ptr[1]) if len(ptr) > 1 else 0
    if n_keep == 0:
        return None
    inner["trees"] = inner["trees"][:n_keep]
    for i, t in enumerate(inner["trees"]):
        t["id"] = i
        t["split_conditions"] = [0.0 if lc < 0 else c for lc, c in zip(t["left_children"], t["split_conditions"])]
        t["base_weights"] = [0.0] * len(t["base_weights"])
    inner["tree_info"] = inner["tree_info"][:n_keep]
    inner["iteration_indptr"] = [0, n_keep]
    inner["gbtree_model_param"]["num_trees"] = str(n_keep)
    if outer.get("name") == "dart":
        outer["weight_drop"] = [1.0] * n_keep
    try:
        b = xgb.Booster()
        b.load_model(bytearray(json.dumps(m).encode()))
        out = b.predict(xgb.DMatrix(np.zeros((1, n_features), dtype=np.float32)), output_margin=True)
    except Exception:  # noqa: BLE001 - any failure means: use the formula
        return None
    out = np.asarray(out, dtype=np.float32).reshape(-1)
    return out.astype(np.float64) if out.size == k else None


def from_json(model: dict, *, classes=None, estimator="json", iteration_range=None,
              **_ignored) -> TreeEnsemble:
    """Build a TreeEnsemble from an XGBoost JSON model (as a dict).

    Raises
    ------
    UnsupportedModelError
        For unsupported features (named in the message) and malformed models.
    """
    try:
        return _from_json(model, classes, estimator, iteration_range)
    except (KeyError, ValueError, IndexError, TypeError, OverflowError) as exc:
        if isinstance(exc, UnsupportedModelError):
            raise
        raise UnsupportedModelError(f"malformed XGBoost model: {type(exc).__name__}: {exc}") from exc


def _from_json(model, classes, estimator, iteration_range):
    try:
        learner = model["learner"]
        objective = learner["objective"]["name"]
        lmp = learner["learner_model_param"]
        gb = learner["gradient_booster"]
    except (KeyError, TypeError) as exc:
        raise UnsupportedModelError(f"not an XGBoost JSON model: missing {exc}") from exc
    if objective not in _OBJECTIVES:
        raise UnsupportedModelError(f"XGBoost objective {objective!r} is not supported")
    task, link, base_how = _OBJECTIVES[objective]
    booster_name = gb.get("name")
    weights = None
    if booster_name == "dart":
        weights = [float(w) for w in gb.get("weight_drop", [])]
        gbt = gb["gbtree"]
    elif booster_name == "gbtree":
        gbt = gb
    else:
        raise UnsupportedModelError(f"XGBoost booster {booster_name!r} is not supported (gbtree, dart are)")
    m = gbt["model"]
    if int(lmp.get("num_target", "1") or 1) > 1:
        raise UnsupportedModelError("XGBoost multi-target models are not supported")
    n_class = int(lmp.get("num_class", "0") or 0)
    k = max(n_class, 1)
    n_features = int(lmp["num_feature"])
    trees = m["trees"]
    info = [int(i) for i in m["tree_info"]]
    indptr = [int(i) for i in m.get("iteration_indptr") or []]
    if not indptr:
        per = k * int(m["gbtree_model_param"].get("num_parallel_tree", "1"))
        indptr = list(range(0, len(trees) + 1, per)) if per else [0]
    n_iter = len(indptr) - 1
    begin, end = (0, 0) if iteration_range is None else (int(iteration_range[0]), int(iteration_range[1]))
    if end <= 0 or end > n_iter:
        end = n_iter
    begin = min(max(begin, 0), end)
    base = _floats(lmp.get("base_score", "0.5"))
    if len(base) == 1:
        base = base * k
    if len(base) != k:
        raise UnsupportedModelError(f"XGBoost base_score has {len(base)} values for {k} outputs")
    base_margin = _base_from_xgboost(model, n_features, k)
    if base_margin is None:
        base_margin = np.array([_margin(p, base_how) for p in base], dtype=np.float32).astype(np.float64)
    b = TreeBuilder()
    for t in range(indptr[begin], indptr[end]):
        w = weights[t] if weights else 1.0
        _add_tree(b, trees[t], info[t] if k > 1 else 0, w, n_features)
    names = learner.get("feature_names") or [f"f{i}" for i in range(n_features)]
    st = settings(input_mode="float32", n_outputs=k, link=link, accumulate="float32",
                  cat_rule="negative", xgb_less_than=True)
    if task == "binary_raw":
        task, link = "binary", "identity"
    if task == "binary" and classes is None:
        classes = [0, 1]
    if task == "multiclass" and classes is None:
        classes = list(range(k))
    try:
        import xgboost
        version = xgboost.__version__
    except ImportError:  # pragma: no cover
        version = None
    return TreeEnsemble(
        feature_names=names, task=task, settings=st, arrays=b.arrays(base_margin, use_weights=bool(weights)),
        classes=None if classes is None else np.asarray(classes),
        source={"library": "xgboost", "version": version, "estimator": estimator,
                "objective": objective, "booster": booster_name},
        extra={"iteration_range": [begin, end],
               "decision": "argmax_raw" if objective == "multi:softmax" else "proba_gt_half"})


def _add_tree(b: TreeBuilder, t: dict, output: int, weight: float, n_features: int) -> None:
    tp = t.get("tree_param", {})
    if int(tp.get("size_leaf_vector", "1") or 1) > 1:
        raise UnsupportedModelError("XGBoost vector-leaf (multi_strategy) trees are not supported")
    if int(tp.get("num_deleted", "0") or 0) > 0:
        raise UnsupportedModelError("XGBoost trees with deleted nodes are not supported")
    left = np.asarray(t["left_children"], dtype=np.int64)
    right = np.asarray(t["right_children"], dtype=np.int64)
    n = left.size
    leaf = left < 0
    feat = np.where(leaf, -1, np.asarray(t["split_indices"], dtype=np.int64))
    cond = np.asarray(t["split_conditions"], dtype=np.float32).astype(np.float64)
    default_left = np.asarray(t["default_left"], dtype=bool)
    flags = np.where(default_left & ~leaf, NAN_LEFT, 0).astype(np.uint32)
    split_type = np.asarray(t.get("split_type") or [0] * n, dtype=np.int64)
    cat_off = np.zeros(n, dtype=np.int32)
    cat_nw = np.zeros(n, dtype=np.int32)
    cat_nodes = t.get("categories_nodes") or []
    if len(cat_nodes):
        segs = t["categories_segments"]
        sizes = t["categories_sizes"]
        cats = np.asarray(t["categories"], dtype=np.int64)
        for j, node in enumerate(cat_nodes):
            s, c = int(segs[j]), int(sizes[j])
            off, nw = b.add_bitset(bits_from_ints(cats[s:s + c]))
            cat_off[node], cat_nw[node] = off, nw
            # Listed categories go right; negative / not-listed categories go left.
            flags[node] |= CATEGORICAL | INVALID_LEFT
            cond[node] = 0.0
    if ((split_type == 1) & ~leaf & ((flags & CATEGORICAL) == 0)).any():
        raise UnsupportedModelError("XGBoost categorical split without a category list")
    if np.isnan(cond[~leaf]).any() or (feat[~leaf] >= n_features).any():
        raise UnsupportedModelError("malformed XGBoost tree")
    b.add_tree(feat, np.where(leaf, 0.0, cond), np.where(leaf, 0, left), np.where(leaf, 0, right),
               flags, np.where(leaf, cond, 0.0), output=output, weight=weight,
               cat_offset=cat_off, cat_nwords=cat_nw)


__all__ = ["try_import", "from_json"]
