"""Bundles with udfs: code travels only behind allow_code=True, checked and listed by inspect."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

import forgeline as fl
import forgeline.transforms as ft
from forgeline import bundle
from forgeline._udf_plan import inspect_bundle
from forgeline.cli import main as cli_main
from forgeline.jit import spec_digest

SCALE = 0.5


@fl.udf(name="ratio")
def ratio(a, b):
    return math.log1p(abs(a)) / (b * b + 1.0)


@fl.udf
def shifted(x):
    return np.tanh(x * SCALE) if x == x else -9.0


def _data(n=800, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.normal(size=n)})
    df.loc[::37, "a"] = np.nan
    y = (df["b"] > 0).astype(int).to_numpy()
    return df, y


@pytest.fixture(scope="module")
def udf_scorer():
    df, y = _data()
    ct = ColumnTransformer([("r", FunctionTransformer(ratio), ["a", "b"]),
                            ("t", ft.UDFTransformer(shifted), ["a"]),
                            ("l", ft.UDFTransformer(lambda c: c * c + 1.0), ["c"]),
                            ("s", StandardScaler(), ["b", "c"])])
    pipe = make_pipeline(ct, LogisticRegression()).fit(df.fillna(0.0), y)
    return fl.compile(pipe, df.fillna(0.0)), df.fillna(0.0)


@pytest.fixture
def udf_bundle(udf_scorer, tmp_path):
    path = tmp_path / "u.forge"
    udf_scorer[0].save(path)
    return path


def _rewrite(path, edit):
    """Rewrite a bundle's manifest body with ``edit(body)``; member checksums stay valid, as
    an attacker who rewrites the manifest would make them."""
    body, arrays = bundle.read_bundle(path)
    edit(body)
    bundle.write_bundle(path, body, arrays)


def test_load_refuses_code_by_default_and_names_every_udf(udf_bundle):
    with pytest.raises(fl.BundleError, match="allow_code=True") as err:
        fl.load(udf_bundle)
    for name in ("'ratio'", "'shifted'", "'<lambda>'"):
        assert name in str(err.value)
    with pytest.raises(fl.BundleError, match="allow_code must be True or False"):
        fl.load(udf_bundle, allow_code="yes")


def test_allow_code_round_trip_is_bit_exact(udf_scorer, udf_bundle):
    scorer, df = udf_scorer
    loaded = fl.load(udf_bundle, allow_code=True)
    assert np.array_equal(loaded.transform(df), scorer.transform(df), equal_nan=True)
    assert np.array_equal(loaded.predict_proba(df), scorer.predict_proba(df))
    row = {k: float(v) for k, v in df.iloc[3].items()}
    assert np.array_equal(loaded.predict_proba(row), scorer.predict_proba(df.iloc[[3]]))


def test_tampered_udf_source_fails_its_checksum(udf_bundle):
    def edit(body):
        spec = body["features"]["udfs"]["ratio"]
        spec["source"] = spec["source"].replace("1.0", "1000.0")
    _rewrite(udf_bundle, edit)
    with pytest.raises(fl.BundleError, match="checksum mismatch"):
        fl.load(udf_bundle, allow_code=True)
    with pytest.raises(fl.BundleError, match="checksum mismatch"):
        inspect_bundle(udf_bundle)


def test_a_recomputed_checksum_still_cannot_run_code_at_definition(udf_bundle, tmp_path):
    marker = tmp_path / "pwned"

    def edit(body):
        spec = body["features"]["udfs"]["ratio"]
        spec["source"] = (f"def ratio(a, b=open({str(marker)!r}, 'w')):\n"
                          "    return a\n")
        spec["sha256"] = spec_digest(spec)
    _rewrite(udf_bundle, edit)
    with pytest.raises(fl.BundleError, match="plain function"):
        fl.load(udf_bundle, allow_code=True)
    assert not marker.exists()


@pytest.mark.parametrize("field,value,match", [
    ("imports", {"os": "os"}, "not allowed"),
    ("constants", {"SCALE": ["str", "x"]}, "malformed"),
    ("arity", 0, "malformed"),
])
def test_udf_entries_are_validated(udf_bundle, field, value, match):
    def edit(body):
        spec = body["features"]["udfs"]["shifted"]
        spec[field] = value
        spec["sha256"] = spec_digest(spec)
    _rewrite(udf_bundle, edit)
    with pytest.raises(fl.BundleError, match=match):
        fl.load(udf_bundle, allow_code=True)


def test_udf_group_structure_is_validated(udf_bundle):
    def edit(body):
        g = next(g for g in body["features"]["groups"] if g.get("udf") == "ratio")
        g["args"] = [len(body["features"]["groups"]) + 5, 0]
    _rewrite(udf_bundle, edit)
    with pytest.raises(fl.BundleError, match="earlier groups"):
        fl.load(udf_bundle, allow_code=True)


def test_plain_bundles_never_need_allow_code(tmp_path):
    df, y = _data()
    scorer = fl.compile(make_pipeline(StandardScaler(), LogisticRegression()).fit(df.fillna(0), y),
                        df.fillna(0))
    scorer.save(tmp_path / "p.forge")
    body, _ = bundle.read_bundle(tmp_path / "p.forge")
    assert "udfs" not in body["features"]
    a = fl.load(tmp_path / "p.forge").predict_proba(df.fillna(0))
    b = fl.load(tmp_path / "p.forge", allow_code=True).predict_proba(df.fillna(0))
    assert np.array_equal(a, b)
    assert inspect_bundle(tmp_path / "p.forge")["udfs"] == []


def test_inspect_lists_udfs_and_their_source_without_compiling(udf_bundle, capsys):
    info = inspect_bundle(udf_bundle)
    assert info["needs_allow_code"]
    by_name = {u["name"]: u for u in info["udfs"]}
    assert set(by_name) == {"ratio", "shifted", "<lambda>"}
    assert by_name["ratio"]["signature"] == "float64(float64, float64)"
    assert "math.log1p(abs(a))" in by_name["ratio"]["source"]
    assert by_name["shifted"]["constants"] == {"SCALE": ["float", (0.5).hex()]}
    assert "@" not in by_name["ratio"]["source"]  # decorators are not stored
    assert "return c * c + 1.0" in by_name["<lambda>"]["source"]
    assert any(line.startswith("udf ratio(a, b)") for line in info["plan"])
    assert cli_main(["inspect", str(udf_bundle)]) == 0
    out = capsys.readouterr().out
    assert "udfs: 3 user-defined functions" in out and "| def ratio(a, b):" in out
    assert cli_main(["inspect", str(udf_bundle), "--json"]) == 0
    assert {u["name"] for u in json.loads(capsys.readouterr().out)["udfs"]} == set(by_name)


def test_cli_score_needs_allow_code(udf_scorer, udf_bundle, tmp_path, capsys):
    scorer, df = udf_scorer
    src = tmp_path / "in.csv"
    df.to_csv(src, index=False)
    assert cli_main(["score", str(udf_bundle), str(src), "-o", str(tmp_path / "o.csv"),
                     "--quiet"]) == 2
    assert "allow-code" in capsys.readouterr().err
    assert cli_main(["score", str(udf_bundle), str(src), "-o", str(tmp_path / "o.csv"),
                     "--quiet", "--allow-code"]) == 0


def test_udfs_a_bundle_cannot_carry_fail_at_save(tmp_path):
    table = {"k": 2.0}
    X = pd.DataFrame({"x": np.arange(5.0)})

    def uses_dict(x):
        return x * table["k"]
    scorer = fl.compile(ft.UDFTransformer(fl.udf(lambda x: x + 1.0)).fit(X), X)
    scorer.save(tmp_path / "ok.forge")  # a lambda alone on its line is recovered
    with pytest.raises(fl.BundleError, match="global 'table'"):
        fl.jit.UDF(uses_dict).to_spec(1)


def test_load_with_udfs_does_not_import_the_training_stack(udf_bundle):
    code = f"""
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split('.')[0] in ('sklearn', 'lightgbm', 'xgboost', 'torch'):
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
import numpy as np, forgeline as fl
s = fl.load({str(udf_bundle)!r}, allow_code=True)
out = s.predict_proba({{'a': 0.5, 'b': -1.0, 'c': 2.0}})
assert out.shape == (1, 2)
print('ok')
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr
