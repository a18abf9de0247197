"""MLflow tracking and model registry: the one module that calls MLflow's client.

Every process reaches MLflow through ``MlflowRegistryClient``: the Dagster resource behind the
``ModelRegistry`` contract (``mlops_assets.resources.mlflow_registry``) wraps it for the assets, the training process
registers its version with it, and the endpoint loads versions with it. It imports no Dagster, so the
trainer and the endpoint start without it. The aliases ``champion`` and ``challenger`` are MLflow registry
aliases.
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_assets.data.locations import EVALUATION_FOLDER, HOLDOUT_INPUTS
from mlops_assets.naming import CHALLENGER, CHAMPION
from mlops_assets.records import RegisteredModel

if TYPE_CHECKING:
    import pandas as pd

    from mlops_assets.model.pipeline_model import PipelineModel
    from mlops_assets.spec import PipelineSpec

# MLflow's SQL stores keep a description in a VARCHAR(5000) column: PostgreSQL and MySQL refuse a longer one (SQLite
# does not check), so a model card is cut to fit before it is stored.
DESCRIPTION_LIMIT = 5000


def fitted_description(card: str, limit: int = DESCRIPTION_LIMIT) -> str:
    """A model card as a version's description: whole when it fits in ``limit`` characters; else the lines of it
    that fit, and a line saying where the whole card is."""
    if len(card) <= limit:
        return card
    note = f"\n\n*Cut to fit the registry: the whole card is among the `{EVALUATION_FOLDER}` artifacts of the run.*\n"
    room = limit - len(note)
    cut = card.rfind("\n", 0, room + 1)
    return card[: cut if cut > 0 else room].rstrip() + note


def model_description(spec: PipelineSpec) -> str:
    """What the registered model is, for MLflow's UI: the spec's own description and what its versions are."""
    about = f"{spec.description}\n\n" if spec.description else ""
    return (
        f"{about}The `{spec.name}` pipeline's model ({spec.task}, target `{spec.target}`), registered by mlops-assets. "
        f"Each version's description is its model card; alias `{CHAMPION}` is the version serving, `{CHALLENGER}` "
        "the newest trained one."
    )


class MlflowRegistryClient:
    """A pipeline's model versions and runs in the MLflow store at ``uri``; ``artifact_root`` is where new
    experiments keep artifacts (MLflow's default is ./mlruns in the working directory)."""

    def __init__(self, uri: str, artifact_root: str | None = None):
        self.uri, self.artifact_root = uri, artifact_root

    def _client(self):
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    def experiment(self, name: str) -> str:
        client = self._client()
        existing = client.get_experiment_by_name(name)
        if existing is not None:
            return existing.experiment_id
        location = f"{self.artifact_root}/{name}" if self.artifact_root else None
        return client.create_experiment(name, artifact_location=location)

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

    def find(self, name: str, version: str) -> RegisteredModel | None:
        """The registered version, or ``None`` where the registry has none by that number."""
        from mlflow.exceptions import MlflowException

        try:
            return self.get(name, version)
        except MlflowException:
            return None

    def tagged(self, name: str, key: str, value: str) -> list[RegisteredModel]:
        """One indexed query of the registry. MLflow's filter grammar has no escape for a quote, so a value
        that is not a plain token (a hash always is) is matched here, over the model's versions, never spliced
        into the filter where it could widen it."""
        plain = re.fullmatch(r"[\w.:-]+", value) is not None
        query = f"name = '{name}'" + (f" and tags.`{key}` = '{value}'" if plain else "")
        found = [v for v in self._client().search_model_versions(query) if v.tags.get(key) == value]
        return sorted((self._registered(v) for v in found), key=lambda v: int(v.version))

    def load(self, name: str, version: str) -> PipelineModel:
        """Load one registered version. The artifact location comes from this client rather than a
        ``models:/`` URI, which MLflow resolves against process-global settings."""
        import mlflow.pyfunc

        location = self._client().get_model_version_download_uri(name, version)
        return mlflow.pyfunc.load_model(location).unwrap_python_model().model

    def metrics(self, name: str, version: str) -> dict[str, float]:
        client = self._client()
        return dict(client.get_run(client.get_model_version(name, version).run_id).data.metrics)

    def params(self, name: str, version: str) -> dict[str, str]:
        client = self._client()
        return dict(client.get_run(client.get_model_version(name, version).run_id).data.params)

    def holdout_inputs(self, name: str, version: str) -> pd.DataFrame | None:
        """The holdout inputs ``evaluation_report`` stored with the version; ``None`` for a version never
        evaluated."""
        import pandas as pd
        from mlflow.exceptions import MlflowException

        client = self._client()
        run_id = client.get_model_version(name, version).run_id
        with tempfile.TemporaryDirectory() as tmp:
            try:
                path = client.download_artifacts(run_id, f"{EVALUATION_FOLDER}/{HOLDOUT_INPUTS}", tmp)
            except (MlflowException, OSError):
                return None
            return pd.read_parquet(path)

    def artifact(self, name: str, version: str, path: str) -> bytes | None:
        """One artifact of the version's run, by its path in the run; ``None`` where the run has none."""
        from mlflow.exceptions import MlflowException

        client = self._client()
        run_id = client.get_model_version(name, version).run_id
        with tempfile.TemporaryDirectory() as tmp:
            try:
                return Path(client.download_artifacts(run_id, path, tmp)).read_bytes()
            except (MlflowException, OSError):
                return None

    def register(
        self,
        spec: PipelineSpec,
        model: PipelineModel,
        example: pd.DataFrame,
        experiment_id: str,
        run: dict[str, Any],
        version_tags: dict[str, str],
    ) -> RegisteredModel:
        """Log ``model`` in a new run of ``experiment_id`` (``run``: its ``tags``, ``params``, ``metrics``,
        ``environment`` and text ``artifacts`` by path), register it as the pipeline's next version with
        ``version_tags``, and point ``challenger`` at it."""
        import mlflow

        from mlops_assets.model.pyfunc import log_pipeline_model

        mlflow.set_tracking_uri(self.uri)
        with mlflow.start_run(experiment_id=experiment_id, tags=run["tags"]) as started:
            mlflow.log_params(run["params"])
            mlflow.log_metrics(run["metrics"])
            mlflow.log_dict(run["environment"], "environment.json")
            for path, text in run.get("artifacts", {}).items():
                mlflow.log_text(text, path)
            info = log_pipeline_model(model, spec, example)
        version = str(info.registered_model_version)
        client = self._client()
        if not client.get_registered_model(spec.name).description:  # the first version's; a person may edit it
            client.update_registered_model(spec.name, description=model_description(spec))
        for key, value in {**version_tags, "run_id": started.info.run_id}.items():
            client.set_model_version_tag(spec.name, version, key, value)
        client.set_registered_model_alias(spec.name, CHALLENGER, version)
        return RegisteredModel(spec.name, version, started.info.run_id, version_tags)

    def promote(self, name: str, version: str, approved_by: str, rollback: bool = False) -> RegisteredModel | None:
        client = self._client()
        previous = self.by_alias(name, CHAMPION)
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
        client.set_registered_model_alias(name, CHAMPION, version)
        return previous

    def withdraw(self, name: str, alias: str) -> None:
        self._client().delete_registered_model_alias(name, alias)

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

    def describe(self, name: str, version: str, card: str) -> None:
        self._client().update_model_version(name, version, description=fitted_description(card))

    def log_artifacts(self, run_id: str, files: dict[str, bytes], folder: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            for filename, data in files.items():
                (Path(tmp) / filename).write_bytes(data)
            self._client().log_artifacts(run_id, tmp, folder)
