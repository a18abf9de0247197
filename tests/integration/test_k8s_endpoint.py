"""``KubernetesEndpointDeployer`` in a real materialization, against the fake API server (``fake_kube_api.py``)
holding the endpoint Deployment that deploy/k8s renders: a promotion patches its pod template, the rollout is
carried out by a real endpoint process restarted on the new template (standing in for the controller and the
kubelet), and the deployment asset reads the endpoint back through its "Service". A rollout whose pods never become
ready is undone, and the old endpoint keeps serving."""

import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest
import yaml

from mlops_assets.definitions.folder import build_definitions
from mlops_assets.records import RegisteredModel, Rollout
from mlops_assets.resources import local_resources
from mlops_assets.resources.k8s_endpoint import VERSION_ANNOTATION, KubernetesEndpointDeployer, deployment_name
from mlops_assets.serving.endpoint_state import read_state
from tests.conftest import QUIET, REPO, failures, metadata
from tests.integration.fake_kube_api import STRATEGIC_MERGE_PATCH, FakeKubeApi

NAMESPACE = "mlops"
TOKEN = "admin-token-from-the-secret"


def rendered_endpoint_deployment() -> dict:
    """The endpoint Deployment of deploy/k8s/overlays/dev, as `kubectl apply -k` would send it."""
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(REPO / "deploy/k8s/overlays/dev")], capture_output=True, text=True, check=True
    ).stdout
    (deployment,) = [
        d
        for d in yaml.safe_load_all(rendered)
        if d and d["kind"] == "Deployment" and d["metadata"]["name"] == deployment_name("breast_cancer")
    ]
    return deployment


class EndpointPods:
    """The pods of the Deployment: one real endpoint process on a fixed port, started again on each new template
    (it loads the champion as a new pod does); ``ready=False`` makes new pods fail their readiness probe."""

    def __init__(self, spec: Path, layout, folder: Path, port: int):
        self.spec, self.layout, self.folder, self.port = spec, layout, folder, port
        self.process: subprocess.Popen | None = None
        self.ready = True
        self.templates: list[dict] = []

    def roll(self, template: dict) -> bool:
        self.templates.append(template)
        if not self.ready:
            return False
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)
        state = self.folder / "endpoint.json"
        state.unlink(missing_ok=True)
        command = [
            *(sys.executable, "-m", "mlops_assets.cli", "serve", str(self.spec)),
            *("--host", "127.0.0.1", "--port", str(self.port), "--tracking-uri", self.layout.tracking_uri),
            *("--log-dir", str(self.layout.data / "breast_cancer/inference_log"), "--state-file", str(state)),
        ]
        log = open(self.folder / "endpoint.log", "ab")  # noqa: SIM115 - the process writes it while it runs
        self.process = subprocess.Popen(command, stdout=log, stderr=log, env={**os.environ, "MLOPS_ADMIN_TOKEN": TOKEN})
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and self.process.poll() is None:
            if read_state(self.folder, "endpoint").get("pid") == self.process.pid:
                return True
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serving(port: int) -> str:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/version", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["model_version"]


@pytest.fixture
def pods(pipelines, layout, tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_ADMIN_TOKEN", TOKEN)  # the run's pod has the endpoint's admin token from its Secret
    pods = EndpointPods(pipelines / "breast_cancer.yaml", layout, tmp_path, free_port())
    yield pods
    pods.stop()


def test_a_promotion_rolls_the_deployment_and_a_rollout_that_never_gets_ready_is_undone(
    pipelines, layout, pods, tmp_path
):
    deployment = {**rendered_endpoint_deployment()}
    deployment["metadata"] = {**deployment["metadata"], "namespace": NAMESPACE}
    with FakeKubeApi(workdir=REPO, deployments=[deployment], roll=pods.roll) as api, dg.instance_for_test() as instance:
        deployer = KubernetesEndpointDeployer(
            namespace=NAMESPACE,
            url_template=f"http://127.0.0.1:{pods.port}",
            kubeconfig_file=str(api.kubeconfig(tmp_path / "kubeconfig")),
            poll_interval=0.05,
            rollout_timeout_s=3,
        )
        assert deployer.running_url("breast_cancer") is None  # applied, but no champion to serve yet
        resources = dataclasses.replace(local_resources(layout), deployer=deployer)
        assets = [a for a in build_definitions(pipelines, resources).assets if a.key.path[0] == "breast_cancer"]
        result = dg.materialize(
            assets, resources=resources.by_key(), instance=instance, raise_on_error=False, run_config=QUIET
        )
        assert result.success, failures(result) + "\n".join(api.requests)
        assert not api.rejected

        (content_type, name, patch) = api.patches[0]
        assert (content_type, name) == (STRATEGIC_MERGE_PATCH, deployment_name("breast_cancer"))
        assert patch == {"spec": {"template": {"metadata": {"annotations": {VERSION_ANNOTATION: "1"}}}}}
        assert pods.templates[0]["metadata"]["annotations"][VERSION_ANNOTATION] == "1"
        assert serving(pods.port) == "1"
        assert metadata(result, "breast_cancer", "deployed_endpoint")["url"] == f"http://127.0.0.1:{pods.port}"
        assert deployer.running_url("breast_cancer") == f"http://127.0.0.1:{pods.port}"

        # Version 2's pods never pass their readiness probe: the rollout is undone, version 1 keeps serving.
        pods.ready = False
        with pytest.raises(dg.Failure, match="did not roll to version 2: not complete after 3 s"):
            deployer.deploy(str(pipelines / "breast_cancer.yaml"), RegisteredModel("breast_cancer", "2", "run"), "")
        assert [p[2]["spec"]["template"]["metadata"]["annotations"][VERSION_ANNOTATION] for p in api.patches] == [
            "1",
            "2",
            "1",
        ]
        assert serving(pods.port) == "1"

        with pytest.raises(dg.Failure, match=r"set deployment\.strategy: replace"):
            deployer.start_rollout("breast_cancer", Rollout("canary", "2"))
