"""Scorer: outputs equal the pipeline's, bundle round trip, loading without the training
stack, thread safety, schema enforcement and monitoring."""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pyarrow as pa
import pytest

import forgeline as fl


def test_outputs_match_pipeline(churn_pipeline, churn_scorer, churn_data):
    pipe, X = churn_pipeline
    _, current = churn_data
    cur = current[X.columns]
    np.testing.assert_allclose(churn_scorer.predict_proba(cur), pipe.predict_proba(cur), rtol=1e-12)
    np.testing.assert_array_equal(churn_scorer.predict(cur), pipe.predict(cur))
    raw = churn_scorer.predict_raw(cur)
    np.testing.assert_allclose(raw, pipe.predict_proba(cur, raw_score=True), rtol=1e-12)
    np.testing.assert_allclose(churn_scorer.transform(cur), pipe[:-1].transform(cur), rtol=1e-12)


def test_score_frame(churn_scorer, churn_pipeline):
    pipe, X = churn_pipeline
    out = churn_scorer.score(X.iloc[:50])
    assert list(out.columns) == ["prediction", "raw", "proba_0", "proba_1"]
    np.testing.assert_allclose(out["proba_1"], pipe.predict_proba(X.iloc[:50])[:, 1], rtol=1e-12)
    table = churn_scorer.score(pa.Table.from_pandas(X.iloc[:50], preserve_index=False))
    assert isinstance(table, pa.Table) and table.num_rows == 50


def test_metadata(churn_scorer):
    md = churn_scorer.metadata
    assert md["source"] == "lightgbm"
    assert md["classes"] == [0, 1]
    assert md["sample_rows"] == 1500
    assert "monthly_charges" in md["feature_names"]
    assert md["forgeline_version"] == fl.__version__


def test_chunked_scoring_equals_single_pass(churn_scorer, churn_pipeline, monkeypatch):
    import forgeline.scorer as sc

    _, X = churn_pipeline
    full = churn_scorer.predict_proba(X)
    monkeypatch.setattr(sc, "CHUNK_BYTES", 1)  # smallest chunks (512 rows)
    np.testing.assert_array_equal(churn_scorer.predict_proba(X), full)


@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_thread_count_invariance(churn_scorer, churn_pipeline, n_threads):
    _, X = churn_pipeline
    np.testing.assert_array_equal(churn_scorer.predict_raw(X, n_threads=n_threads),
                                  churn_scorer.predict_raw(X, n_threads=1))


def test_save_load_round_trip(churn_scorer, churn_pipeline, tmp_path):
    _, X = churn_pipeline
    path = tmp_path / "m.forge"
    churn_scorer.save(path)
    loaded = fl.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), churn_scorer.predict_proba(X))
    assert loaded.schema == churn_scorer.schema
    assert loaded.metadata["classes"] == [0, 1]
    assert loaded.profile is not None
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            assert not info.filename.endswith((".pkl", ".pickle"))


def test_load_without_training_stack(churn_scorer, churn_pipeline, tmp_path):
    _, X = churn_pipeline
    path = tmp_path / "m.forge"
    churn_scorer.save(path)
    X.iloc[:200].to_parquet(tmp_path / "x.parquet")
    expected = churn_scorer.predict_proba(X.iloc[:200])
    np.save(tmp_path / "expected.npy", expected)
    code = textwrap.dedent(f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in {{'sklearn', 'lightgbm', 'xgboost', 'torch', 'keras',
                                          'scipy', 'numba', 'pandas'}}:
                    raise ImportError('blocked: ' + name)
        sys.meta_path.insert(0, Block())
        import numpy as np, pyarrow.parquet as pq, forgeline as fl
        s = fl.load({str(path)!r})
        got = s.predict_proba(pq.read_table({str(tmp_path / 'x.parquet')!r}))
        np.testing.assert_array_equal(got, np.load({str(tmp_path / 'expected.npy')!r}))
        print('ok')
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       env=os.environ.copy())
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip() == "ok"


def test_eight_threads_share_one_scorer(churn_scorer, churn_pipeline):
    _, X = churn_pipeline
    parts = [X.iloc[i * 250:(i + 1) * 250] for i in range(8)]
    expected = [churn_scorer.predict_proba(p) for p in parts]
    with cf.ThreadPoolExecutor(8) as pool:
        for _ in range(3):
            got = list(pool.map(lambda p: churn_scorer.predict_proba(p), parts))
            for g, e in zip(got, expected):
                np.testing.assert_array_equal(g, e)


def test_schema_enforced_at_scoring(churn_scorer, churn_pipeline):
    _, X = churn_pipeline
    with pytest.raises(fl.SchemaError) as info:
        churn_scorer.predict(X.drop(columns=["region", "age"]))
    assert set(info.value.problems) == {"region", "age"}
    with pytest.raises(fl.SchemaError, match="monthly_charges"):
        churn_scorer.predict(X.assign(monthly_charges="lots"))
    # extra and reordered columns are fine
    churn_scorer.predict(X[list(reversed(X.columns))].assign(extra=1))


def test_empty_frame(churn_scorer, churn_pipeline):
    _, X = churn_pipeline
    assert churn_scorer.predict_proba(X.iloc[:0]).shape == (0, 2)


def test_unseen_category_scores_like_sklearn(churn_scorer, churn_pipeline):
    pipe, X = churn_pipeline
    cur = X.iloc[:100].assign(region="atlantis")
    np.testing.assert_allclose(churn_scorer.predict_proba(cur), pipe.predict_proba(cur), rtol=1e-12)


