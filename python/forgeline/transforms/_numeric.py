"""Helpers shared by the numeric transformers: mergeable moments and quantile sketches."""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from . import _engine as eng
from ._sketch import QuantileSketch

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


def moments_acc(cols, n_rows: int, n_threads: int, pairwise: bool) -> dict:
    m = eng.moments(cols, n_threads, pairwise)
    m["rows"] = n_rows
    return m


def _pool_map(fn, items):
    # numpy's sort releases the GIL, so per-column sketch work runs in parallel threads.
    from concurrent.futures import ThreadPoolExecutor
    from .._native import core
    items = list(items)
    workers = min(len(items), max(1, core.default_num_threads()))
    if workers <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(workers) as ex:
        return list(ex.map(fn, items))


def sketches(cols, k: int, exact_limit: int) -> list[QuantileSketch]:
    return _pool_map(lambda c: QuantileSketch(k, exact_limit).update(c), cols)


def merge_sketches(a: list, b: list) -> list:
    return _pool_map(lambda xy: xy[0].merge(xy[1]), zip(a, b))
