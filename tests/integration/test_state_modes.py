"""Issue 19: ``.mlops/mlflow.db``, the audit trail and the inference logs were created 0644, and the inference log
holds every request's features. State is created for its owner alone: files 0600, folders 0700, whatever the
umask, by the real layout, registry, artifact store and inference log."""

import os
import stat

import numpy as np

from mlops_assets.data.locations import log_prefix
from mlops_assets.governance.audit import append_event
from mlops_assets.local.layout import LocalLayout
from mlops_assets.model.registry import MlflowRegistryClient
from mlops_assets.naming import TrailEvent
from mlops_assets.resources.artifact_store import FsspecArtifactStore
from mlops_assets.serving.inference_log import DEAD_LETTER, InferenceLogWriter, log_schema


def modes(root) -> dict[str, int]:
    """Permission bits of everything under ``root``, by path relative to it."""
    found = {".": stat.S_IMODE(os.stat(root).st_mode)}
    for folder, folders, files in os.walk(root):
        for name in folders + files:
            path = os.path.join(folder, name)
            found[os.path.relpath(path, root)] = stat.S_IMODE(os.lstat(path).st_mode)
    return found


def test_the_state_is_created_for_its_owner_alone(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    previous = os.umask(0o022)  # the usual umask: what the framework creates must not depend on it
    try:
        layout = LocalLayout.from_env().ensure()
        MlflowRegistryClient(layout.tracking_uri, str(layout.mlflow_artifacts)).experiment("p")  # mlflow.db
        store = FsspecArtifactStore(root=str(layout.data))
        append_event(store, "p", TrailEvent.trigger, {"trained": False})  # the audit trail
        log = InferenceLogWriter(layout.data / log_prefix("p"), log_schema({"x": "float"}, "regression"))
        log.append({"x": np.array([1.0])}, 1, "1", np.array([2.0]), np.array([np.nan]))
        log.append({"x": np.array([1.0, 2.0])}, 1, "1", np.array([2.0]), np.array([np.nan]))  # dead-lettered
        log.close()
    finally:
        os.umask(previous)
    found = modes(layout.home)
    assert found["mlflow.db"] == 0o600
    assert any(path.startswith("data/p/") and path.endswith(".json") for path in found)  # the trail's record
    assert any(path.endswith(".parquet") for path in found) and any(path.endswith(DEAD_LETTER) for path in found)
    ours = {path: mode for path, mode in found.items() if not path.startswith(("mlartifacts/", "mlflow.db-"))}
    assert {path: oct(mode) for path, mode in ours.items() if mode not in (0o600, 0o700)} == {}
    assert found["."] == 0o700  # and so nothing inside is anyone else's, whatever MLflow writes there


def test_a_home_made_before_it_was_private_is_made_private(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    (home / "mlflow.db").touch(mode=0o644)
    monkeypatch.setenv("MLOPS_HOME", str(home))
    LocalLayout.from_env().ensure()
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "mlflow.db").stat().st_mode) == 0o600
