"""The forgeline command, run as a subprocess through the console script on real files."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from conftest import run_cli

import forgeline as fl
from forgeline import _demo


@pytest.fixture(scope="module")
def files(tmp_path_factory, churn_scorer, churn_data):
    d = tmp_path_factory.mktemp("cli")
    churn_scorer.save(d / "m.forge")
    _, current = churn_data
    table = pa.Table.from_pandas(current, preserve_index=False)
    pq.write_table(table, d / "cur.parquet")
    pcsv.write_csv(table.drop_columns(["signup_date"]), d / "cur.csv")
    (d / "parts").mkdir()
    pq.write_table(table.slice(0, 700), d / "parts" / "a.parquet")
    pq.write_table(table.slice(700), d / "parts" / "b.parquet")
    return d


def test_version():
    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout.startswith("forgeline ")


@pytest.mark.parametrize("src,dst", [("cur.parquet", "out.parquet"), ("cur.csv", "out.csv"),
                                     ("parts", "out_dir.parquet")])
def test_score_formats(files, churn_scorer, churn_data, src, dst):
    r = run_cli("score", files / "m.forge", files / src, "-o", files / dst, "--columns", "customer_id",
                "--batch-size", "500", "--quiet")
    assert r.returncode == 0, r.stderr
    out = (pcsv.read_csv(files / dst) if dst.endswith(".csv") else pq.read_table(files / dst))
    _, current = churn_data
    assert out.column_names[:2] == ["customer_id", "prediction"]
    assert out.num_rows == len(current)
    ids = out.column("customer_id").to_pylist()
    order = {cid: i for i, cid in enumerate(current["customer_id"])}
    idx = np.array([order[i] for i in ids])
    want = churn_scorer.predict_proba(current.iloc[idx])[:, 1]
    np.testing.assert_allclose(out.column("proba_1").to_numpy(), want, rtol=1e-12)


def test_score_rejects_file(files, churn_data):
    _, current = churn_data
    bad = pa.Table.from_pandas(current.astype({"age": object}), preserve_index=False)
    ages = bad.column("age").to_pylist()
    ages[3] = "old"
    ages[10] = "n/a?"
    bad = bad.set_column(bad.column_names.index("age"), "age",
                         pa.array([None if a is None or a != a else str(a) for a in ages]))
    pq.write_table(bad, files / "bad.parquet")
    r = run_cli("score", files / "m.forge", files / "bad.parquet", "-o", files / "bad_out.parquet",
                "--rejects", files / "rejects.parquet", "--quiet")
    assert r.returncode == 0, r.stderr
    rej = pq.read_table(files / "rejects.parquet")
    assert rej.num_rows == 2
    assert all("age" in reason for reason in rej.column("reject_reason").to_pylist())
    assert pq.read_table(files / "bad_out.parquet").num_rows == len(current) - 2
    # without --rejects the run fails with one line and exit code 2
    r = run_cli("score", files / "m.forge", files / "bad.parquet", "-o", files / "bad2.parquet", "--quiet")
    assert r.returncode == 2
    assert "age" in r.stderr and "Traceback" not in r.stderr


def test_score_monitor_html(files):
    r = run_cli("score", files / "m.forge", files / "cur.parquet", "-o", files / "mon.parquet",
                "--monitor", files / "mon.html", "--quiet")
    assert r.returncode == 0, r.stderr
    html = (files / "mon.html").read_text()
    assert "<html" in html.lower() and "monthly_charges" in html


def test_drift_fail_on_drift_exit_code(files):
    r = run_cli("drift", files / "m.forge", files / "cur.parquet", "--json", files / "d.json",
                "--html", files / "d.html")
    assert r.returncode == 0, r.stderr
    d = json.loads((files / "d.json").read_text())
    assert d
    report_drifted = "DRIFT DETECTED" in r.stdout
    r = run_cli("drift", files / "m.forge", files / "cur.parquet", "--fail-on-drift")
    assert r.returncode == (1 if report_drifted else 0)
    # the same data as reference and current: no drift, exit 0 even with --fail-on-drift
    r = run_cli("drift", files / "m.forge", files / "cur.parquet", "--reference", files / "cur.parquet",
                "--fail-on-drift")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "no dataset-level drift" in r.stdout


def test_inspect(files):
    r = run_cli("inspect", files / "m.forge")
    assert r.returncode == 0, r.stderr
    assert "monthly_charges" in r.stdout and "onehot" in r.stdout
    r = run_cli("inspect", files / "m.forge", "--json")
    info = json.loads(r.stdout)
    assert info["metadata"]["source"] == "lightgbm"
    assert info["model"]["classes"] == ["0", "1"]


@pytest.mark.parametrize("case", ["missing_model", "bad_bundle", "missing_input", "schema", "unwritable"])
def test_errors_exit_2_one_line(files, tmp_path, case):
    model, inp, out = files / "m.forge", files / "cur.parquet", tmp_path / "o.parquet"
    if case == "missing_model":
        model = tmp_path / "nope.forge"
    elif case == "bad_bundle":
        model = tmp_path / "bad.forge"
        model.write_bytes(b"this is not a zip")
    elif case == "missing_input":
        inp = tmp_path / "nope.parquet"
    elif case == "schema":
        inp = tmp_path / "few.parquet"
        pq.write_table(pa.table({"age": [1.0]}), inp)
    elif case == "unwritable":
        out = tmp_path / "no" / "such" / "dir" / "o.parquet"
    r = run_cli("score", model, inp, "-o", out, "--quiet")
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("forgeline: error:"), r.stderr
    r = run_cli("--debug", "score", model, inp, "-o", out, "--quiet")
    assert "Traceback" in r.stderr


def test_usage_error_exit_2():
    r = run_cli("score")
    assert r.returncode == 2


def test_quickstart_end_to_end(tmp_path):
    r = run_cli("quickstart", "--dir", tmp_path / "qs", "--rows", "6000", timeout=600)
    assert r.returncode == 0, r.stderr
    assert "AUC" in r.stdout and "rows/s" in r.stdout
    for f in ("churn.forge", "scores.parquet", "drift_report.html"):
        assert (tmp_path / "qs" / f).exists(), f
    s = fl.load(tmp_path / "qs" / "churn.forge")
    scores = pq.read_table(tmp_path / "qs" / "scores.parquet")
    assert scores.num_rows == 3000 and "customer_id" in scores.column_names
    cur = pq.read_table(tmp_path / "qs" / "current.parquet")
    np.testing.assert_allclose(scores.column("proba_1").to_numpy(), s.predict_proba(cur)[:, 1], rtol=1e-12)
    assert _demo.ID in scores.column_names
