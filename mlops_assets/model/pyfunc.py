"""The MLflow pyfunc flavour of a ``PipelineModel``: what the registry stores and any MLflow tool can load."""

from __future__ import annotations

import mlflow.pyfunc
import pandas as pd

from mlops_assets.model.pipeline_model import PipelineModel


class PipelineModelWrapper(mlflow.pyfunc.PythonModel):
    """Feature transformer and estimator in one artifact, so ``mlflow models serve`` computes the same
    features as training did."""

    def __init__(self, model: PipelineModel):
        self.model = model

    def predict(self, context, model_input, params=None):
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


def log_pipeline_model(model: PipelineModel, spec):
    """Log ``model`` as a pyfunc in the active run and register it under the pipeline's name: the one place
    that decides how a model is stored."""
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=PipelineModelWrapper(model),
        signature=signature(spec),
        pip_requirements=requirements(spec),
        registered_model_name=spec.name,
    )


def load_pipeline_model(tracking_uri: str, name: str, version: str) -> PipelineModel:
    """Load one registered version. The artifact location comes from an explicit client rather than a
    ``models:/`` URI, which MLflow resolves against process-global settings."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    location = client.get_model_version_download_uri(name, version)
    return mlflow.pyfunc.load_model(location).unwrap_python_model().model


def load_holdout_inputs(tracking_uri: str, name: str, version: str) -> pd.DataFrame | None:
    """The holdout inputs ``evaluation_report`` stored with the version; ``None`` for a version never evaluated."""
    import tempfile

    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from mlops_assets.data.locations import EVALUATION_FOLDER, HOLDOUT_INPUTS

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    run_id = client.get_model_version(name, version).run_id
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run_id, f"{EVALUATION_FOLDER}/{HOLDOUT_INPUTS}", tmp)
        except (MlflowException, OSError):
            return None
        return pd.read_parquet(path)
