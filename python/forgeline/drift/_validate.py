"""Strict validation of serialised profiles: input may come from an untrusted file."""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping

import numpy as np

from . import _sketch

_ALLOWED_DTYPES = {"<f8": np.float64, "<i8": np.int64}
_MAX_COLUMNS = 1_000_000
_MAX_ARRAY = 50_000_000


def decode_arrays(enc, err) -> dict[str, np.ndarray]:
    if not isinstance(enc, Mapping):
        raise err("profile arrays must be a mapping")
    out = {}
    for k, v in enc.items():
        if not isinstance(k, str) or not isinstance(v, Mapping):
            raise err("profile array entries must be {name: {dtype, shape, data}}")
        dt = v.get("dtype")
        shape = v.get("shape")
        data = v.get("data")
        if dt not in _ALLOWED_DTYPES:
            raise err(f"profile array {k!r}: unsupported dtype {dt!r}")
        if (not isinstance(shape, list) or len(shape) != 1 or not isinstance(shape[0], int)
                or isinstance(shape[0], bool) or not 0 <= shape[0] <= _MAX_ARRAY):
            raise err(f"profile array {k!r}: bad shape {shape!r}")
        if not isinstance(data, str):
            raise err(f"profile array {k!r}: data must be a base64 string")
        try:
            raw = base64.b64decode(data.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
            raise err(f"profile array {k!r}: invalid base64") from exc
        if len(raw) != shape[0] * 8:
            raise err(f"profile array {k!r}: {len(raw)} bytes do not match shape {shape}")
        out[k] = np.frombuffer(raw, dtype=np.dtype(dt)).astype(_ALLOWED_DTYPES[dt])
    return out


def _int(m, key, err, lo=0):
    v = m.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise err(f"profile: {key!r} must be an integer >= {lo}, got {v!r}")
    return v


def _num(m, key, err):
    v = m.get(key)
    if isinstance(v, str) and v in ("nan", "inf", "-inf"):
        return float(v)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise err(f"profile: {key!r} must be a number, got {v!r}")
    return float(v)


def _bool(m, key, err):
    v = m.get(key)
    if not isinstance(v, bool):
        raise err(f"profile: {key!r} must be a boolean, got {v!r}")
    return v


def _arr(arrays, key, dtype, err):
    if key not in arrays:
        raise err(f"profile: array {key!r} is missing")
    a = arrays[key]
    if not isinstance(a, np.ndarray) or a.ndim != 1 or a.dtype != dtype:
        raise err(f"profile: array {key!r} must be 1-D {np.dtype(dtype).name}")
    if a.size > _MAX_ARRAY:
        raise err(f"profile: array {key!r} is too large")
    return np.ascontiguousarray(a)


def profile_from_parts(cls, meta, arrays, err):
    from .profile import CategoricalColumn, NumericColumn

    if not isinstance(meta, Mapping) or meta.get("format") != "forgeline.profile":
        raise err("not a forgeline profile (format tag missing)")
    version = meta.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise err(f"profile: bad version {version!r}")
    if version > 1:
        raise err(f"profile format version {version} is newer than this forgeline supports (1)")
    if not isinstance(arrays, Mapping):
        raise err("profile arrays must be a mapping")
    params = meta.get("params")
    if not isinstance(params, Mapping):
        raise err("profile: 'params' missing")
    kw = {k: _int(params, k, err, 1) for k in ("sample_size", "sketch_size", "n_bins", "max_categories")}
    kw["seed"] = _int(params, "seed", err, 0)
    prof = cls(**kw)
    cols = meta.get("columns")
    if not isinstance(cols, list) or len(cols) > _MAX_COLUMNS:
        raise err("profile: 'columns' must be a list")
    for j, m in enumerate(cols):
        if not isinstance(m, Mapping):
            raise err(f"profile: column {j} metadata must be a mapping")
        name = m.get("name")
        if not isinstance(name, str) or name in prof.columns:
            raise err(f"profile: column {j} has a missing or duplicate name")
        kind = m.get("kind")
        n_rows = _int(m, "n_rows", err)
        n_missing = _int(m, "n_missing", err)
        if n_missing > n_rows:
            raise err(f"profile: column {name!r} has more missing values than rows")
        p = f"c{j}/"
        if kind in ("numeric", "datetime"):
            sample = _arr(arrays, p + "sample", np.float64, err)
            edges = _arr(arrays, p + "edges", np.float64, err)
            counts = _arr(arrays, p + "counts", np.int64, err)
            sk = {"values": _arr(arrays, p + "sketch_values", np.float64, err)}
            for f in _sketch.FIELDS[1:]:
                sk[f] = _arr(arrays, p + "sketch_" + f, np.int64, err)
            n_valid = n_rows - n_missing
            if np.isnan(sample).any() or (sample.size > 1 and np.any(np.diff(sample) < 0)):
                raise err(f"profile: column {name!r} sample must be sorted and NaN-free")
            if sample.size > n_valid:
                raise err(f"profile: column {name!r} sample is larger than the column")
            if np.isnan(edges).any() or (edges.size > 1 and np.any(np.diff(edges) <= 0)):
                raise err(f"profile: column {name!r} histogram edges must increase")
            if counts.size != edges.size + 1 or (counts < 0).any() or counts.sum() != n_valid:
                raise err(f"profile: column {name!r} histogram counts are inconsistent")
            k = sk["values"].size
            if any(sk[f].size != k for f in _sketch.FIELDS[1:]):
                raise err(f"profile: column {name!r} sketch arrays differ in length")
            v = sk["values"]
            if np.isnan(v).any() or (k > 1 and np.any(np.diff(v) <= 0)):
                raise err(f"profile: column {name!r} sketch values must increase")
            if k and (np.any(sk["lt_lo"] < 0) or np.any(sk["lt_lo"] > sk["lt_hi"])
                      or np.any(sk["lt_hi"] > sk["le_hi"]) or np.any(sk["le_lo"] > sk["le_hi"])
                      or np.any(sk["lt_lo"] > sk["le_lo"]) or np.any(sk["le_hi"] > n_valid)):
                raise err(f"profile: column {name!r} sketch bounds are inconsistent")
            complete = _bool(m, "sample_complete", err)
            if complete and sample.size != n_valid:
                raise err(f"profile: column {name!r} claims a complete sample of the wrong size")
            n_finite = _int(m, "n_finite", err)
            if n_finite > n_valid:
                raise err(f"profile: column {name!r} n_finite exceeds the valid count")
            m2 = _num(m, "m2", err)
            if not (m2 >= 0 or math.isnan(m2)):
                raise err(f"profile: column {name!r} has a negative sum of squares")
            prof.columns[name] = NumericColumn(
                kind, n_rows, n_missing, _int(m, "n_zero", err), _int(m, "n_inf", err),
                _num(m, "min", err), _num(m, "max", err), _num(m, "mean", err), m2, n_finite,
                sample, complete, sk, edges, counts, _bool(m, "hist_exact", err))
        elif kind in ("categorical", "boolean"):
            cats = m.get("categories")
            if not isinstance(cats, list) or not all(
                    isinstance(c, (str, int, float, bool)) for c in cats):
                raise err(f"profile: column {name!r} categories must be a list of scalars")
            counts = _arr(arrays, p + "counts", np.int64, err)
            other = _int(m, "other", err)
            if counts.size != len(cats) or (counts < 0).any() or counts.sum() + other != n_rows - n_missing:
                raise err(f"profile: column {name!r} category counts are inconsistent")
            prof.columns[name] = CategoricalColumn(kind, n_rows, n_missing, cats, counts, other,
                                                   _bool(m, "truncated", err))
        else:
            raise err(f"profile: column {name!r} has unknown kind {kind!r}")
    return prof
