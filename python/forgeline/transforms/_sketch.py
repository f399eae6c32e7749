"""A deterministic, mergeable quantile sketch (exact while small), updated natively.

The sketch keeps every value while it holds at most ``exact_limit`` of them; quantiles are
then exactly numpy's. Beyond that it is a compactor hierarchy in the style of KLL, without
randomness (C++: ``cpp/src/transforms_sketch.cpp``): level ``h`` holds values of weight
``2**h``. New values go to an unsorted level-0 buffer that is compacted in blocks of
``2k``: a block is sorted (a cache-sized sort, never a sort of the whole chunk) and every
other value -- alternating the starting offset per level -- moves up one level with double
weight. A sorted upper level holding more than ``2k`` values is compacted the same way.
Merging two sketches merges them level by level and compacts. Columns are updated in
parallel with the GIL released.

Rank-error bound
----------------
One compaction of an even block at level ``h`` changes the rank of any query point by at
most ``2**h``, and it moves at least ``2*k*2**h`` of input weight through level ``h``; no
more than ``n`` weight ever passes a level, so level ``h`` contributes at most ``n/(2k)``
rank error. Only levels ``h <= log2(n/(2k))`` ever compact, hence for any query value the
estimated rank (:meth:`QuantileSketch.rank`) differs from the true rank by at most::

    eps * n   with   eps = (floor(log2(n / (2 k))) + 1) / (2 k)

(0 while the sketch is exact). This holds for any sequence of updates and merges, because
every compaction, wherever it happens, obeys the same accounting; the total weight stays
exactly ``n``. With the default ``k = 4096`` and ``n = 10**7`` that is 0.13 % of ``n``.
The result is deterministic: the same updates and merges in the same order give the same
sketch, whatever the thread count.
"""

from __future__ import annotations

import math

import numpy as np

from .._native import core
from . import _engine as eng


class QuantileSketch:
    """Mergeable quantile summary of one column's non-NaN values (see module docstring).

    Parameters
    ----------
    k : int
        Compactor size: rank error ``eps * n`` with ``eps = (floor(log2(n/(2k))) + 1)/(2k)``.
    exact_limit : int
        Keep all values (exact, numpy's quantiles) while at most this many were seen.
    """

    def __init__(self, k: int = 4096, exact_limit: int = 100_000):
        self.k = int(k)
        self.exact_limit = int(exact_limit)
        self.levels: list[np.ndarray] = [np.zeros(0)]
        self.offsets: list[int] = [0]
        self.n = 0
        self.exact = True

    def copy(self) -> QuantileSketch:
        s = QuantileSketch(self.k, self.exact_limit)
        s.levels = [lv.copy() for lv in self.levels]
        s.offsets = list(self.offsets)
        s.n, s.exact = self.n, self.exact
        return s

    def _state(self):
        return (list(self.levels), np.asarray(self.offsets, dtype=np.uint8))

    def _set_state(self, state) -> None:
        self.levels = list(state[0])
        self.offsets = [int(p) for p in state[1]]

    def update(self, values: np.ndarray) -> QuantileSketch:
        """Add the non-NaN values of ``values`` (in place); returns self."""
        update_many([self], [values])
        return self

    def merge(self, other: QuantileSketch) -> QuantileSketch:
        """A new sketch summarising both inputs."""
        return merge_many([self], [other])[0]

    def rank_error_bound(self) -> float:
        """Upper bound on |estimated rank - true rank| for any query (0 while exact)."""
        if self.exact or self.n == 0:
            return 0.0
        ratio = self.n / (2 * self.k)
        levels = (math.floor(math.log2(ratio)) + 1) if ratio >= 1 else 1
        return levels * self.n / (2 * self.k)

    def _weighted(self) -> tuple[np.ndarray, np.ndarray]:
        vals = np.concatenate(self.levels)
        w = np.concatenate([np.full(lv.size, 2.0 ** h) for h, lv in enumerate(self.levels)])
        order = np.argsort(vals, kind="stable")
        return vals[order], w[order]

    def rank(self, x: float) -> float:
        """Estimated number of values <= x."""
        vals, w = self._weighted()
        return float(w[vals <= x].sum())

    def quantiles(self, q, method: str = "linear") -> np.ndarray:
        """Quantiles at ``q`` (in [0, 1]); numpy's exactly while the sketch is exact.

        Approximate: the smallest stored value whose cumulative weight exceeds
        ``q * (n - 1)``; its rank is within :meth:`rank_error_bound` of the target.
        """
        q = np.atleast_1d(np.asarray(q, dtype=np.float64))
        if self.n == 0:
            return np.full(q.shape, np.nan)
        if self.exact:
            return eng.quantiles([self.levels[0]], q, method, n_valid=[self.n])[0]
        return core._tf_sketch_quantiles([self._state()], q, 1)[0]

    def median(self) -> float:
        """``np.ma.median``'s value while exact; the 0.5 quantile otherwise."""
        if self.exact:
            return float(eng.medians([self.levels[0]], n_valid=[self.n])[0]) if self.n else np.nan
        return float(self.quantiles([0.5])[0])

    # parts -------------------------------------------------------------------------
    def to_parts(self) -> tuple[dict, dict[str, np.ndarray]]:
        meta = {"k": self.k, "exact_limit": self.exact_limit, "n": self.n, "exact": self.exact,
                "offsets": list(self.offsets), "levels": len(self.levels)}
        return meta, {f"level{h}": lv for h, lv in enumerate(self.levels)}


