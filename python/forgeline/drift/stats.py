"""Drift statistics on counts and moments: the formulas, with their conventions stated.

Conventions (documented once, used everywhere):

* Histogram metrics compare the reference distribution ``p`` with the current ``q`` over the
  same bins (numeric: reference quantile bins; categorical: the union of categories).
* Jensen-Shannon is the **distance** (the square root of the divergence) in **log base 2**,
  so it lies in [0, 1]; equal to ``scipy.spatial.distance.jensenshannon(p, q, base=2)``.
* PSI = sum (q - p) ln(q / p) and KL = sum p ln(p / q) (nats, ``scipy.stats.entropy(p, q)``)
  use proportions floored at ``EPS = 1e-4`` where a bin is empty, so they stay finite.
* Hellinger distance = sqrt(1/2 sum (sqrt p - sqrt q)^2), in [0, 1].
* L-infinity = max |p - q|.
"""

from __future__ import annotations

import math

import numpy as np

from . import _special

EPS = 1e-4


def proportions(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    return counts / total if total > 0 else np.full(counts.shape, np.nan)


def psi(p: np.ndarray, q: np.ndarray) -> float:
    """Population stability index of q against p (proportions floored at EPS)."""
    p = np.where(p == 0, EPS, p)
    q = np.where(q == 0, EPS, q)
    return float(np.sum((q - p) * np.log(q / p)))


def kl(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p || q) in nats on floored proportions, as ``scipy.stats.entropy(p', q')``."""
    p = np.where(p == 0, EPS, p)
    q = np.where(q == 0, EPS, q)
    p = p / p.sum()
    q = q / q.sum()
    return float(np.sum(p * np.log(p / q)))


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon distance, base 2 (``scipy.spatial.distance.jensenshannon(p, q, 2)``)."""
    p = p / p.sum()
    q = q / q.sum()
    m = (p + q) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(p > 0, p * np.log(p / m), 0.0)
        right = np.where(q > 0, q * np.log(q / m), 0.0)
    js = (left.sum() + right.sum()) / 2.0 / math.log(2.0)
    return float(math.sqrt(max(js, 0.0)))


def hellinger(p: np.ndarray, q: np.ndarray) -> float:
    return float(math.sqrt(0.5 * np.sum((np.sqrt(p) - np.sqrt(q)) ** 2)))


def linf(p: np.ndarray, q: np.ndarray) -> float:
    return float(np.max(np.abs(p - q))) if p.size else 0.0


def chi2_contingency_2xk(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, float, int]:
    """Chi-square test of homogeneity on the 2 x k table, as ``scipy.stats.chi2_contingency``
    (Yates' correction when there is one degree of freedom). Categories absent from both
    samples are dropped first (scipy rejects zero expected frequencies)."""
    obs = np.vstack([ref_counts, cur_counts]).astype(np.float64)
    obs = obs[:, obs.sum(axis=0) > 0]
    if obs.shape[1] == 0 or (obs.sum(axis=1) == 0).any():
        return math.nan, math.nan, 0
    expected = np.outer(obs.sum(axis=1), obs.sum(axis=0)) / obs.sum()
    dof = obs.shape[1] - 1
    if dof == 0:
        return 0.0, 1.0, 0
    if dof == 1:
        diff = expected - obs
        obs = obs + np.minimum(0.5, np.abs(diff)) * np.sign(diff)
    stat = float(((obs - expected) ** 2 / expected).sum())
    return stat, _special.chi2_sf(stat, dof), dof


def welch(m1: float, v1: float, n1: int, m2: float, v2: float, n2: int) -> tuple[float, float, float]:
    """Welch's unequal-variance t-test from moments (``scipy.stats.ttest_ind(equal_var=False)``;
    v1, v2 are ddof=1 variances). Returns (t, two-sided p, df)."""
    if n1 < 2 or n2 < 2:
        return math.nan, math.nan, math.nan
    a, b = v1 / n1, v2 / n2
    with np.errstate(divide="ignore", invalid="ignore"):
        df = np.float64(a + b) ** 2 / (np.float64(a) ** 2 / (n1 - 1) + np.float64(b) ** 2 / (n2 - 1))
        t = np.float64(m1 - m2) / np.sqrt(np.float64(a + b))
    t, df = float(t), float(df)
    if math.isnan(df):
        df = 1.0  # scipy's convention when both variances are zero
    return t, _special.t_sf_two_sided(t, df), df
