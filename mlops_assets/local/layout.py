"""Where the embedded default keeps its state: everything under one folder, ``MLOPS_HOME`` (``.mlops``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LocalLayout:
    home: Path

    @classmethod
    def from_env(cls) -> LocalLayout:
        return cls(Path(os.environ.get("MLOPS_HOME", ".mlops")).resolve())

    @property
    def tracking_uri(self) -> str:
        """MLflow tracking and registry; ``MLFLOW_TRACKING_URI`` points elsewhere when set."""
        return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{self.home / 'mlflow.db'}"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.home / "mlartifacts"

    @property
    def data(self) -> Path:
        """Root of the artifact store: snapshots, reports, inference logs."""
        return self.home / "data"

    @property
    def endpoints(self) -> Path:
        """State files and logs of the local endpoint processes."""
        return self.home / "endpoints"

    @property
    def dagster_io(self) -> Path:
        return self.home / "dagster_io"

    def ensure(self) -> LocalLayout:
        for path in (self.home, self.mlflow_artifacts, self.data, self.endpoints):
            path.mkdir(parents=True, exist_ok=True)
        return self
