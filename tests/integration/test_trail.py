"""The audit trail and approvals through real materializations, the local MLflow registry and the CLI in a
process of its own: a challenger waits for a person, `approve` lets it through, and the trail holds every step."""

import os
import subprocess
import sys

import pytest
import yaml

from mlops_assets.governance.audit import digest, read_trail, trail_key
from mlops_assets.naming import TrailEvent
from mlops_assets.resources.artifact_store import FsspecArtifactStore
from tests.conftest import REPO, check, failures, metadata

pytestmark = pytest.mark.integration


def cli(project, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLOPS_PIPELINES": str(project.pipelines)}
    return subprocess.run(
        [sys.executable, "-m", "mlops_assets.cli", *args], cwd=REPO, env=env, capture_output=True, text=True
    )


def test_a_challenger_waits_for_an_approval_and_the_trail_holds_every_step(project):
    path = project.pipelines / "breast_cancer.yaml"
    raw = yaml.safe_load(path.read_text())
    raw.setdefault("deployment", {})["requires_approval"] = True
    path.write_text(yaml.safe_dump(raw))
    store = FsspecArtifactStore(root=str(project.layout.data))

    waiting = project.materialize("breast_cancer", tags={"mlops/trigger": "label_batch:b1 (test)"})
    assert waiting.success, failures(waiting)  # not a crash: a failed check
    approval = check(waiting, "breast_cancer", "deployed_endpoint", "approval")
    assert not approval.passed
    assert "mlops-assets approve breast_cancer --version 1" in approval.metadata["verdict"].value
    assert not waiting.asset_materializations_for_node("breast_cancer__deployed_endpoint")

    refused = cli(project, "approve", "breast_cancer", "--version", "7", "--by", "alice", "--reason", "x")
    assert refused.returncode == 2 and "has no version 7" in refused.stderr, refused.stderr[-2000:]
    before = len(read_trail(store, "breast_cancer"))
    done = cli(project, "approve", "breast_cancer", "--version", "1", "--by", "alice", "--reason", "card reviewed")
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(read_trail(store, "breast_cancer")) == before + 1

    deployed = project.materialize("breast_cancer", "deployed_endpoint")
    assert deployed.success, failures(deployed)
    assert check(deployed, "breast_cancer", "deployed_endpoint", "approval").passed
    served = metadata(deployed, "breast_cancer", "deployed_endpoint")
    assert (served["action"], served["model_version"], served["approved_by"]) == ("replace", "1", "alice")

    kinds = [record["kind"] for record in read_trail(store, "breast_cancer")]
    assert kinds == [
        TrailEvent.trigger,
        TrailEvent.registration,
        TrailEvent.alias,  # challenger
        TrailEvent.gate,
        TrailEvent.decision,  # awaiting approval
        TrailEvent.approval,
        TrailEvent.alias,  # champion
        TrailEvent.decision,  # replace
    ]
    last = read_trail(store, "breast_cancer")[-1]
    assert served["audit_hash"] == digest(store.read_bytes(trail_key("breast_cancer", 8)))  # a copy outside the store

    history = cli(project, "history", "breast_cancer", "--at", last["time"])
    assert history.returncode == 0, history.stderr[-2000:]
    assert (
        "champion v1" in history.stdout and "approved by alice" in history.stdout and "card reviewed" in history.stdout
    )

    verified = cli(project, "audit", "verify", "breast_cancer")
    assert verified.returncode == 0 and "ok, 8 record(s)" in verified.stdout, verified.stdout + verified.stderr
    gate_key = trail_key("breast_cancer", 4)
    store.write_bytes(gate_key, store.read_bytes(gate_key).replace(b'"passed":true', b'"passed":false'))
    broken = cli(project, "audit", "verify", "breast_cancer")
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "BROKEN after 4 good record(s)" in broken.stdout and "00000005.json" in broken.stdout