def test_monitor_and_drift(churn_scorer, churn_data, churn_pipeline):
    _, X = churn_pipeline
    _, current = churn_data
    cur = current[X.columns]
    s = churn_scorer
    s.reset_monitor()
    s.predict_proba(cur.iloc[:1000], monitor=True)
    s.predict_proba(cur.iloc[1000:], monitor=True)
    report = s.drift()
    assert len(report.drifted_columns) >= 3
    direct = s.drift(cur)
    assert set(report.drifted_columns) == set(direct.drifted_columns)
    assert "monthly_charges" in report.drifted_columns
    s.reset_monitor()


def test_transform_only_scorer_has_no_predict(churn_pipeline):
    pipe, X = churn_pipeline
    s = fl.compile(pipe[:-1], X.iloc[:300])
    with pytest.raises(fl.CompileError, match="transform-only"):
        s.predict(X)


def test_bundle_from_newer_major_version_is_refused(churn_scorer, tmp_path):
    path = tmp_path / "m.forge"
    churn_scorer.save(path)
    with zipfile.ZipFile(path) as z:
        members = {i.filename: z.read(i.filename) for i in z.infolist()}
    manifest = json.loads(members["manifest.json"])
    manifest["format_version"] = [99, 0]
    members["manifest.json"] = json.dumps(manifest).encode()
    newer = tmp_path / "newer.forge"
    with zipfile.ZipFile(newer, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    with pytest.raises(fl.BundleError, match="newer|upgrade"):
        fl.load(newer)


def test_truncated_bundle_is_refused(churn_scorer, tmp_path):
    path = tmp_path / "m.forge"
    churn_scorer.save(path)
    data = path.read_bytes()
    (tmp_path / "cut.forge").write_bytes(data[: len(data) // 2])
    with pytest.raises(fl.BundleError):
        fl.load(tmp_path / "cut.forge")


def test_explain_plan_lists_ops(churn_scorer):
    text = churn_scorer.explain_plan()
    assert "impute" in text and "onehot" in text and "TreeEnsemble" in text


def test_single_row_dict_path_matches_frame_path(churn_scorer, churn_pipeline):
    pipe, X = churn_pipeline
    for i in (0, 5, 17):
        row = X.iloc[i].to_dict()
        row.pop("signup_date")  # not used by the model
        np.testing.assert_allclose(churn_scorer.predict_proba(row), pipe.predict_proba(X.iloc[i:i + 1]),
                                   rtol=1e-12)
    row = X.iloc[0].to_dict() | {"region": "atlantis", "age": None, "payment_method": None}
    want = pipe.predict_proba(X.iloc[:1].assign(region="atlantis", age=np.nan, payment_method=None))
    np.testing.assert_allclose(churn_scorer.predict_proba(row), want, rtol=1e-12)
    bad = X.iloc[0].to_dict()
    del bad["region"]
    with pytest.raises(fl.SchemaError, match="region"):
        churn_scorer.predict_proba(bad)
    with pytest.raises(fl.SchemaError, match="age"):
        churn_scorer.predict_proba(X.iloc[0].to_dict() | {"age": "old"})


def test_drift_counts_unseen_categories(churn_scorer, churn_data, churn_pipeline):
    _, X = churn_pipeline
    _, current = churn_data
    report = churn_scorer.drift(current[X.columns])
    frame = report.to_frame()
    unseen = frame[(frame["column"] == "payment_method") & (frame["test"] == "unseen")]
    assert len(unseen) == 1 and unseen["statistic"].iloc[0] > 0  # "crypto" is new
    fl.Profile.from_dict(churn_scorer.profile.to_dict())  # the reference stays consistent


def _one_row_cases():
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(11)
    X = rng.normal(size=(300, 6))
    y = (X[:, 0] + X[:, 3] > 0).astype(int)
    plain = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    # Reads columns 4, 1 and 3 only, in that order: the row path must pick them by position.
    picked = make_pipeline(ColumnTransformer([("s", StandardScaler(), [4, 1, 3])]), LogisticRegression()).fit(X, y)
    return X, [plain, picked]


@pytest.mark.parametrize("case", [0, 1])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_one_row_numpy_equals_general_path(case, dtype):
    X, models = _one_row_cases()
    scorer = fl.compile(models[case], sample=X[:100])
    rows = X[100:110].astype(dtype)
    full = scorer.predict_proba(rows)  # more than one row: the general path
    for r in range(len(rows)):
        one = rows[r:r + 1]
        np.testing.assert_array_equal(scorer.predict_proba(one), full[r:r + 1])
        np.testing.assert_array_equal(scorer.predict_raw(one), scorer.predict_raw(rows)[r:r + 1])
        assert scorer.predict(one).shape == (1,)
    wide = np.hstack([rows[:1], np.ones((1, 2), dtype=dtype)])  # extra columns are ignored
    np.testing.assert_array_equal(scorer.predict_proba(wide), full[:1])
    with pytest.raises(fl.SchemaError):
        scorer.predict_proba(rows[:1, :4])  # missing columns still name the problem
    bad = rows[:1].copy()
    bad[0, 1] = np.nan  # LogisticRegression rejects NaN; so does the row path, with the same error
    with pytest.raises(fl.DataError, match="NaN") as one_err:
        scorer.predict_proba(bad)
    with pytest.raises(fl.DataError, match="NaN") as many_err:
        scorer.predict_proba(np.vstack([bad, bad]))
    assert str(one_err.value) == str(many_err.value)
