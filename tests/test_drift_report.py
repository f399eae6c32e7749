"""DriftReport outputs, dataset-level decisions, options, CBPE and the HTML in Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from forgeline import DriftError
from forgeline.drift import DriftReport, Profile, compare, estimate_performance
from forgeline.drift.report import COLUMNS


def _data(n=400, shift=0.0, seed=0, n_num=4):
    rng = np.random.default_rng(seed)
    d = {f"n{i}": rng.normal(shift if i % 2 == 0 else 0.0, 1, n) for i in range(n_num)}
    d["c"] = pd.Categorical(rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2] if not shift else [0.2, 0.3, 0.5]))
    return pd.DataFrame(d)


def test_to_frame_has_one_row_per_column_and_test():
    rep = compare(_data(), _data(shift=1.0, seed=1),
                  tests={"numeric": ["ks", "psi"], "categorical": ["chi2"]})
    df = rep.to_frame()
    assert list(df.columns) == list(COLUMNS)
    body = df[df.kind != "quality"]
    assert len(body) == 4 * 2 + 1
    assert not body.duplicated(["column", "test"]).any()
    assert df.loc[df.test == "psi", "p_value"].isna().all()
    assert set(rep.drifted_columns) == {"n0", "n2", "c"}
    assert isinstance(rep, DriftReport) and rep.share_drifted == pytest.approx(3 / 5)
    assert rep.drifted


def test_to_frame_without_pandas_gives_arrow(monkeypatch):
    import builtins
    real = builtins.__import__

    def fake(name, *a, **k):
        if name == "pandas":
            raise ImportError("no pandas")
        return real(name, *a, **k)
    rep = compare({"x": np.arange(10.0)}, {"x": np.arange(10.0) + 1})
    monkeypatch.setattr(builtins, "__import__", fake)
    t = rep.to_frame()
    assert t.column_names == list(COLUMNS)


def test_json_is_strict_and_complete(tmp_path):
    rep = compare({"x": np.arange(30.0)}, {"x": np.arange(30.0) * 2, "y": np.ones(30)})
    text = rep.to_json(tmp_path / "r.json")
    d = json.loads(text)
    assert d["drifted"] == rep.drifted and len(d["results"]) == len(rep.results)
    assert (tmp_path / "r.json").read_text() == text
    assert any(r["test"] == "new_column" for r in d["results"])


def test_corrections_change_decisions():
    rng = np.random.default_rng(3)
    ref = {f"x{i}": rng.normal(size=200) for i in range(20)}
    cur = {f"x{i}": rng.normal(0.25 if i == 0 else 0.0, size=200) for i in range(20)}
    plain = compare(ref, cur, tests=["ks"])
    bonf = compare(ref, cur, tests=["ks"], correction="bonferroni")
    bh = compare(ref, cur, tests=["ks"], correction="fdr_bh")
    raw = np.array([r.p_value for r in plain.decisions.values()])
    adj_b = np.array([r.p_value_adjusted for r in bonf.decisions.values()])
    np.testing.assert_allclose(adj_b, np.minimum(raw * 20, 1))
    from scipy.stats import false_discovery_control
    adj_bh = np.array([r.p_value_adjusted for r in bh.decisions.values()])
    np.testing.assert_allclose(adj_bh, false_discovery_control(raw), rtol=1e-12)
    assert len(bonf.drifted_columns) <= len(plain.drifted_columns)


def test_thresholds_columns_and_defaults():
    ref, cur = _data(3000), _data(3000, shift=0.05, seed=2)
    rep = compare(ref, cur, columns=["n0", "c"])
    assert {r.column for r in rep.results} == {"n0", "c"}
    first = rep.decisions["n0"]
    assert first.test == "wasserstein"  # large samples decide on the normalised distance
    assert rep.decisions["c"].test == "js"
    strict = compare(ref, cur, columns=["n0"], thresholds={"wasserstein": 1e-6})
    assert strict.decisions["n0"].drifted
    small = compare(_data(100), _data(100, seed=5))
    assert small.decisions["n0"].test == "ks" and small.decisions["c"].test == "chi2"


@pytest.mark.parametrize("kwargs,match", [
    ({"tests": ["nope"]}, "unknown drift tests"),
    ({"tests": "ks"}, "not a string"),
    ({"tests": {"numeric": ["chi2"]}}, "not numeric tests"),
    ({"tests": {"text": ["ks"]}}, "unknown column kind"),
    ({"correction": "holm"}, "correction"),
    ({"thresholds": {"bogus": 1}}, "unknown test"),
    ({"columns": ["zzz"]}, "not found"),
    ({"drift_share": 0}, "drift_share"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(DriftError, match=match):
        compare({"x": np.arange(5.0)}, {"x": np.arange(5.0)}, **kwargs)


def test_progress_callback_and_tqdm():
    seen = []
    compare(_data(50), _data(50), progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (5, 5)
    pytest.importorskip("tqdm")
    compare(_data(50), _data(50), progress=True)


def test_profile_vs_profile_and_prediction_columns():
    ref, cur = _data(500), _data(500, shift=0.5, seed=9)
    pr = Profile.fit(ref, prediction=np.linspace(0, 1, 500))
    pc = Profile.fit(cur, prediction=np.linspace(0.2, 1, 500))
    rep = compare(pr, pc)
    assert "__prediction__" in rep.decisions
    rep2 = compare(pr, cur, prediction=np.linspace(0.2, 1, 500))
    np.testing.assert_allclose(rep2.decisions["__prediction__"].statistic,
                               rep.decisions["__prediction__"].statistic)
    kinds = compare(pr, cur.assign(n0=cur["n0"].astype(str)))
    assert any(r.test == "kind_changed" or r.column == "n0" for r in kinds.results)


def test_cbpe_matches_explicit_expectation():
    rng = np.random.default_rng(0)
    p = rng.beta(2, 2, 5000)
    est = estimate_performance(p, threshold=0.5)
    # explicit: simulate many label draws from the calibrated probabilities
    y = rng.random((400, p.size)) < p
    pred = p >= 0.5
    tp = (y & pred).sum(axis=1).mean()
    fp = (~y & pred).sum(axis=1).mean()
    fn = (y & ~pred).sum(axis=1).mean()
    tn = (~y & ~pred).sum(axis=1).mean()
    assert est["tp"] == pytest.approx(tp, rel=0.01)
    assert est["fp"] == pytest.approx(fp, rel=0.01)
    assert est["fn"] == pytest.approx(fn, rel=0.01)
    assert est["tn"] == pytest.approx(tn, rel=0.01)
    assert est["accuracy"] == pytest.approx((tp + tn) / p.size, rel=0.01)
    # calibration on a reference with miscalibrated scores
    raw = rng.random(4000)
    truth = rng.random(4000) < raw ** 2
    cal = estimate_performance(raw, reference_proba=raw, reference_target=truth)
    actual = ((raw >= 0.5) == truth).mean()
    assert cal["accuracy"] == pytest.approx(actual, abs=0.03)
    with pytest.raises(DriftError):
        estimate_performance([0.2, 1.5])
    with pytest.raises(DriftError):
        estimate_performance([0.2], reference_proba=[0.1])


def _wide(n_cols, n=300, seed=0, shift=0.0):
    rng = np.random.default_rng(seed)
    d = {f"x{i}": rng.normal(shift * (i % 3 == 0), 1, n) for i in range(n_cols)}
    for i in range(max(1, n_cols // 10)):
        d[f"c{i}"] = rng.choice(["a", "b", "c", "d"], n).astype(object)
    return d


def test_html_is_self_contained_and_small(tmp_path):
    rep = compare(_wide(1000), _wide(1000, seed=1, shift=0.4))
    path = tmp_path / "r.html"
    text = rep.to_html(path)
    assert path.read_text(encoding="utf-8") == text
    assert len(text.encode()) <= 2_000_000
    for banned in ("http://", "https://", "<script", "src=", "@import", "url("):
        assert banned not in text
    assert text.count("<svg") == 1100
    with pytest.raises(DriftError):
        rep.to_html(tmp_path / "missing-dir" / "r.html")


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        exe = shutil.which(name)
        if exe:
            return exe
    return None


def test_html_renders_in_headless_chromium(tmp_path):
    exe = _chromium()
    if exe is None:
        pytest.skip("Chromium not found (install Debian's `chromium` package to run this test)")
    # the case: 1000 numeric + 100 categorical columns, <= 2 MB, no console errors
    rep = compare(_wide(1000), _wide(1000, seed=1, shift=0.4))
    path = tmp_path / "r.html"
    rep.to_html(path)
    assert path.stat().st_size <= 2_000_000
    profile_dir = tmp_path / "chrome-profile"
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile_dir}", "--enable-logging=stderr", "--v=0", "--dump-dom",
           path.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "forgeline drift report" in proc.stdout
    assert proc.stdout.count("<svg") == 1100
    console = [ln for ln in proc.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    assert not console, console
