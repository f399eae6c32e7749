"""forgeline.integrations.mlflow end to end against a local SQLite tracking store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import forgeline as fl

with warnings.catch_warnings():
    # mlflow warns about its own type hints while importing its pyfunc/agent modules.
    warnings.simplefilter("ignore")
    mlflow = pytest.importorskip("mlflow")
    import mlflow.models  # noqa: F401
    import mlflow.pyfunc  # noqa: F401

from forgeline.integrations import mlflow as flm  # noqa: E402

pytestmark = [
    # Third-party noise under filterwarnings=error: mlflow's SQLite store on SQLAlchemy 2.1,
    # and mlflow's advice about type hints on the plain PythonModel used as a foil below.
    pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning"),
    pytest.mark.filterwarnings("ignore:.*type hint:UserWarning"),
    # mlflow 3.17's input-example writer does `frame.index == range(...)`, deprecated in pandas 3.
    pytest.mark.filterwarnings("ignore:Operation with range is deprecated"),
]

PICKLE_MAGIC = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A private tracking store (SQLite) with its artifacts under the same temp dir."""
    root = tmp_path_factory.mktemp("mlflow")
    old = mlflow.get_tracking_uri()
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    exp = mlflow.create_experiment("forgeline-tests", artifact_location=(root / "artifacts").as_uri())
    mlflow.set_experiment(experiment_id=exp)
    yield uri, root
    mlflow.set_tracking_uri(old)


@pytest.fixture(scope="module")
def logged(store, churn_scorer):
    with mlflow.start_run() as run:
        info = flm.log_model(churn_scorer, name="churn", registered_model_name="forgeline-churn")
    return run.info.run_id, info


def _files(uri):
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
    return local, sorted(p for p in local.rglob("*") if p.is_file())


def test_logged_artifact_has_flavors_signature_example_and_no_pickle(logged, churn_scorer):
    _, info = logged
    local, files = _files(info.model_uri)
    names = {p.name for p in files}
    assert {"MLmodel", "model.forge", "input_example.json", "requirements.txt"} <= names
    for p in files:
        assert p.suffix not in (".pkl", ".pickle", ".joblib", ".cloudpickle"), p
        head = p.read_bytes()[:2]
        assert head not in PICKLE_MAGIC, p
    text = (local / "MLmodel").read_text()
    assert "pickle" not in text
    model = mlflow.models.Model.load(str(local / "MLmodel"))
    assert model.flavors["python_function"]["loader_module"] == "forgeline.integrations.mlflow"
    assert model.flavors["forgeline"]["bundle"] == "model.forge"
    sig = model.signature
    assert sig.inputs.input_names() == churn_scorer.schema.names
    types = {c.name: str(c.type) for c in sig.inputs.inputs}
    assert types["tenure_months"].endswith("double") and types["region"].endswith("string")
    assert types["paperless_billing"].endswith("boolean")
    assert sig.outputs.input_names() == ["prediction", "raw", "proba_0", "proba_1"]
    assert fl.load(local / "model.forge").schema == churn_scorer.schema
    example = json.loads((local / "input_example.json").read_text())
    assert example["columns"] == churn_scorer.schema.names


def test_load_by_run_and_registry_uris_and_predict(logged, churn_scorer, churn_data):
    run_id, info = logged
    _, current = churn_data
    X = current.drop(columns=["churn", "customer_id"]).iloc[:300]
    want = churn_scorer.score(X)
    for uri in (f"runs:/{run_id}/churn", "models:/forgeline-churn/1", info.model_uri):
        scorer = flm.load_model(uri)
        assert isinstance(scorer, fl.Scorer)
        np.testing.assert_array_equal(scorer.predict_proba(X), churn_scorer.predict_proba(X))
        py = mlflow.pyfunc.load_model(uri)
        got = py.predict(X)
        assert isinstance(got, pd.DataFrame)
        pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True))
        assert isinstance(py.get_raw_model(), fl.Scorer)


def test_save_model_and_errors(tmp_path, churn_scorer, churn_data):
    path = tmp_path / "m"
    example = churn_data[0].drop(columns=["churn", "customer_id"]).iloc[:3]
    flm.save_model(churn_scorer, str(path), input_example=example)
    py = mlflow.pyfunc.load_model(str(path))
    pd.testing.assert_frame_equal(py.predict(example), churn_scorer.score(example))
    with pytest.raises(fl.InputError, match="exists"):
        flm.save_model(churn_scorer, str(path))
    with pytest.raises(fl.InputError, match="Scorer"):
        flm.log_model(object(), name="x")
    with pytest.raises(fl.InputError, match="Scorer"):
        flm.save_model("not a scorer", str(tmp_path / "n"))


def test_udf_bundle_needs_allow_code(tmp_path, udf_model):
    scorer, df = udf_model
    path = tmp_path / "u"
    flm.save_model(scorer, str(path))
    with pytest.raises(fl.BundleError, match="allow_code=True"):
        flm.load_model(str(path))
    with pytest.raises(fl.BundleError, match="allow_code=True"):
        mlflow.pyfunc.load_model(str(path))
    loaded = flm.load_model(str(path), allow_code=True)
    np.testing.assert_array_equal(loaded.predict_proba(df), scorer.predict_proba(df))
    py = mlflow.pyfunc.load_model(str(path), model_config={"allow_code": True})
    pd.testing.assert_frame_equal(py.predict(df), scorer.score(df))
    with pytest.raises(fl.BundleError, match="allow_code must be True or False"):
        mlflow.pyfunc.load_model(str(path), model_config={"allow_code": "yes"})
    with pytest.raises(fl.InputError, match="allow_cod"):
        flm._load_pyfunc(str(path), {"allow_cod": True})


def test_load_model_rejects_other_flavors(store):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mlflow asks for type hints on predict

        class _Echo(mlflow.pyfunc.PythonModel):
            def predict(self, context, model_input, params=None):
                return model_input

    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="plain", python_model=_Echo(),
                                       pip_requirements=["mlflow"])
    with pytest.raises(fl.InputError, match="not a forgeline model"):
        flm.load_model(info.model_uri)


def test_mlflow_models_predict_cli(logged, store, churn_scorer, churn_data, tmp_path):
    uri, _ = store
    run_id, _ = logged
    X = churn_data[1][churn_scorer.schema.names].iloc[:20]
    inp = tmp_path / "in.json"
    out = tmp_path / "out.json"
    inp.write_text(json.dumps({"dataframe_split": json.loads(X.to_json(orient="split", index=False))}))
    root = str(Path(fl.__file__).resolve().parents[1])
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri,
               PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
    proc = subprocess.run([sys.executable, "-m", "mlflow", "models", "predict", "-m",
                           f"runs:/{run_id}/churn", "-i", str(inp), "-o", str(out), "-t", "json",
                           "--env-manager", "local"], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    preds = json.loads(out.read_text())["predictions"]
    got = pd.DataFrame(preds)
    want = churn_scorer.score(X)
    np.testing.assert_array_equal(got["prediction"].to_numpy(), want["prediction"].to_numpy())
    np.testing.assert_allclose(got["proba_1"].to_numpy(), want["proba_1"].to_numpy(), rtol=1e-15)
