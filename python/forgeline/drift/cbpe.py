"""Label-free performance estimation for binary classifiers (CBPE)."""

from __future__ import annotations

import numpy as np

from ..errors import DriftError


def _isotonic(x: np.ndarray, y: np.ndarray):
    """Pool-adjacent-violators fit of y on x; returns (knots_x, knots_y) for interpolation."""
    order = np.argsort(x, kind="stable")
    xs, ys = x[order], y[order].astype(np.float64)
    vals, wts, ends = [], [], []
    for i in range(xs.size):
        vals.append(ys[i]); wts.append(1.0); ends.append(i)
        while len(vals) > 1 and vals[-2] > vals[-1]:
            w = wts[-2] + wts[-1]
            v = (vals[-2] * wts[-2] + vals[-1] * wts[-1]) / w
            vals[-2:] = [v]; wts[-2:] = [w]; ends[-2:] = [ends[-1]]
    kx, ky, start = [], [], 0
    for v, e in zip(vals, ends):
        kx += [xs[start], xs[e]]
        ky += [v, v]
        start = e + 1
    return np.asarray(kx), np.asarray(ky)


def estimate_performance(current_proba, *, threshold: float = 0.5, reference_proba=None,
                         reference_target=None) -> dict:
    """Confidence-based performance estimation (CBPE) for a binary classifier.

    Each current prediction with calibrated positive-class probability p contributes p to
    the expected true positives (if predicted positive, ``p >= threshold``) or false
    negatives (otherwise), and 1 - p to the expected false positives or true negatives.
    When ``reference_proba`` and ``reference_target`` are given, the probabilities are
    first calibrated by isotonic regression fitted on the reference.

    Returns
    -------
    dict
        Expected ``tp, fp, tn, fn`` and the derived ``accuracy, precision, recall, f1``.
    """
    p = np.asarray(current_proba, dtype=np.float64)
    if p.ndim != 1 or p.size == 0:
        raise DriftError("current_proba must be a non-empty 1-D array of probabilities")
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise DriftError("current_proba must hold probabilities in [0, 1] without NaN")
    if (reference_proba is None) != (reference_target is None):
        raise DriftError("pass both reference_proba and reference_target, or neither")
    pred = p >= threshold
    if reference_proba is not None:
        rp = np.asarray(reference_proba, dtype=np.float64)
        rt = np.asarray(reference_target, dtype=np.float64)
        if rp.shape != rt.shape or rp.ndim != 1:
            raise DriftError("reference_proba and reference_target must be 1-D of equal length")
        kx, ky = _isotonic(rp, rt)
        p = np.interp(p, kx, ky)
    tp = float(np.sum(p[pred]))
    fp = float(np.sum(1 - p[pred]))
    fn = float(np.sum(p[~pred]))
    tn = float(np.sum(1 - p[~pred]))
    prec = tp / (tp + fp) if tp + fp > 0 else float("nan")
    rec = tp / (tp + fn) if tp + fn > 0 else float("nan")
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn > 0 else float("nan")
    return {"tp": tp, "fp": fp, "tn": tn, "fn": fn, "accuracy": (tp + tn) / p.size,
            "precision": prec, "recall": rec, "f1": f1}
