"""The training entry point: fit, log to MLflow, register the version as ``challenger``.

It runs outside the Dagster process, through Dagster Pipes: as a local subprocess or as a GPU pod, with
the same command (``python -m mlops_assets.model.training``) and the same reported result. Everything it needs
arrives in the Pipes extras as a ``TrainingRequest``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops_assets.data.snapshot import content_hash
from mlops_assets.data.training_set import ORIGIN, WEIGHT
from mlops_assets.model.estimators import build_estimator
from mlops_assets.model.pipeline_model import fit_pipeline_model
from mlops_assets.model.provenance import QUARANTINE, digest, environment, pip_freeze, seeds, stored_parts
from mlops_assets.naming import (
    CHALLENGER,
    PROVENANCE_ARTIFACT,
    PROVENANCE_FOLDER,
    REQUIREMENTS_ARTIFACT,
    SPEC_ARTIFACT,
)
from mlops_assets.records import TrainingRequest, TrainingResult
from mlops_assets.spec import PipelineSpec, load_spec

TRAINING_LOG = "logs/training.log"  # in the version's MLflow run: what the training said


class TrainingLog:
    """Forwards each line to the Pipes log (the Dagster run) and keeps it for the MLflow run: a pod is deleted
    when it ends, and its log with it."""

    def __init__(self, log):
        self.log, self.lines = log, []

    def info(self, message: str) -> None:
        self.lines.append(message)
        self.log.info(message)

    def text(self) -> bytes:
        return ("\n".join(self.lines) + "\n").encode()


class _Forward(logging.Handler):
    def __init__(self, log: TrainingLog):
        super().__init__(logging.INFO)
        self.training_log = log

    def emit(self, record: logging.LogRecord) -> None:
        self.training_log.info(record.getMessage())


@contextmanager
def forwarding(log: TrainingLog, logger_name: str) -> Iterator[None]:
    """What ``logger_name`` says at INFO and above (the torch trainer's epochs) goes into ``log`` meanwhile."""
    logger, handler = logging.getLogger(logger_name), _Forward(log)
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def make_estimator(spec: PipelineSpec, spec_path: str, checkpoint_uri: str | None = None) -> Any:
    if spec.model.torch is not None:
        from mlops_assets.model.torch_mlp import TorchMLP

        return TorchMLP(task=spec.task, **spec.model.torch.model_dump(), checkpoint_uri=checkpoint_uri)
    return build_estimator(spec.model.estimator, spec.model.params, spec_path)


def sample_weights(train: pd.DataFrame) -> np.ndarray | None:
    """The training rows' weights (training window, importance weights); ``None`` when all are equal."""
    weights = train[WEIGHT].to_numpy() if WEIGHT in train.columns else None
    return weights if weights is not None and not np.allclose(weights, weights[0]) else None


def run_training(request: TrainingRequest, pipes_log) -> TrainingResult:
    from mlops_assets.model.registry import MlflowRegistryClient

    log = TrainingLog(pipes_log)
    started = time.perf_counter()
    spec = load_spec(request.spec_path)
    train = pd.read_parquet(request.train_uri)
    weights = sample_weights(train)
    weighted = weights is not None
    estimator = make_estimator(spec, request.spec_path, request.checkpoint_uri)
    origins = train[ORIGIN].value_counts().to_dict() if ORIGIN in train.columns else {"source": len(train)}
    log.info(f"training {type(estimator).__name__} on {len(train)} rows {origins}{', weighted' if weighted else ''}")
    with forwarding(log, "mlops_assets.model.torch_mlp"):
        model = fit_pipeline_model(spec, train, estimator, weights)
    train_metrics = {f"train_{k}": v for k, v in model.evaluate(train, spec.target, spec.metrics).items()}
    params = {k: v for k, v in estimator.get_params().items() if isinstance(v, int | float | str | bool)}
    device = getattr(estimator, "device_used_", None) or "cpu"
    precision = getattr(estimator, "precision_used_", None)

    env = environment()
    tags = {**request.tags, "device": device, "estimator": type(estimator).__name__}
    if precision is not None:
        tags["precision"] = precision
    recorded, artifacts = provenance(request, estimator, train)
    run = {"tags": tags, "params": params, "metrics": train_metrics, "environment": env, "artifacts": artifacts}
    registry = MlflowRegistryClient(request.tracking_uri)
    registered = registry.register(
        spec, model, train, request.experiment_id, run, {**tags, **recorded, "environment": json.dumps(env)}
    )
    version = registered.version
    log.info(f"registered {spec.name} version {version} as {CHALLENGER}")
    if request.checkpoint_uri is not None:
        from mlops_assets.model.torch_mlp import remove_checkpoint

        remove_checkpoint(request.checkpoint_uri)  # kept until now: a retry of a failed registration trains nothing
    folder, filename = TRAINING_LOG.rsplit("/", 1)
    registry.log_artifacts(registered.run_id, {filename: log.text()}, folder)
    seconds = round(time.perf_counter() - started, 3)
    resumed = getattr(estimator, "resumed_from_epoch_", None)
    return TrainingResult(
        version, registered.run_id, train_metrics, params, device, seconds, len(train), weighted, precision, resumed
    )


def provenance(request: TrainingRequest, estimator: Any, train: pd.DataFrame) -> tuple[dict[str, str], dict]:
    """What a version needs to be traced and reproduced, beyond the tags the asset sends: the spec file as
    read, every installed package, the seed, content hashes of the stored parts it is trained and judged on
    and the rows quarantined beside them. Returns version tags and the run's artifacts (path: text)."""
    spec_text = Path(request.spec_path).read_bytes()
    freeze = pip_freeze()
    seed = seeds(estimator.get_params())
    parts = stored_parts(request.train_uri)
    quarantined = _row_count(parts.pop(QUARANTINE))
    hashes = {"train": content_hash(train)}
    hashes.update({name: content_hash(pd.read_parquet(uri)) for name, uri in parts.items() if _exists(uri)})
    record = {
        "spec_file": request.spec_path,
        "spec_file_hash": digest(spec_text),
        "environment_digest": digest(freeze.encode()),
        "seed": seed,
        "content_hashes": hashes,
        "quarantined_rows": quarantined,
    }
    tags = {
        "spec_file_hash": record["spec_file_hash"],
        "environment_digest": record["environment_digest"],
        "seed": json.dumps(seed, sort_keys=True),
        "training_set_hash": hashes["train"],
        "quarantined_rows": str(quarantined),
    }
    artifacts = {
        f"{PROVENANCE_FOLDER}/{SPEC_ARTIFACT}": spec_text.decode(),
        f"{PROVENANCE_FOLDER}/{REQUIREMENTS_ARTIFACT}": freeze,
        f"{PROVENANCE_FOLDER}/{PROVENANCE_ARTIFACT}": json.dumps(record, indent=2, sort_keys=True),
    }
    return tags, artifacts


def _exists(uri: str) -> bool:
    from fsspec.core import url_to_fs

    fs, path = url_to_fs(uri)
    return fs.exists(path)


def _row_count(uri: str) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(uri).metadata.num_rows if _exists(uri) else 0


def main() -> None:
    from dagster_pipes import open_dagster_pipes

    with open_dagster_pipes() as pipes:
        request = TrainingRequest(**pipes.extras["request"])
        result = run_training(request, pipes.log)
        pipes.report_custom_message(result.to_message())


if __name__ == "__main__":
    main()
