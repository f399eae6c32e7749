"""LightGBM importer: a Booster, an ``LGBMModel`` wrapper, a model file path or a model string.

The model text (``Booster.model_to_string``) is parsed directly: thresholds and leaf values
are printed there with 17 significant digits, so they round-trip exactly. Semantics follow
LightGBM's ``Tree::NumericalDecision`` / ``CategoricalDecision`` and ``GBDT::PredictRaw``
(trees summed per class in iteration order, in float64, starting from 0).

Not supported (raises :class:`~forgeline.UnsupportedModelError`): ``linear_tree`` models,
the ``cross_entropy_lambda`` and custom objectives, ``pred_contrib``.
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import UnsupportedModelError
from .trees import (CATEGORICAL, DEFAULT_LEFT, MEMBER_LEFT, NAN_LEFT, ZERO_MISSING, TreeBuilder,
                    TreeEnsemble, settings)

# objective name -> (task, link)
_OBJECTIVES = {
    "binary": ("binary", "sigmoid"),
    "cross_entropy": ("regression", "sigmoid"), "xentropy": ("regression", "sigmoid"),
    "multiclass": ("multiclass", "softmax"), "softmax": ("multiclass", "softmax"),
    "multiclassova": ("multiclass", "sigmoid"), "multiclass_ova": ("multiclass", "sigmoid"),
    "ova": ("multiclass", "sigmoid"), "ovr": ("multiclass", "sigmoid"),
    "poisson": ("regression", "exp"), "gamma": ("regression", "exp"),
    "tweedie": ("regression", "exp"),
    "lambdarank": ("ranking", "identity"), "rank_xendcg": ("ranking", "identity"),
    "regression": ("regression", "identity"), "regression_l2": ("regression", "identity"),
    "regression_l1": ("regression", "identity"), "huber": ("regression", "identity"),
    "fair": ("regression", "identity"), "quantile": ("regression", "identity"),
    "mape": ("regression", "identity"),
}


def try_import(obj, **options):
    """Return a :class:`TreeEnsemble` for LightGBM objects, model files or strings, else None.

    Options: ``num_iteration`` (None or <= 0: all, or the best iteration when the booster has
    one, as LightGBM's predict does) and ``start_iteration``.
    """
    text, classes, source_cls = _model_text(obj)
    if text is None:
        return None
    if options.get("num_iteration") is None:
        booster = getattr(obj, "booster_", obj) if source_cls not in ("model_string", "model_file") else None
        best = getattr(booster, "best_iteration", 0) or 0
        if best > 0:
            options = {**options, "num_iteration": best}
    return from_string(text, classes=classes, estimator=source_cls, **options)


def _model_text(obj):
    mod = type(obj).__module__ or ""
    if isinstance(obj, (str, os.PathLike)):
        s = os.fspath(obj)
        if s.startswith("tree\n") or s.startswith("tree\r\n"):
            return s, None, "model_string"
        if os.path.isfile(s):
            with open(s, "rb") as fh:
                if fh.read(5).rstrip() == b"tree":
                    fh.seek(0)
                    return fh.read().decode("utf-8"), None, "model_file"
        return None, None, None
    if not mod.startswith("lightgbm"):
        return None, None, None
    import lightgbm as lgb
    if isinstance(obj, lgb.Booster):
        return obj.model_to_string(num_iteration=-1), None, "Booster"
    if isinstance(obj, lgb.LGBMModel):
        booster = obj.booster_  # raises LightGBM's own not-fitted error when unfitted
        classes = getattr(obj, "classes_", None) if isinstance(obj, lgb.LGBMClassifier) else None
        return booster.model_to_string(num_iteration=-1), classes, type(obj).__name__
    return None, None, None


def _parse_blocks(text: str):
    """Split the model text into the header dict and one dict per tree."""
    head_txt, sep, rest = text.partition("\nTree=")
    if not sep:
        # A model with zero trees has no "Tree=" section.
        head_txt, rest = text.split("end of trees", 1)[0], ""
    header = _kv(head_txt)
    trees = []
    if rest:
        body = ("Tree=" + rest).split("end of trees", 1)[0]
        for block in body.split("\nTree=")[0:]:
            block = block if block.startswith("Tree=") else "Tree=" + block
            trees.append(_kv(block))
    tail = text.split("end of trees", 1)[1] if "end of trees" in text else ""
    return header, trees, tail


def _kv(block: str) -> dict:
    out = {}
    for line in block.splitlines():
        line = line.strip()
        if not line:
            continue
        k, sep, v = line.partition("=")
        out[k] = v if sep else True
    return out


def _floats(s) -> np.ndarray:
    return np.array(s.split(" "), dtype=np.float64) if s else np.zeros(0)


def _ints(s) -> np.ndarray:
    return np.array(s.split(" "), dtype=np.int64) if s else np.zeros(0, dtype=np.int64)


def from_string(text: str, *, classes=None, estimator="model_string", num_iteration=None,
                start_iteration=0, **_ignored) -> TreeEnsemble:
    """Build a TreeEnsemble from LightGBM model text (``Booster.model_to_string()``).

    Raises
    ------
    UnsupportedModelError
        For unsupported features (named in the message) and malformed model text.
    """
    for opt in ("pred_contrib", "pred_leaf"):
        if _ignored.get(opt):
            raise UnsupportedModelError(f"LightGBM {opt} is not supported: forgeline scores raw "
                                        "margins and probabilities only (no TreeSHAP / leaf indices)")
    try:
        return _from_string(text, classes, estimator, num_iteration, start_iteration)
    except (KeyError, ValueError, IndexError, OverflowError) as exc:
        if isinstance(exc, UnsupportedModelError):
            raise
        raise UnsupportedModelError(f"malformed LightGBM model text: {type(exc).__name__}: {exc}") from exc


def _from_string(text, classes, estimator, num_iteration, start_iteration):
    header, trees, tail = _parse_blocks(text)
    if header.get("tree") is not True and not text.startswith("tree"):
        raise UnsupportedModelError("not a LightGBM text model")
    obj_str = str(header.get("objective", "regression"))
    obj_parts = obj_str.split()
    obj_name = obj_parts[0] if obj_parts else "regression"
    obj_opts = dict(p.split(":", 1) for p in obj_parts[1:] if ":" in p)
    if obj_name not in _OBJECTIVES:
        raise UnsupportedModelError(f"LightGBM objective {obj_name!r} is not supported")
    task, link = _OBJECTIVES[obj_name]
    link_param = float(obj_opts.get("sigmoid", 1.0)) if link == "sigmoid" and task != "regression" else 1.0
    if obj_name in ("regression", "regression_l2") and "sqrt" in obj_parts:
        raise UnsupportedModelError("LightGBM regression with reg_sqrt=True is not supported")
    k = int(header.get("num_tree_per_iteration", header.get("num_class", 1)))
    n_features = int(header["max_feature_idx"]) + 1
    names = str(header.get("feature_names", "")).split(" ")
    if len(names) != n_features:
        names = [f"Column_{i}" for i in range(n_features)]
    average = "average_output" in header
    n_iter_total = len(trees) // max(k, 1)
    start = max(int(start_iteration or 0), 0)
    if num_iteration is None or num_iteration <= 0:
        num_iteration = n_iter_total - start
    end = min(start + int(num_iteration), n_iter_total)
    start = min(start, end)
    b = TreeBuilder()
    for it in range(start, end):
        for c in range(k):
            _add_tree(b, trees[it * k + c], c)
    n_used = end - start
    settings_ = settings(input_mode="lightgbm", n_outputs=k, link=link, link_param=link_param,
                         cat_rule="truncate", divisor=float(n_used) if (average and n_used > 0) else 0.0)
    # LightGBM's raw_score sums RF trees; only predictions are averaged.
    settings_["divide_raw"] = False
    if classes is None and task == "binary":
        classes = [0, 1]
    elif classes is None and task == "multiclass":
        classes = list(range(k))
    pandas_cat = tail.split("pandas_categorical:", 1)[1].strip() if "pandas_categorical:" in tail else "null"
    arrays = b.arrays(np.zeros(k))
    lgb_version = None
    try:
        import lightgbm
        lgb_version = lightgbm.__version__
    except ImportError:  # pragma: no cover - text models load without LightGBM
        pass
    return TreeEnsemble(
        feature_names=names, task=task, settings=settings_, arrays=arrays,
        classes=None if classes is None else np.asarray(classes),
        source={"library": "lightgbm", "version": lgb_version, "estimator": estimator,
                "objective": obj_str},
        extra={"pandas_categorical": pandas_cat != "null", "iterations": [start, end]})


def _add_tree(b: TreeBuilder, t: dict, output: int) -> None:
    if str(t.get("is_linear", "0")) == "1":
        raise UnsupportedModelError("LightGBM linear_tree models are not supported")
    n_leaves = int(t["num_leaves"])
    leaf_value = _floats(t.get("leaf_value", ""))
    if n_leaves <= 1:
        v = leaf_value[:1] if leaf_value.size else np.zeros(1)
        b.add_tree([-1], [0.0], [0], [0], [0], v, output=output)
        return
    n_int = n_leaves - 1
    split_feature = _ints(t["split_feature"])
    threshold = _floats(t["threshold"])
    decision = _ints(t["decision_type"])
    lc = _ints(t["left_child"])
    rc = _ints(t["right_child"])
    if not (split_feature.size == threshold.size == decision.size == lc.size == rc.size == n_int
            and leaf_value.size == n_leaves):
        raise UnsupportedModelError("malformed LightGBM tree: array lengths disagree")
    # LightGBM children: >= 0 internal node, < 0 leaf ~child. Ours: leaves after internals.
    left = np.where(lc >= 0, lc, n_int + ~lc)
    right = np.where(rc >= 0, rc, n_int + ~rc)
    is_cat = (decision & 1) != 0
    default_left = (decision & 2) != 0
    missing = (decision >> 2) & 3
    flags = np.zeros(n_int, dtype=np.uint32)
    # NaN direction: missing type NaN or Zero -> default direction (Zero reads NaN as 0, and 0
    # is "missing"); None -> NaN is read as 0.0 and compared against the threshold.
    nan_left = np.where(missing == 0, 0.0 <= threshold, default_left)
    flags |= np.where(nan_left & ~is_cat, NAN_LEFT, 0).astype(np.uint32)
    flags |= np.where((missing == 1) & ~is_cat, ZERO_MISSING, 0).astype(np.uint32)
    flags |= np.where(default_left & ~is_cat, DEFAULT_LEFT, 0).astype(np.uint32)
    cat_off = np.zeros(n_int, dtype=np.int32)
    cat_nw = np.zeros(n_int, dtype=np.int32)
    thr = threshold.copy()
    if is_cat.any():
        bounds = _ints(t.get("cat_boundaries", ""))
        words = _ints(t.get("cat_threshold", ""))
        for i in np.nonzero(is_cat)[0]:
            ci = int(threshold[i])
            if ci < 0 or ci + 1 >= bounds.size:
                raise UnsupportedModelError("malformed LightGBM categorical split")
            off, nw = b.add_bitset(words[bounds[ci]:bounds[ci + 1]])
            cat_off[i], cat_nw[i] = off, nw
            # NaN and negative categories go right; members of the bitset go left.
            flags[i] = CATEGORICAL | MEMBER_LEFT
            thr[i] = 0.0
    feature = np.concatenate([split_feature, -np.ones(n_leaves, dtype=np.int64)])
    b.add_tree(feature, np.concatenate([thr, np.zeros(n_leaves)]),
               np.concatenate([left, np.zeros(n_leaves, dtype=np.int64)]),
               np.concatenate([right, np.zeros(n_leaves, dtype=np.int64)]),
               np.concatenate([flags, np.zeros(n_leaves, dtype=np.uint32)]),
               np.concatenate([np.zeros(n_int), leaf_value]), output=output,
               cat_offset=np.concatenate([cat_off, np.zeros(n_leaves, dtype=np.int32)]),
               cat_nwords=np.concatenate([cat_nw, np.zeros(n_leaves, dtype=np.int32)]))
