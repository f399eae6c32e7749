"""An MLflow flavor for forgeline Scorers (install the ``mlflow`` extra).

A logged model directory holds::

    MLmodel            flavors: forgeline (the bundle) and python_function (this module)
    model.forge        the Scorer bundle: JSON manifest + .npy arrays, checksummed, no pickle
    input_example.json / serving_input_example.json
    requirements.txt  python_env.yaml  conda.yaml

Nothing in it is pickled: the ``python_function`` flavor names this module as its loader
(``loader_module="forgeline.integrations.mlflow"``), and MLflow calls :func:`_load_pyfunc`
with the bundle path. ``mlflow.pyfunc.load_model(uri).predict(df)`` returns
:meth:`forgeline.Scorer.score`'s frame: ``prediction``, ``raw`` (or ``raw_0..raw_k``) and, for
classifiers, ``proba_<class>`` columns, one row per input row.

mlflow is imported lazily, inside the functions.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from ..errors import InputError

FLAVOR_NAME = "forgeline"
BUNDLE_FILE = "model.forge"


def _require_mlflow():
    try:
        import mlflow
    except ImportError as exc:  # pragma: no cover - mlflow is installed in CI
        raise ImportError("forgeline.integrations.mlflow needs mlflow: "
                          "pip install 'forgeline[mlflow]'") from exc
    return mlflow


def _check_scorer(scorer):
    from ..scorer import Scorer

    if not isinstance(scorer, Scorer):
        raise InputError(f"expected a forgeline.Scorer, got {type(scorer).__name__}")
    if scorer.model is None:
        raise InputError("a transform-only Scorer cannot be logged as an MLflow model "
                         "(its pyfunc predict returns score(), which needs a model)")


# --------------------------------------------------------------------------- signature
def _input_type(spec):
    from mlflow.types import DataType

    if spec.kind == "numeric":
        return DataType.double
    if spec.kind == "boolean":
        return DataType.boolean
    if spec.kind == "datetime":
        return DataType.datetime
    vocab = spec.vocabulary or ()
    if vocab and all(isinstance(v, int) for v in vocab):
        return DataType.long
    return DataType.string


def model_signature(scorer):
    """The MLflow model signature of a Scorer: inputs from its schema, outputs from
    :meth:`forgeline.Scorer.score`.

    Inputs: numeric columns as ``double``, categorical as ``string`` (``long`` for integer
    vocabularies), boolean as ``boolean``, datetime as ``datetime``; all optional
    (``required=False``), because forgeline treats missing values per the fitted pipeline.
    Outputs: ``prediction`` (``long``/``string`` for classifiers' labels, ``double`` for
    regressors), ``raw``/``raw_k`` and ``proba_<class>`` as ``double``.

    Parameters
    ----------
    scorer : forgeline.Scorer

    Returns
    -------
    mlflow.models.ModelSignature
    """
    _require_mlflow()
    _check_scorer(scorer)
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, DataType, Schema

    from .spark import output_schema

    inputs = Schema([ColSpec(_input_type(c), c.name, required=False) for c in scorer.schema])
    out = []
    for f in output_schema(scorer):
        t = f.type
        dt = DataType.string if str(t) == "string" else DataType.boolean if str(t) == "bool" \
            else DataType.long if str(t) == "int64" else DataType.double
        out.append(ColSpec(dt, f.name))
    return ModelSignature(inputs=inputs, outputs=Schema(out))


def example_frame(scorer, n_rows: int = 2):
    """A small synthetic input frame built from the schema and the reference profile.

    Numeric columns take reference quantiles (from the profile's sample; 0.0 without a
    profile), categorical columns the first vocabulary entries, booleans alternate.
    Used as the default MLflow input example.

    Parameters
    ----------
    scorer : forgeline.Scorer
    n_rows : int

    Returns
    -------
    pandas.DataFrame
    """
    import pandas as pd

    prof = scorer.profile.columns if scorer.profile is not None else {}
    cols = {}
    qs = np.linspace(0.25, 0.75, n_rows)
    for spec in scorer.schema:
        p = prof.get(spec.name)
        if spec.kind == "categorical":
            vocab = list(spec.vocabulary or ["a"])
            cols[spec.name] = [vocab[i % len(vocab)] for i in range(n_rows)]
        elif spec.kind == "boolean":
            cols[spec.name] = [bool(i % 2) for i in range(n_rows)]
        else:
            sample = getattr(p, "sample", None)
            if sample is not None and sample.size:
                vals = np.quantile(sample, qs, method="nearest")
            else:
                vals = np.zeros(n_rows)
            if spec.kind == "datetime":
                cols[spec.name] = pd.to_datetime(vals.astype(np.int64), unit="ns")
            else:
                cols[spec.name] = vals.astype(np.float64)
    return pd.DataFrame(cols)


# --------------------------------------------------------------------------- save / log
def _write_env(path: str) -> None:
    import mlflow
    import yaml

    from .._version import __version__

    pins = [f"mlflow=={mlflow.__version__}", f"forgeline=={__version__}"]
    for mod in ("numpy", "pyarrow", "pandas"):
        pins.append(f"{mod}=={sys.modules[mod].__version__}" if mod in sys.modules
                    else mod)
    with open(os.path.join(path, "requirements.txt"), "w") as fh:
        fh.write("\n".join(pins) + "\n")
    py = ".".join(map(str, sys.version_info[:3]))
    with open(os.path.join(path, "python_env.yaml"), "w") as fh:
        yaml.safe_dump({"python": py, "build_dependencies": ["pip"],
                        "dependencies": ["-r requirements.txt"]}, fh, sort_keys=False)
    with open(os.path.join(path, "conda.yaml"), "w") as fh:
        yaml.safe_dump({"name": "forgeline_env", "channels": ["conda-forge"],
                        "dependencies": [f"python={py}", "pip", {"pip": pins}]}, fh,
                       sort_keys=False)


def save_model(scorer, path, mlflow_model=None, input_example=None, signature=None,
               metadata=None):
    """Save a Scorer as an MLflow model directory (the flavor's ``save_model``).

    Parameters
    ----------
    scorer : forgeline.Scorer
    path : str
        Directory to create; must not exist yet.
    mlflow_model : mlflow.models.Model, optional
        The model configuration to add the flavors to (MLflow passes it when logging).
    input_example : pandas.DataFrame, optional
        Defaults to :func:`example_frame`.
    signature : mlflow.models.ModelSignature or False, optional
        Defaults to :func:`model_signature`; ``False`` for none.
    metadata : dict, optional
        Custom metadata stored in MLmodel.

    Raises
    ------
    forgeline.InputError
        When ``scorer`` is not a Scorer with a model, or ``path`` already exists.
    """
    mlflow = _require_mlflow()
    _check_scorer(scorer)
    from mlflow.models import Model
    from mlflow.models.utils import _save_example

    from .._version import __version__

    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path) and os.listdir(path):
        raise InputError(f"path {path!r} already exists and is not empty")
    os.makedirs(path, exist_ok=True)
    if mlflow_model is None:
        mlflow_model = Model()
    scorer.save(os.path.join(path, BUNDLE_FILE))
    if input_example is None:
        input_example = example_frame(scorer)
    _save_example(mlflow_model, input_example, path)
    if signature is None:
        signature = model_signature(scorer)
    if signature is not False:
        mlflow_model.signature = signature
    if metadata is not None:
        mlflow_model.metadata = metadata
    # The pyfunc flavor declares the one load-time option, so that
    # mlflow.pyfunc.load_model(uri, model_config={"allow_code": True}) reaches _load_pyfunc
    # (MLflow drops load-time keys the flavor did not declare).
    mlflow.pyfunc.add_to_model(mlflow_model, loader_module=__name__, data=BUNDLE_FILE,
                               conda_env="conda.yaml", python_env="python_env.yaml",
                               model_config={"allow_code": False})
    mlflow_model.add_flavor(FLAVOR_NAME, bundle=BUNDLE_FILE, forgeline_version=__version__,
                            source=dict(scorer.metadata.get("source") or {})
                            if isinstance(scorer.metadata.get("source"), dict)
                            else str(scorer.metadata.get("source")))
    mlflow_model.save(os.path.join(path, "MLmodel"))
    _write_env(path)


def log_model(scorer, name: str = "model", *, registered_model_name: str | None = None,
              input_example=None, signature=None, metadata=None, **kwargs):
    """Log a Scorer to the active MLflow run (started if there is none).

    The logged model has a ``forgeline`` flavor (the ``.forge`` bundle) and a
    ``python_function`` flavor whose loader is this module, a signature derived from the
    schema (:func:`model_signature`) and an input example (:func:`example_frame` unless given).
    No file in it is a pickle.

    Parameters
    ----------
    scorer : forgeline.Scorer
    name : str
        The model's name within the run.
    registered_model_name : str, optional
        Also register it in the model registry under this name (a new version).
    input_example : pandas.DataFrame, optional
    signature : mlflow.models.ModelSignature or False, optional
    metadata : dict, optional
    **kwargs
        Passed to ``mlflow.models.Model.log`` (``tags``, ``params``, ``run_id``...).

    Returns
    -------
    mlflow.models.model.ModelInfo
        ``model_info.model_uri`` loads it back with :func:`load_model` or
        ``mlflow.pyfunc.load_model``.
    """
    _require_mlflow()
    _check_scorer(scorer)
    from mlflow.models import Model

    return Model.log(artifact_path=None, name=name, flavor=sys.modules[__name__], scorer=scorer,
                     registered_model_name=registered_model_name, input_example=input_example,
                     signature=signature, metadata=metadata, flavor_name=FLAVOR_NAME, **kwargs)


def load_model(model_uri: str, dst_path: str | None = None, *, allow_code: bool = False):
    """Load the Scorer of a logged forgeline model.

    Parameters
    ----------
    model_uri : str
        ``runs:/<run_id>/<name>``, ``models:/<name>/<version>``, ``models:/<model_id>``, a
        local path, or any artifact URI MLflow understands.
    dst_path : str, optional
        Where to download the artifacts (default: a temporary directory).
    allow_code : bool, default False
        Passed to :func:`forgeline.load`: a bundle with ``forgeline.udf`` functions is
        refused unless this is True.

    Returns
    -------
    forgeline.Scorer

    Raises
    ------
    forgeline.InputError
        When the model has no ``forgeline`` flavor.
    forgeline.BundleError
        When the bundle is corrupted.
    """
    mlflow = _require_mlflow()
    from mlflow.models import Model

    from ..scorer import load

    local = mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=dst_path)
    conf = Model.load(os.path.join(local, "MLmodel")).flavors.get(FLAVOR_NAME)
    if conf is None:
        raise InputError(f"{model_uri!r} is not a forgeline model (no {FLAVOR_NAME!r} flavor)")
    bundle = os.path.normpath(os.path.join(local, conf["bundle"]))
    if os.path.dirname(bundle) != os.path.normpath(local):
        raise InputError(f"{model_uri!r}: the forgeline bundle must sit in the model directory")
    return load(bundle, allow_code=allow_code)


# --------------------------------------------------------------------------- pyfunc
class PyfuncModel:
    """What ``mlflow.pyfunc.load_model`` wraps: ``predict(df)`` is ``scorer.score(df)``."""

    def __init__(self, scorer):
        self.scorer = scorer

    def predict(self, model_input, params=None):
        """Score ``model_input`` (a pandas DataFrame after MLflow's schema enforcement).

        Returns
        -------
        pandas.DataFrame
            ``prediction``, ``raw``/``raw_k`` and ``proba_<class>`` columns.
        """
        import pandas as pd

        out = self.scorer.score(model_input)
        if not isinstance(out, pd.DataFrame):
            out = out.to_pandas()
        return out

    def get_raw_model(self):
        """The underlying :class:`forgeline.Scorer`."""
        return self.scorer


def _load_pyfunc(path, model_config=None):
    """MLflow's entry point: ``path`` is the bundle file named by the pyfunc flavor.

    ``mlflow.pyfunc.load_model(uri, model_config={"allow_code": True})`` is the only way to
    load a bundle with ``forgeline.udf`` functions through pyfunc; any other key is refused
    so that a typo does not pass silently (MLflow itself drops, with a warning, keys the
    flavor did not declare at save time; models saved before this option have none).
    """
    from ..scorer import load

    config = dict(model_config or {})
    unknown = sorted(set(config) - {"allow_code"})
    if unknown:
        raise InputError(f"unknown forgeline model_config keys {unknown}; "
                         "the only key is 'allow_code'")
    if os.path.isdir(path):
        path = os.path.join(path, BUNDLE_FILE)
    allow = config.get("allow_code", False)
    if isinstance(allow, str):  # the MLFLOW_PYFUNC_INFERENCE_CONFIG route carries JSON text
        allow = {"true": True, "false": False}.get(allow.strip().lower(), allow)
    return PyfuncModel(load(path, allow_code=allow))


__all__ = ["FLAVOR_NAME", "PyfuncModel", "example_frame", "load_model", "log_model",
           "model_signature", "save_model"]
