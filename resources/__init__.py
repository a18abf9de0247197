"""Implementations of the framework's contracts, and the one place that picks them per environment."""

from __future__ import annotations

import dagster as dg

from mlops_assets.local.layout import LocalLayout
from resources.artifact_store import LocalArtifactStore
from resources.endpoint import LocalProcessDeployer
from resources.mlflow_registry import MlflowRegistry
from resources.trainer import SubprocessTrainer


def local_resources(layout: LocalLayout) -> dict[str, object]:
    """The embedded default: everything under ``layout.home``, training as a local subprocess."""
    layout.ensure()
    return {
        "store": LocalArtifactStore(root=str(layout.data)),
        "registry": MlflowRegistry(uri=layout.tracking_uri, artifact_root=str(layout.mlflow_artifacts)),
        "trainer": SubprocessTrainer(),
        "deployer": LocalProcessDeployer(state_dir=str(layout.endpoints), tracking_uri=layout.tracking_uri),
        "io_manager": dg.FilesystemIOManager(base_dir=str(layout.dagster_io)),
    }
