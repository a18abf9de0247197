"""The ``ModelRegistry`` contract on MLflow, as a Dagster resource.

A small ``ConfigurableResource`` (dagster-mlflow's is an op-era ``@resource``, not a ConfigurableResource)
over ``MlflowRegistryClient``, the one module that calls MLflow: the trainer and the endpoint, which run
outside Dagster, use that client directly, so all three reach MLflow the same way.
"""

from __future__ import annotations

from mlops_assets.contracts import ModelRegistry
from mlops_assets.model.registry import MlflowRegistryClient
from mlops_assets.records import RegisteredModel


class MlflowRegistry(ModelRegistry):
    uri: str
    artifact_root: str | None = None  # where new experiments keep artifacts (MLflow's default: ./mlruns)

    @property
    def _mlflow(self) -> MlflowRegistryClient:
        return MlflowRegistryClient(self.uri, self.artifact_root)

    def tracking_uri(self) -> str:
        return self.uri

    def experiment(self, name: str) -> str:
        return self._mlflow.experiment(name)

    def by_alias(self, name: str, alias: str) -> RegisteredModel | None:
        return self._mlflow.by_alias(name, alias)

    def get(self, name: str, version: str) -> RegisteredModel:
        return self._mlflow.get(name, version)

    def load(self, name: str, version: str):
        return self._mlflow.load(name, version)

    def tagged(self, name: str, key: str, value: str) -> list[RegisteredModel]:
        return self._mlflow.tagged(name, key, value)

    def metrics(self, name: str, version: str) -> dict[str, float]:
        return self._mlflow.metrics(name, version)

    def promote(self, name: str, version: str, approved_by: str, rollback: bool = False) -> RegisteredModel | None:
        return self._mlflow.promote(name, version, approved_by, rollback)

    def withdraw(self, name: str, alias: str) -> None:
        self._mlflow.withdraw(name, alias)

    def fail_unfinished_runs(self, name: str, dagster_run_id: str) -> list[str]:
        return self._mlflow.fail_unfinished_runs(name, dagster_run_id)

    def record(self, name: str, version: str, tags: dict[str, str], run_metrics: dict[str, float]) -> None:
        self._mlflow.record(name, version, tags, run_metrics)

    def log_artifacts(self, run_id: str, files: dict[str, bytes], folder: str) -> None:
        self._mlflow.log_artifacts(run_id, files, folder)

    def describe(self, name: str, version: str, card: str) -> None:
        self._mlflow.describe(name, version, card)
