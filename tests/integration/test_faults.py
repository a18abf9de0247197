"""Faults for real: an endpoint killed with SIGKILL, a training killed inside its MLflow run, and the CLI's
stop and status on a user's own pipelines folder."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from dagster import AssetKey

from mlops_assets.governance.audit import read_decisions
from mlops_assets.resources.artifact_store import FsspecArtifactStore
from mlops_assets.serving.endpoint_state import crashed_url, read_state, running_url, state_file, write_state
from tests.conftest import QUIET, failures, metadata
from tests.integration.test_endpoint_stop import stand_in
from tests.integration.test_lifecycle import admin, champion, client


def wait_until(condition, what: str):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_crashed_endpoint_comes_back_on_its_address_with_its_own_admin_token(project, monkeypatch):
    from mlops_assets.definitions.folder import build_definitions
    from mlops_assets.local.tick import SensorDriver
    from mlops_assets.resources import local_resources
    from mlops_assets.sensors import build_sensors

    monkeypatch.delenv("MLOPS_ADMIN_TOKEN", raising=False)  # the default: no token configured
    first = project.materialize("breast_cancer")
    assert first.success, failures(first)
    url = metadata(first, "breast_cancer", "deployed_endpoint")["url"]
    path = state_file(project.layout.endpoints, "breast_cancer")
    assert path.stat().st_mode & 0o777 == 0o600  # the token inside is its owner's alone
    state = read_state(project.layout.endpoints, "breast_cancer")
    assert len(state["admin_token"]) >= 32
    anonymous = urllib.request.Request(f"{url}/admin/reload", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(anonymous)
    assert refused.value.code == 401
    assert admin(project, url, "/admin/reload", {})["model_version"] == "1"

    resources = local_resources(project.layout)
    defs = build_definitions(project.pipelines, resources, build_sensors)
    driver = SensorDriver(defs, project.instance, resources.by_key())
    supervise = "breast_cancer_endpoint_supervisor"
    assert driver.tick(supervise).skip_message == "the endpoint answers, or is not meant to run"

    os.kill(state["pid"], signal.SIGKILL)
    wait_until(lambda: crashed_url(project.layout.endpoints, "breast_cancer") == url, "the endpoint to be gone")
    assert driver.tick(supervise).skip_message == f"restarted the endpoint at {url}"
    assert running_url(project.layout.endpoints, "breast_cancer") == url
    with urllib.request.urlopen(f"{url}/version") as response:
        assert json.load(response)["model_version"] == champion(project) == "1"
    restarted = read_state(project.layout.endpoints, "breast_cancer")
    assert restarted["pid"] != state["pid"] and restarted["admin_token"] != state["admin_token"]
    assert admin(project, url, "/admin/status")["model_version"] == "1"
    restart = read_decisions(FsspecArtifactStore(root=str(project.layout.data)), "breast_cancer")[-1]
    assert (restart["action"], restart["model_version"], restart["url"]) == ("restart", "1", url)
    assert restart["approved_by"] == "endpoint supervisor"

    # A person's stop is no crash; the next deployment brings the endpoint back on the same address.
    env = {**os.environ, "MLOPS_PIPELINES": str(project.pipelines)}
    stopped = subprocess.run(
        [sys.executable, "-m", "mlops_assets.cli", "stop", "breast_cancer"], env=env, capture_output=True, text=True
    )
    assert stopped.returncode == 0 and stopped.stdout.strip() == "stopped the breast_cancer endpoint"
    wait_until(lambda: running_url(project.layout.endpoints, "breast_cancer") is None, "the endpoint to stop")
    assert driver.tick(supervise).skip_message == "the endpoint answers, or is not meant to run"
    assert running_url(project.layout.endpoints, "breast_cancer") is None
    redeployed = project.materialize("breast_cancer", "deployed_endpoint")
    assert redeployed.success, failures(redeployed)
    assert metadata(redeployed, "breast_cancer", "deployed_endpoint")["url"] == url


KILLED_IN_ITS_RUN = """
import os, runpy, signal

import mlflow

log_params = mlflow.log_params


def log_params_then_die(*args, **kwargs):
    log_params(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)  # kill -9, while its MLflow run is open


mlflow.log_params = log_params_then_die
runpy.run_module("mlops_assets.model.training", run_name="__main__")
"""


def test_a_killed_training_ends_its_mlflow_run_as_failed_and_leaves_the_champion(project, tmp_path):
    import dagster as dg

    from mlops_assets.definitions.folder import build_definitions
    from mlops_assets.resources import local_resources
    from mlops_assets.resources.trainer import SubprocessTrainer

    first = project.materialize("breast_cancer")
    assert first.success, failures(first)
    script = tmp_path / "killed_in_its_run.py"
    script.write_text(KILLED_IN_ITS_RUN)
    python = tmp_path / "python"  # the trainer's interpreter: the real one, running the training through script
    python.write_text(f"#!/bin/sh\nexec {sys.executable} {script}\n")
    python.chmod(0o755)
    resources = dataclasses.replace(local_resources(project.layout), trainer=SubprocessTrainer(python=str(python)))
    defs = build_definitions(project.pipelines, resources)
    result = dg.materialize(
        [a for a in defs.assets if a.key.path[0] == "breast_cancer"],
        selection=[AssetKey(["breast_cancer", "trained_model"])],
        resources=resources.by_key(),
        instance=project.instance,
        raise_on_error=False,
        run_config=QUIET,
    )
    assert not result.success
    assert next(e for e in result.all_events if e.is_step_failure).step_key == "breast_cancer__trained_model"
    experiment = client(project).get_experiment_by_name("breast_cancer").experiment_id
    runs = client(project).search_runs([experiment], f"tags.dagster_run_id = '{result.run_id}'")
    assert [run.data.params.get("C") for run in runs] == ["0.5"]  # it was killed inside its run
    assert [run.info.status for run in runs] == ["FAILED"]
    assert champion(project) == "1"
    assert len(client(project).search_model_versions("name='breast_cancer'")) == 1


def test_stop_and_status_find_pipelines_by_name_in_mlops_pipelines(layout, pipelines):
    for other in ("diabetes", "wine"):  # the user's folder holds one pipeline: the bundled ones are not looked at
        (pipelines / f"{other}.yaml").unlink()
    env = {**os.environ, "MLOPS_PIPELINES": str(pipelines)}

    def run_cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "mlops_assets.cli", *args], env=env, capture_output=True, text=True
        )

    endpoint = stand_in(120)
    try:
        write_state(state_file(layout.endpoints, "breast_cancer"), {"pid": endpoint.pid, "url": "http://h:1"})
        unknown = run_cli("stop", "no_such_pipeline")
        assert unknown.returncode == 2
        assert "no_such_pipeline" in unknown.stderr and "(pipelines there: breast_cancer)" in unknown.stderr
        status = run_cli("status")
        assert status.returncode == 0, status.stderr[-2000:]
        assert status.stdout.startswith("breast_cancer (binary, target diagnosis)") and "diabetes" not in status.stdout
        stopped = run_cli("stop", "breast_cancer")
        assert stopped.returncode == 0 and stopped.stdout.strip() == "stopped the breast_cancer endpoint"
        assert endpoint.wait(30) == -signal.SIGTERM
        assert read_state(layout.endpoints, "breast_cancer") == {"url": "http://h:1"}  # its address stays
        again = run_cli("stop")
        assert again.returncode == 0 and again.stdout.strip() == "the breast_cancer endpoint was not running"
    finally:
        endpoint.kill()
