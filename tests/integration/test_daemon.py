"""``dagster dev`` on the embedded default: the webserver serves the asset graph and the daemon ticks the sensors."""

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

from mlops_assets.serving.endpoint_state import stop

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
GRAPH = b'{"query": "{ assetNodes { assetKey { path } dependencyKeys { path } } }"}'
SENSORS = json.dumps(
    {
        "query": "{ repositoriesOrError { ... on RepositoryConnection { nodes { sensors { name sensorState { "
        "ticks { status } } } } } } }"
    }
).encode()


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


def test_dagster_dev_serves_the_code_location_with_its_sensors_on(tmp_path):
    """``make ui``: ``dagster dev -w workspace.yaml`` on the embedded default serves the asset graph, and the
    daemon it starts ticks the pipeline's sensors. The loop the daemon drives (drifted traffic, a drift report,
    a retraining, a new champion) runs in tests/integration/test_production_stack.py, with the daemon, the
    webserver and the code server as separate processes."""
    pipelines = tmp_path / "pipelines"
    shutil.copytree(REPO / "pipelines" / "data" / "breast_cancer", pipelines / "data" / "breast_cancer")
    raw = yaml.safe_load((REPO / "pipelines" / "breast_cancer.yaml").read_text())
    raw["retraining"] = {"cooldown_minutes": 0, "interval_seconds": 5}
    (pipelines / "breast_cancer.yaml").write_text(yaml.safe_dump(raw))
    home, dagster_home = tmp_path / "home", tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, "MLOPS_HOME": str(home), "DAGSTER_HOME": str(dagster_home), "MLOPS_PIPELINES": str(pipelines)}
    port = free_port()
    dev_log_path = tmp_path / "dev.log"
    with open(dev_log_path, "wb") as dev_log:
        dev = subprocess.Popen(
            [str(BIN / "dagster"), "dev", "-w", "workspace.yaml", "-p", str(port)],
            cwd=REPO,
            env=env,
            stdout=dev_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:

            def post(query: bytes):
                try:
                    request = urllib.request.Request(
                        f"http://127.0.0.1:{port}/graphql", query, {"Content-Type": "application/json"}
                    )
                    with urllib.request.urlopen(request, timeout=5) as response:
                        return json.load(response)["data"]
                except (OSError, KeyError, TypeError):
                    return None

            nodes = wait_for(lambda: (post(GRAPH) or {}).get("assetNodes"), 300, "the Dagster webserver", dev_log_path)
            deps = {"/".join(n["assetKey"]["path"]): {"/".join(d["path"]) for d in n["dependencyKeys"]} for n in nodes}
            assert deps["breast_cancer/drift_report"] == {
                "breast_cancer/validated_features",
                "breast_cancer/deployed_endpoint",
            }

            def drift_sensor_ticked():
                nodes = (post(SENSORS) or {}).get("repositoriesOrError", {}).get("nodes", [])
                sensors = [sensor for repository in nodes for sensor in repository["sensors"]]
                ticks = [s["sensorState"]["ticks"] for s in sensors if s["name"] == "breast_cancer_drift_sensor"]
                return ticks and ticks[0]

            wait_for(drift_sensor_ticked, 120, "a tick of the drift sensor by the daemon", dev_log_path)
        finally:
            os.killpg(dev.pid, signal.SIGTERM)
            try:
                dev.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(dev.pid, signal.SIGKILL)
            stop(home / "endpoints", "breast_cancer")
