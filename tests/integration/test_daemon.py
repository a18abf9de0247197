"""The loop for real under ``dagster dev``: the daemon ticks the sensors and launches the runs."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml
from mlflow import MlflowClient

from mlops_assets.serving.endpoint_state import running_url, stop
from mlops_assets.serving.traffic import replay
from mlops_assets.spec import load_spec

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
GRAPH = b'{"query": "{ assetNodes { assetKey { path } dependencyKeys { path } } }"}'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition, timeout: float, what: str, log: Path):
    """Generous deadlines (a loaded 2-core machine starts a webserver, a daemon and run workers); the
    condition usually holds long before, and a timeout shows the end of ``dagster dev``'s log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(2)
    raise AssertionError(
        f"timed out after {timeout} s waiting for {what}; dagster dev said:\n{log.read_text()[-3000:]}"
    )


def test_drift_retrains_under_the_daemon(tmp_path):
    pipelines = tmp_path / "pipelines"
    shutil.copytree(REPO / "pipelines" / "data" / "breast_cancer", pipelines / "data" / "breast_cancer")
    raw = yaml.safe_load((REPO / "pipelines" / "breast_cancer.yaml").read_text())
    raw["monitoring"]["window"] = 100
    raw["retraining"] = {"cooldown_minutes": 0, "interval_seconds": 5}
    (pipelines / "breast_cancer.yaml").write_text(yaml.safe_dump(raw))
    home, dagster_home = tmp_path / "home", tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, "MLOPS_HOME": str(home), "DAGSTER_HOME": str(dagster_home), "MLOPS_PIPELINES": str(pipelines)}
    uri = f"sqlite:///{home / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    dev = None
    dev_log_path = tmp_path / "dev.log"
    with open(dev_log_path, "wb") as dev_log:
        try:
            deployed = subprocess.run(
                [
                    str(BIN / "dagster"),
                    "asset",
                    "materialize",
                    "-f",
                    "definitions.py",
                    "--select",
                    "group:breast_cancer",
                ],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert deployed.returncode == 0, deployed.stderr[-3000:]
            port = free_port()
            dev = subprocess.Popen(
                [str(BIN / "dagster"), "dev", "-w", "workspace.yaml", "-p", str(port)],
                cwd=REPO,
                env=env,
                stdout=dev_log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

            def graph():
                try:
                    request = urllib.request.Request(
                        f"http://127.0.0.1:{port}/graphql", GRAPH, {"Content-Type": "application/json"}
                    )
                    with urllib.request.urlopen(request, timeout=5) as response:
                        return json.load(response)["data"]["assetNodes"]
                except (OSError, KeyError, TypeError):
                    return None

            nodes = wait_for(graph, 300, "the Dagster webserver", dev_log_path)
            deps = {"/".join(n["assetKey"]["path"]): {"/".join(d["path"]) for d in n["dependencyKeys"]} for n in nodes}
            assert deps["breast_cancer/drift_report"] == {
                "breast_cancer/validated_features",
                "breast_cancer/deployed_endpoint",
            }

            url = running_url(home / "endpoints", "breast_cancer")
            spec = load_spec(pipelines / "breast_cancer.yaml")
            replay(spec, pipelines, url, rows=100, batch=10, seed=7, shifts={"mean_radius": 1.3, "mean_texture": 1.4})

            def retrained():
                versions = client.search_model_versions("name='breast_cancer'")
                return [v for v in versions if v.tags.get("trigger", "").startswith("drift_report:")]

            (version,) = wait_for(retrained, 600, "a model version trained because of drift", dev_log_path)
            assert version.tags["spec_hash"] == spec.spec_hash and version.tags["dataset_hash"]
            wait_for(
                lambda: client.get_model_version("breast_cancer", version.version).tags.get("gate"),
                300,
                "the retrained version's evaluation",
                dev_log_path,
            )
        finally:
            if dev is not None:
                os.killpg(dev.pid, signal.SIGTERM)
                try:
                    dev.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(dev.pid, signal.SIGKILL)
            stop(home / "endpoints", "breast_cancer")
