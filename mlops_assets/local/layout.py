"""Where the embedded default keeps its state: everything under one folder, ``MLOPS_HOME`` (``.mlops``), which
only its owner may read (``private.py``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mlops_assets.local.private import FILE_MODE, FOLDER_MODE, keep_private, private_folder


@dataclass(frozen=True)
class LocalLayout:
    home: Path

    @classmethod
    def from_env(cls) -> LocalLayout:
        return cls(Path(os.environ.get("MLOPS_HOME", ".mlops")).resolve())

    @property
    def tracking_uri(self) -> str:
        """MLflow tracking and registry; ``MLFLOW_TRACKING_URI`` points elsewhere when set."""
        return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{self.mlflow_db}"

    @property
    def mlflow_db(self) -> Path:
        """The SQLite file of the default tracking URI."""
        return self.home / "mlflow.db"

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
        """Create the folders, 0700, and MLflow's SQLite file, 0600, before MLflow first opens it (SQLite
        gives its journal the file's mode); a home or file made before they were private is made so."""
        for path in (self.home, self.mlflow_artifacts, self.data, self.endpoints):
            private_folder(path)
        keep_private(self.home, FOLDER_MODE)
        if self.tracking_uri == f"sqlite:///{self.mlflow_db}":
            os.close(os.open(self.mlflow_db, os.O_WRONLY | os.O_CREAT, FILE_MODE))
            keep_private(self.mlflow_db, FILE_MODE)
        return self
