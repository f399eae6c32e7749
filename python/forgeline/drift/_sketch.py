"""A mergeable quantile summary with a certified rank-error bound.

The summary keeps up to ``size + 1`` distinct values ``v`` and, for each, integer bounds on
the number of reference values ``< v`` (``lt_lo..lt_hi``) and ``<= v`` (``le_lo..le_hi``).
Between two kept values the count of values ``<= x`` lies in ``[le_lo[i], lt_hi[i+1]]``.

A fresh summary (built from the full sorted column) has exact counts, so its error is at most
half the largest gap between kept ranks: ``rank_error <= 1 / (2 * size)`` (plus nothing for
ties, which sit exactly on kept values). Merging adds the bounds of both inputs and then
thins to ``size + 1`` values; the resulting error is recomputed from the bounds, so
:func:`rank_error` is always a certified bound on ``|F_hat(x) - F(x)|`` for every x, where
``F_hat`` is the midpoint estimate of :func:`cdf_mid`.
"""

from __future__ import annotations

import numpy as np

FIELDS = ("values", "lt_lo", "lt_hi", "le_lo", "le_hi")


def empty() -> dict:
    return {"values": np.empty(0), **{f: np.empty(0, np.int64) for f in FIELDS[1:]}}


def from_sorted(s: np.ndarray, size: int) -> dict:
    """Summary of the ascending, NaN-free array ``s``."""
    n = s.shape[0]
    if n == 0:
        return empty()
    idx = np.unique(np.round(np.linspace(0, n - 1, size + 1)).astype(np.int64))
    v = np.unique(s[idx])
    lt = np.searchsorted(s, v, "left").astype(np.int64)
    le = np.searchsorted(s, v, "right").astype(np.int64)
    return {"values": v.astype(np.float64), "lt_lo": lt, "lt_hi": lt.copy(), "le_lo": le,
            "le_hi": le.copy()}


def _bounds_at(sk: dict, n: int, x: np.ndarray):
    """(lt_lo, lt_hi, le_lo, le_hi) of sketch ``sk`` (over n values) at each x."""
    v = sk["values"]
    if v.size == 0:
        z = np.zeros(x.shape, np.int64)
        return z, z, z, z
    i = np.searchsorted(v, x, "right") - 1
    ic = np.clip(i, 0, v.size - 1)
    on = (i >= 0) & (v[ic] == x)
    nxt = np.clip(i + 1, 0, v.size - 1)
    gap_lo = np.where(i >= 0, sk["le_lo"][ic], 0)
    gap_hi = np.where(i + 1 < v.size, sk["lt_hi"][nxt], n)
    lt_lo = np.where(on, sk["lt_lo"][ic], gap_lo)
    lt_hi = np.where(on, sk["lt_hi"][ic], gap_hi)
    le_lo = np.where(on, sk["le_lo"][ic], gap_lo)
    le_hi = np.where(on, sk["le_hi"][ic], gap_hi)
    return lt_lo, lt_hi, le_lo, le_hi


def merge(a: dict, na: int, b: dict, nb: int, size: int) -> dict:
    """Summary of the union of two summarised multisets, thinned to ``size + 1`` values."""
    if na == 0:
        return {k: v.copy() for k, v in b.items()}
    if nb == 0:
        return {k: v.copy() for k, v in a.items()}
    u = np.union1d(a["values"], b["values"])
    ba = _bounds_at(a, na, u)
    bb = _bounds_at(b, nb, u)
    out = {"values": u, "lt_lo": ba[0] + bb[0], "lt_hi": ba[1] + bb[1], "le_lo": ba[2] + bb[2],
           "le_hi": ba[3] + bb[3]}
    if u.size <= size + 1:
        return out
    mids = (out["le_lo"] + out["le_hi"]) / 2.0
    targets = np.linspace(0, na + nb, size + 1)
    keep = np.clip(np.searchsorted(mids, targets), 0, u.size - 1)
    keep = np.unique(np.concatenate([[0, u.size - 1], keep]))
    return {k: v[keep] for k, v in out.items()}


def rank_error(sk: dict, n: int) -> float:
    """Certified bound on ``|cdf_mid(x) - F(x)|`` over all x (as a fraction of n)."""
    v = sk["values"]
    if n == 0 or v.size == 0:
        return 0.0
    widths = [sk["le_hi"] - sk["le_lo"], sk["lt_hi"][1:] - sk["le_lo"][:-1],
              np.array([sk["lt_hi"][0], n - sk["le_lo"][-1]])]
    return float(max(np.max(w) if w.size else 0 for w in widths)) / (2.0 * n)


def cdf_mid(sk: dict, n: int, x: np.ndarray) -> np.ndarray:
    """Midpoint estimate of F(x) = share of values <= x."""
    _, _, lo, hi = _bounds_at(sk, n, np.asarray(x, dtype=np.float64))
    return (lo + hi) / (2.0 * n)


def quantile(sk: dict, n: int, q: np.ndarray) -> np.ndarray:
    """Approximate quantiles: the kept value whose midpoint rank is nearest q * n."""
    v = sk["values"]
    if v.size == 0:
        return np.full(np.shape(q), np.nan)
    mids = (sk["le_lo"] + sk["le_hi"]) / 2.0
    i = np.clip(np.searchsorted(mids, np.asarray(q) * n), 0, v.size - 1)
    return v[i]
