"""Integrations with the platforms forgeline models run on: Spark and MLflow.

Each submodule imports its platform lazily, so ``import forgeline`` never needs pyspark or
mlflow:

* :mod:`forgeline.integrations.spark`: batch scoring, profiling, drift and mergeable
  transform fitting on Spark DataFrames (``mapInArrow``).
* :mod:`forgeline.integrations.mlflow`: a ``forgeline`` MLflow flavor with a ``pyfunc``
  flavor, for the MLflow model registry and ``mlflow models predict``/``serve``.
"""

from __future__ import annotations

__all__ = ["spark", "mlflow"]


def __getattr__(name: str):
    if name in __all__:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
