"""Helpers shared by the numeric transformers: mergeable moments and quantile sketches."""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from . import _engine as eng
from ._sketch import QuantileSketch, merge_many, update_many

EPS = np.finfo(np.float64).eps


def handle_zeros_in_scale(scale: np.ndarray, constant_mask=None) -> np.ndarray:
    """sklearn's ``_handle_zeros_in_scale``: near-zero (or flagged) scales become 1."""
    scale = np.array(scale, dtype=np.float64, copy=True)
    if constant_mask is None:
        constant_mask = scale < 10 * EPS
    scale[constant_mask] = 1.0
    return scale


def is_constant_feature(var, mean, n):
    """sklearn's ``_is_constant_feature``: variance within float64 rounding of zero."""
    with np.errstate(invalid="ignore", over="ignore"):
        upper = n * EPS * var + (n * mean * EPS) ** 2
        return var <= upper


def reject_inf(est, m: dict, names) -> None:
    bad = np.flatnonzero((m["n_posinf"] + m["n_neginf"]) > 0)
    if bad.size:
        name = names[int(bad[0])]
        raise DataError(f"Input contains infinity: column {name!r} has infinite values, which "
                        f"{type(est).__name__} does not allow", column=name)


def merge_moments(a: dict, b: dict) -> dict:
    """Combine two moment sets (Chan et al.'s pairwise update for the squared deviations)."""
    na, nb = a["count"], b["count"]
    n = na + nb
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_a = a["sum"] / na
        mean_b = b["sum"] / nb
        delta = mean_b - mean_a
        m2 = a["m2"] + b["m2"] + delta * delta * (na * nb / n)
    m2 = np.where(na == 0, b["m2"], np.where(nb == 0, a["m2"], m2))
    out = {"count": n, "sum": a["sum"] + b["sum"], "m2": m2,
           "min": np.fmin(a["min"], b["min"]), "max": np.fmax(a["max"], b["max"]),
           "absmax": np.fmax(a["absmax"], b["absmax"])}
    for f in ("n_nan", "n_posinf", "n_neginf"):
        out[f] = a[f] + b[f]
    if "rows" in a:
        out["rows"] = a["rows"] + b["rows"]
    return out


def moments_acc(cols, n_rows: int, n_threads: int, pairwise: bool, sums: bool = True) -> dict:
    m = eng.moments(cols, n_threads, pairwise, sums)
    m["rows"] = n_rows
    return m


def sketches(cols, k: int, exact_limit: int, n_threads: int = 0) -> list[QuantileSketch]:
    """One new sketch per column (columns updated natively in parallel)."""
    return update_many([QuantileSketch(k, exact_limit) for _ in cols], cols, n_threads)


def merge_sketches(a: list, b: list, n_threads: int = 0) -> list:
    return merge_many(a, b, n_threads)
