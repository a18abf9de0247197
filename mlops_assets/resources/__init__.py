"""Implementations of the framework's contracts, and the one place that picks them per environment.

``resources_from_env`` reads the environment (``mlops_assets.environment``): the embedded default keeps
everything under ``MLOPS_HOME``; production keeps the artifact store (and Dagster's step outputs) in an object
store, the registry behind the MLflow tracking server, and trains in pods.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import dagster as dg

from mlops_assets.contracts import ArtifactStore, EndpointDeployer, ModelRegistry, Trainer
from mlops_assets.environment import KUBERNETES, Settings
from mlops_assets.local.layout import LocalLayout
from mlops_assets.resources.artifact_store import FsspecArtifactStore
from mlops_assets.resources.endpoint import LocalProcessDeployer
from mlops_assets.resources.mlflow_registry import MlflowRegistry
from mlops_assets.resources.trainer import SubprocessTrainer

DAGSTER_IO = "dagster_io"  # under the production store's root: the outputs Dagster hands from step to step


@dataclass(frozen=True)
class Resources:
    """The environment's implementation of each contract, each field named by the resource key the assets ask
    for. Code outside Dagster (the CLI, a test, a benchmark) reads a field; Dagster takes ``by_key()``; a test that
    swaps one takes ``dataclasses.replace(resources, trainer=...)``."""

    store: ArtifactStore
    registry: ModelRegistry
    trainer: Trainer
    deployer: EndpointDeployer
    io_manager: dg.ConfigurableIOManagerFactory  # Dagster's step outputs

    def by_key(self) -> dict[str, object]:
        """The resources by key, as ``dg.Definitions(resources=...)`` and ``dg.materialize`` take them."""
        return {field.name: getattr(self, field.name) for field in fields(self)}


def resources_from_env() -> Resources:
    """The resources of the environment this process's variables describe."""
    settings, layout = Settings.from_env(), LocalLayout.from_env()
    return production_resources(settings, layout) if settings.production else local_resources(layout, settings)


def local_resources(layout: LocalLayout, settings: Settings | None = None) -> Resources:
    """The embedded default: everything under ``layout.home``, training as a local subprocess (or in pods,
    with ``MLOPS_TRAINER=kubernetes``)."""
    layout.ensure()
    settings = settings or Settings.from_env({})
    return Resources(
        store=FsspecArtifactStore(root=str(layout.data)),
        registry=MlflowRegistry(uri=layout.tracking_uri, artifact_root=str(layout.mlflow_artifacts)),
        trainer=trainer(settings),
        deployer=deployer(settings, layout),
        io_manager=dg.FilesystemIOManager(base_dir=str(layout.dagster_io)),
    )


def production_resources(settings: Settings, layout: LocalLayout) -> Resources:
    """State that outlives any pod: the artifact store and Dagster's step outputs at ``MLOPS_STORE_URL`` (every
    step pod and training pod reads them there), models through the tracking server, whose artifacts it keeps
    itself (proxied: only the server holds the object store's credentials for them); the endpoints are Deployments
    (``MLOPS_DEPLOYER=local`` runs them as processes beside this one, their state under ``MLOPS_HOME``)."""
    layout.ensure()
    store_url = settings.store_url.rstrip("/")
    return Resources(
        store=FsspecArtifactStore(root=store_url),
        registry=MlflowRegistry(uri=settings.tracking_uri),
        trainer=trainer(settings),
        deployer=deployer(settings, layout),
        io_manager=dg.FilesystemIOManager(base_dir=f"{store_url}/{DAGSTER_IO}"),
    )


def trainer(settings: Settings) -> Trainer:
    if settings.trainer == KUBERNETES:
        from mlops_assets.resources.k8s_trainer import K8sTrainer

        return K8sTrainer(
            image=settings.trainer_image,
            namespace=settings.trainer_namespace,
            env_secrets=list(settings.trainer_env_secrets),
        )
    return SubprocessTrainer()


def deployer(settings: Settings, layout: LocalLayout) -> EndpointDeployer:
    if settings.deployer == KUBERNETES:
        from mlops_assets.resources.k8s_endpoint import KubernetesEndpointDeployer

        return KubernetesEndpointDeployer(namespace=settings.endpoint_namespace)
    return LocalProcessDeployer(
        state_dir=str(layout.endpoints), tracking_uri=settings.tracking_uri or layout.tracking_uri
    )
