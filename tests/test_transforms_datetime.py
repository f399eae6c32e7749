"""DateTimeFeatures against pandas' .dt accessors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import forgeline.transforms as ft


def _times(n=500, seed=0):
    rng = np.random.default_rng(seed)
    ns = rng.integers(-2_000_000_000, 4_000_000_000, n) * 1_000_000_000  # 1906 .. 2096
    s = pd.Series(pd.to_datetime(ns))
    s[[i for i in (3, 17) if i < n]] = pd.NaT
    return pd.DataFrame({"t": s})


def test_parts_match_pandas():
    df = _times()
    feats = ["year", "month", "day", "weekday", "hour", "minute", "second", "dayofyear"]
    out = ft.DateTimeFeatures(features=feats).fit(df).transform(df)
    dt = df["t"].dt
    alias = {"weekday": "day_of_week", "dayofyear": "day_of_year"}
    want = np.column_stack([getattr(dt, alias.get(f, f)).to_numpy(float)
                            for f in feats])
    assert_array_equal(out, want)


def test_cyclic_and_names():
    df = _times(50)
    t = ft.DateTimeFeatures(features=["year", "hour"], cyclic=True).fit(df)
    assert list(t.get_feature_names_out()) == ["t_year", "t_hour_sin", "t_hour_cos"]
    out = t.transform(df)
    h = df["t"].dt.hour.to_numpy(float)
    assert_allclose(out[:, 1], np.sin(2 * np.pi * h / 24), rtol=1e-12, atol=1e-15,
                    equal_nan=True)
    assert_allclose(out[:, 2], np.cos(2 * np.pi * h / 24), rtol=1e-12, atol=1e-15,
                    equal_nan=True)


def test_timezone_strings_and_polars():
    s = pd.Series(pd.date_range("2021-03-27 22:00", periods=6, freq="h", tz="Europe/Paris"))
    out = ft.DateTimeFeatures(features=["day", "hour"]).fit_transform(pd.DataFrame({"t": s}))
    utc = s.dt.tz_convert("UTC")
    assert_array_equal(out, np.column_stack([utc.dt.day, utc.dt.hour]).astype(float))
    p = pl.DataFrame({"t": pl.Series(["2020-02-29 13:00:00", None]).str.to_datetime()})
    assert_array_equal(ft.DateTimeFeatures(features=["month", "day"]).fit_transform(p)[0], [2, 29])


def test_bad_feature_name():
    from forgeline.errors import InputError
    with pytest.raises(InputError, match="unknown datetime"):
        ft.DateTimeFeatures(features=["fortnight"]).fit(_times(5))
