"""The MLflow pyfunc flavour of a ``PipelineModel``: what the registry stores and any MLflow tool can load.

``registry.MlflowRegistryClient`` logs and loads it; this module says what is stored.
"""

from __future__ import annotations

import logging

import mlflow.pyfunc
import pandas as pd

from mlops_assets.model.pipeline_model import PipelineModel


class PipelineModelWrapper(mlflow.pyfunc.PythonModel):
    """Feature transformer and estimator in one artifact, so ``mlflow models serve`` computes the same
    features as training did."""

    def __init__(self, model: PipelineModel):
        self.model = model

    def predict(self, context, model_input: pd.DataFrame, params=None):
        frame = pd.DataFrame(model_input)
        return self.model.predict({c: frame[c].to_numpy() for c in frame.columns}).labels


def signature(spec):
    """The model's input schema from the spec, so MLflow checks requests without inferring anything."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    types = {"float": "double", "int": "long", "str": "string", "bool": "boolean"}
    inputs = Schema([ColSpec(types[spec.schema_.columns[c].dtype], c) for c in spec.input_columns])
    target_type = "double" if spec.task == "regression" else types[spec.schema_.columns[spec.target].dtype]
    return ModelSignature(inputs=inputs, outputs=Schema([ColSpec(target_type)]))


def requirements(spec) -> list[str]:
    """Given explicitly: inferring them makes MLflow load the model in a subprocess (about 10 s)."""
    from mlops_assets.model.provenance import package_version

    names = ["mlflow", "mlops-assets", "numpy", "pandas", "scikit-learn"]
    if spec.model.torch is not None:
        names.append("torch")
    return [f"{n}=={package_version(n)}" for n in names if package_version(n)]


INPUT_EXAMPLE_ROWS = 3  # rows of the training inputs stored with the model: what a request looks like


def log_pipeline_model(model: PipelineModel, spec, example: pd.DataFrame):
    """Log ``model`` as a pyfunc in the active run and register it under the pipeline's name: the one place
    that decides how a model is stored. ``example`` (training rows) is stored as its input example, checked
    against the signature."""
    _quiet_cloudpickle_notice()
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=PipelineModelWrapper(model),
        signature=signature(spec),
        input_example=example[spec.input_columns].head(INPUT_EXAMPLE_ROWS),
        pip_requirements=requirements(spec),
        registered_model_name=spec.name,
    )


def _quiet_cloudpickle_notice() -> None:
    """MLflow logs a warning whenever a ``python_model`` object is pickled, recommending models from code.
    Ours is pickled on purpose (the fitted transformer and estimator are the model) and is only ever loaded
    from the project's own registry, so the notice is dropped in the processes that log models."""
    logger = logging.getLogger("mlflow.pyfunc")
    if not any(isinstance(f, _CloudpickleNotice) for f in logger.filters):
        logger.addFilter(_CloudpickleNotice())


class _CloudpickleNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Passing a Python object as `python_model`")
