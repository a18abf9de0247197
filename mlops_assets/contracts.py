"""What the assets need from the outside world, as abstract Dagster resources.

``resources/`` implements each contract per environment (a laptop, or Kubernetes with an object store); the assets only
see these types, so the same asset code runs on a laptop and in a cluster.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, Protocol

import dagster as dg

from mlops_assets.records import RegisteredModel

if TYPE_CHECKING:
    import pyarrow as pa

    from mlops_assets.records import EndpointStatus, Rollout, TrainingRequest, TrainingResult


class ArtifactStore(dg.ConfigurableResource, ABC):
    """Immutable data snapshots, reports and inference logs, addressed by ``/``-separated keys."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def write_table(self, key: str, table: pa.Table) -> int:
        """Write parquet; return the bytes written."""

    @abstractmethod
    def read_table(self, key: str) -> pa.Table: ...

    @abstractmethod
    def row_count(self, key: str) -> int:
        """Rows of a parquet file from its footer alone: what a sensor tick can afford."""

    @abstractmethod
    def write_bytes(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    def read_bytes(self, key: str) -> bytes: ...

    @abstractmethod
    def create(self, key: str, data: bytes) -> None:
        """Write ``key`` only if it does not exist, or raise ``FileExistsError``, atomically against any other
        writer: what an append-only record (the audit trail's next number) needs."""

    @abstractmethod
    def open_write(self, key: str) -> AbstractContextManager[BinaryIO]:
        """A file to stream ``key`` into (a large output, batch by batch): the key holds it once the block ends,
        and is left as it was if the block raises."""

    @abstractmethod
    def list(self, prefix: str) -> list[str]:
        """Keys under ``prefix``, sorted."""

    @abstractmethod
    def uri(self, key: str) -> str:
        """Where a process outside Dagster (trainer, endpoint) finds ``key``."""


class ScoringModel(Protocol):
    """What ``ModelRegistry.load`` returns, as its callers use it: ``model.pipeline_model.PipelineModel``, named
    here by its shape, since the class cannot live in the core (its module path is pickled into every version)."""

    task: str
    input_columns: list[str]
    classes: list[Any] | None  # label of each class index, classification only

    def predict(self, columns: Any) -> Any: ...

    def evaluate(self, frame: Any, target: str, metric_names: list[str]) -> dict[str, float]: ...


class ModelRegistry(dg.ConfigurableResource, ABC):
    """Model versions and the ``champion``/``challenger`` aliases."""

    @abstractmethod
    def tracking_uri(self) -> str: ...

    @abstractmethod
    def experiment(self, name: str) -> str:
        """Id of the pipeline's experiment, created on first use."""

    @abstractmethod
    def by_alias(self, name: str, alias: str) -> RegisteredModel | None: ...

    @abstractmethod
    def get(self, name: str, version: str) -> RegisteredModel: ...

    @abstractmethod
    def load(self, name: str, version: str) -> ScoringModel: ...

    @abstractmethod
    def tagged(self, name: str, key: str, value: str) -> list[RegisteredModel]:
        """The pipeline's versions whose tag ``key`` is ``value``, oldest first: a training set's twins."""

    @abstractmethod
    def metrics(self, name: str, version: str) -> dict[str, float]:
        """The metrics of the version's training run: ``train_*`` from training, ``holdout_*`` from evaluation."""

    @abstractmethod
    def promote(self, name: str, version: str, approved_by: str, rollback: bool = False) -> RegisteredModel | None:
        """Point ``champion`` at ``version``, record who approved it; return the previous champion.

        A rollback also marks the replaced version as rolled back, and leaves ``version``'s own record of
        its predecessor alone."""

    @abstractmethod
    def withdraw(self, name: str, alias: str) -> None:
        """Remove ``alias`` from the pipeline's model: a first version the endpoint could not load leaves no
        champion, as there was none before."""

    @abstractmethod
    def fail_unfinished_runs(self, name: str, dagster_run_id: str) -> list[str]:
        """End as FAILED the pipeline's training runs that Dagster run ``dagster_run_id`` started (their
        ``dagster_run_id`` tag) and that are still running: a trainer that died cannot end them. Return their ids."""

    @abstractmethod
    def record(self, name: str, version: str, tags: dict[str, str], run_metrics: dict[str, float]) -> None:
        """Attach tags to the version and metrics to its training run."""

    @abstractmethod
    def log_artifacts(self, run_id: str, files: dict[str, bytes], folder: str) -> None: ...

    @abstractmethod
    def describe(self, name: str, version: str, card: str) -> None:
        """Make the model card (Markdown) the version's description, where MLflow's UI and clients show it; a card
        longer than the registry keeps is cut at a line (``registry.fitted_description``)."""


class Trainer(dg.ConfigurableResource, ABC):
    """Runs ``mlops_assets.model.training`` somewhere (a local subprocess, a GPU pod) through Dagster Pipes."""

    runs_on: ClassVar[str | None] = None  # a Dagster kind (UI badge) for trained_model, where it is not this process

    @abstractmethod
    def train(self, context: dg.AssetExecutionContext, request: TrainingRequest) -> TrainingResult:
        """Return the result the training process reported, read from its message with
        ``TrainingResult.from_message``."""


class EndpointDeployer(dg.ConfigurableResource, ABC):
    """Starts the scoring server for a pipeline, or makes a running one load the new champion. An endpoint keeps
    one address across restarts, so its clients never lose it."""

    runs_on: ClassVar[str | None] = None  # a Dagster kind (UI badge) for deployed_endpoint, where it is not local

    @abstractmethod
    def running_url(self, name: str) -> str | None:
        """The URL of the pipeline's endpoint when one is running."""

    @abstractmethod
    def deploy(self, spec_path: str, model: RegisteredModel, log_uri: str) -> str:
        """Return the endpoint's URL once it answers with ``model``; raise if it does not."""

    @abstractmethod
    def start_rollout(self, name: str, rollout: Rollout) -> EndpointStatus:
        """Make the running endpoint load the challenger (warmed first) and route to it; return its status."""

    @abstractmethod
    def rollout_status(self, name: str) -> EndpointStatus:
        """The served version and how it scores (``fast_path_check``), the running rollout, each arm's counters:
        the endpoint's answer, parsed once with ``EndpointStatus.from_json``."""

    @abstractmethod
    def end_rollout(self, name: str) -> EndpointStatus:
        """Drop the challenger and serve the registry's champion alone; return the final counters."""

    @abstractmethod
    def crashed(self, name: str) -> str | None:
        """The endpoint's address when it was started, not stopped, and nothing listens there; else ``None``.
        Cheap (a state read and a ping): the supervisor asks it every tick."""

    @abstractmethod
    def restart(self, name: str) -> str:
        """Start the crashed endpoint again on its address, serving the champion; return the URL once it
        answers."""
