"""The training entry point: fit, log to MLflow, register the version as ``challenger``.

It runs outside the Dagster process, through Dagster Pipes: as a local subprocess or as a GPU pod, with
the same command (``python -m mlops_assets.model.training``) and the same reported result. Everything it needs
arrives in the Pipes extras as a ``TrainingRequest``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlops_assets.data.training_set import ORIGIN, WEIGHT
from mlops_assets.model.estimators import build_estimator
from mlops_assets.model.pipeline_model import fit_pipeline_model
from mlops_assets.model.provenance import environment
from mlops_assets.records import TrainingRequest
from mlops_assets.spec import PipelineSpec, load_spec


@dataclass(frozen=True)
class TrainingResult:
    version: str
    run_id: str
    train_metrics: dict[str, float]
    params: dict[str, Any]
    device: str
    seconds: float
    rows: int
    weighted: bool  # trained with sample weights (training window, importance weights)


def make_estimator(spec: PipelineSpec, spec_path: str) -> Any:
    if spec.model.torch is not None:
        from mlops_assets.model.torch_mlp import TorchMLP

        return TorchMLP(task=spec.task, **spec.model.torch.model_dump())
    return build_estimator(spec.model.estimator, spec.model.params, spec_path)


def run_training(request: TrainingRequest, log) -> TrainingResult:
    import mlflow
    from mlflow import MlflowClient

    from mlops_assets.model.pyfunc import log_pipeline_model

    started = time.perf_counter()
    spec = load_spec(request.spec_path)
    train = pd.read_parquet(request.train_uri)
    weights = train[WEIGHT].to_numpy() if WEIGHT in train.columns else None
    weighted = weights is not None and not np.allclose(weights, weights[0])
    estimator = make_estimator(spec, request.spec_path)
    origins = train[ORIGIN].value_counts().to_dict() if ORIGIN in train.columns else {"source": len(train)}
    log.info(f"training {type(estimator).__name__} on {len(train)} rows {origins}{', weighted' if weighted else ''}")
    model = fit_pipeline_model(spec, train, estimator, weights if weighted else None)
    train_metrics = {f"train_{k}": v for k, v in model.evaluate(train, spec.target, spec.metrics).items()}
    params = {k: v for k, v in estimator.get_params().items() if isinstance(v, int | float | str | bool)}
    device = getattr(estimator, "device_used_", None) or "cpu"

    mlflow.set_tracking_uri(request.tracking_uri)
    client = MlflowClient()
    env = environment()
    tags = {**request.tags, "device": device, "estimator": type(estimator).__name__}
    with mlflow.start_run(experiment_id=request.experiment_id, tags=tags) as run:
        mlflow.log_params(params)
        mlflow.log_metrics(train_metrics)
        mlflow.log_dict(env, "environment.json")
        info = log_pipeline_model(model, spec)
    version = str(info.registered_model_version)
    for key, value in {**tags, "run_id": run.info.run_id, "environment": json.dumps(env)}.items():
        client.set_model_version_tag(spec.name, version, key, value)
    client.set_registered_model_alias(spec.name, "challenger", version)
    log.info(f"registered {spec.name} version {version} as challenger")
    seconds = round(time.perf_counter() - started, 3)
    return TrainingResult(version, run.info.run_id, train_metrics, params, device, seconds, len(train), weighted)


def main() -> None:
    from dagster_pipes import open_dagster_pipes

    with open_dagster_pipes() as pipes:
        request = TrainingRequest(**pipes.extras["request"])
        result = run_training(request, pipes.log)
        pipes.report_custom_message(asdict(result))


if __name__ == "__main__":
    main()
