"""The small mixed-type frame the tuning tests search over."""

from __future__ import annotations

import numpy as np
import pandas as pd


def tune_frame(n: int, seed: int, levels: str, *, c_weight: float = 0.0, noise: float = 0.7,
               cut: float = 0.5):
    """Numeric a, b (lognormal, 5% NaN), c and categorical k; y depends on a, k == levels[0]
    and c_weight * c, plus noise."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.lognormal(size=n),
                       "c": rng.normal(size=n),
                       "k": rng.choice(list(levels), n).astype(object)})
    df.loc[rng.random(n) < 0.05, "b"] = np.nan
    y = ((df["a"] + (df["k"] == levels[0]) + c_weight * df["c"]
          + rng.normal(scale=noise, size=n)) > cut).astype(int)
    return df, y.to_numpy()


def count_calls(monkeypatch, module, name: str, measure) -> list:
    """Wraps ``module.name`` so every call appends ``measure(args)`` to the returned list."""
    seen: list = []
    orig = getattr(module, name)

    def wrapped(*a, **k):
        seen.append(measure(a))
        return orig(*a, **k)

    monkeypatch.setattr(module, name, wrapped)
    return seen
