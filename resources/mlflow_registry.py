"""MLflow tracking and model registry behind the ``ModelRegistry`` contract.

A small ``ConfigurableResource`` around ``MlflowClient``: dagster-mlflow's resource is op-era and does
not fit assets (field notes). The aliases ``champion`` and ``challenger`` are MLflow registry aliases.
"""

from __future__ import annotations

import datetime as dt

from mlops_assets.contracts import ModelRegistry, RegisteredModel


class MlflowRegistry(ModelRegistry):
    uri: str
    artifact_root: str  # where new experiments keep artifacts (MLflow's default is ./mlruns in the cwd)

    def tracking_uri(self) -> str:
        return self.uri

    def _client(self):
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    def experiment(self, name: str) -> str:
        client = self._client()
        existing = client.get_experiment_by_name(name)
        if existing is not None:
            return existing.experiment_id
        return client.create_experiment(name, artifact_location=f"{self.artifact_root}/{name}")

    @staticmethod
    def _registered(version) -> RegisteredModel:
        return RegisteredModel(version.name, str(version.version), version.run_id, dict(version.tags))

    def by_alias(self, name: str, alias: str) -> RegisteredModel | None:
        from mlflow.exceptions import MlflowException

        try:
            return self._registered(self._client().get_model_version_by_alias(name, alias))
        except MlflowException:
            return None

    def get(self, name: str, version: str) -> RegisteredModel:
        return self._registered(self._client().get_model_version(name, version))

    def load(self, name: str, version: str):
        from mlops_assets.model.pyfunc import load_pipeline_model

        return load_pipeline_model(self.uri, name, version)

    def promote(self, name: str, version: str, approved_by: str, rollback: bool = False) -> RegisteredModel | None:
        client = self._client()
        previous = self.by_alias(name, "champion")
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        tags = {"approved_by": approved_by, "deployed_at": now}
        if rollback and previous is not None:
            # The restored version keeps its own predecessor, so a second rollback goes further back.
            for key, value in {"rolled_back_by": approved_by, "rolled_back_at": now}.items():
                client.set_model_version_tag(name, previous.version, key, value)
        elif previous is None or previous.version != version:  # a version is never its own predecessor
            tags["previous_champion"] = previous.version if previous else "none"
        for key, value in tags.items():
            client.set_model_version_tag(name, version, key, value)
        client.set_registered_model_alias(name, "champion", version)
        return previous

    def fail_unfinished_runs(self, name: str, dagster_run_id: str) -> list[str]:
        from mlflow.entities import RunStatus

        client = self._client()
        runs = client.search_runs(
            [self.experiment(name)],
            filter_string=f"tags.dagster_run_id = '{dagster_run_id}' and attributes.status = 'RUNNING'",
        )
        for run in runs:
            client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.FAILED))
        return [run.info.run_id for run in runs]

    def record(self, name: str, version: str, tags: dict[str, str], run_metrics: dict[str, float]) -> None:
        client = self._client()
        for key, value in tags.items():
            client.set_model_version_tag(name, version, key, value)
        run_id = client.get_model_version(name, version).run_id
        for key, value in run_metrics.items():
            client.log_metric(run_id, key, value)

    def log_artifacts(self, run_id: str, files: dict[str, bytes], folder: str) -> None:
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory() as tmp:
            for filename, data in files.items():
                (Path(tmp) / filename).write_bytes(data)
            self._client().log_artifacts(run_id, tmp, folder)