def _by_k(items):
    groups: dict[int, list] = {}
    for it in items:
        groups.setdefault(it[0].k, []).append(it)
    return groups.values()


def update_many(sketches: list, cols: list, n_threads: int = 0) -> list:
    """Add ``cols[i]`` to ``sketches[i]`` in place (approximate ones natively, in parallel)."""
    native = []
    for s, c in zip(sketches, cols):
        v = np.ascontiguousarray(c, dtype=np.float64)
        nan = np.isnan(v)
        n_new = int(v.size - np.count_nonzero(nan))
        s.n += n_new
        if s.exact and s.n <= s.exact_limit:
            s.levels[0] = np.concatenate([s.levels[0], v[~nan]])  # unsorted while exact
            continue
        s.exact = False  # level 0 holds the raw values so far: the native add compacts them
        native.append((s, v))
    for group in _by_k(native):
        states = core._tf_sketch_add([s._state() for s, _ in group], [v for _, v in group],
                                     group[0][0].k, n_threads)
        for (s, _), st in zip(group, states):
            s._set_state(st)
    return sketches


def merge_many(a: list, b: list, n_threads: int = 0) -> list:
    """New sketches ``a[i]`` merged with ``b[i]`` (natively, in parallel)."""
    out, native = [], []
    for x, y in zip(a, b):
        s = QuantileSketch(min(x.k, y.k), min(x.exact_limit, y.exact_limit))
        s.n = x.n + y.n
        if x.exact and y.exact and s.n <= s.exact_limit:
            s.levels = [np.concatenate([x.levels[0], y.levels[0]])]
        else:
            s.exact = False
            native.append((s, x, y))
        out.append(s)
    for group in _by_k(native):
        states = core._tf_sketch_merge([x._state() for _, x, _ in group],
                                       [y._state() for _, _, y in group], group[0][0].k,
                                       n_threads)
        for (s, _, _), st in zip(group, states):
            s._set_state(st)
    return out


def medians_many(sketches: list, n_threads: int = 0) -> np.ndarray:
    """``median()`` of every sketch (approximate ones in one native call)."""
    out = np.full(len(sketches), np.nan)
    approx = [j for j, s in enumerate(sketches) if not s.exact and s.n]
    for j, s in enumerate(sketches):
        if s.exact:
            out[j] = s.median()
    if approx:
        out[approx] = core._tf_sketch_quantiles([sketches[j]._state() for j in approx],
                                                np.array([0.5]), n_threads)[:, 0]
    return out
