"""Issue 19, finding 3, through real materializations, the local MLflow registry and `mlops-assets audit verify` in a
process of its own: an approval forged into the trail fails verify and promotes nothing; a trail cut at its tail or
rewritten whole fails verify against the anchor Dagster's event log keeps (DAGSTER_HOME: the test's instance)."""

from pathlib import Path

import pytest
import yaml

from mlops_assets.governance.audit import digest, trail_key
from mlops_assets.naming import TrailEvent
from mlops_assets.resources.artifact_store import FsspecArtifactStore
from tests.conftest import check, failures, metadata
from tests.integration.test_trail import cli
from tests.unit.governance.test_audit import forge, rehash

pytestmark = pytest.mark.integration
NAME = "breast_cancer"


def test_an_approval_forged_into_the_trail_fails_verify_and_promotes_nothing(project):
    path = project.pipelines / f"{NAME}.yaml"
    raw = yaml.safe_load(path.read_text())
    raw.setdefault("deployment", {})["requires_approval"] = True
    path.write_text(yaml.safe_dump(raw))
    store = FsspecArtifactStore(root=str(project.layout.data))
    waiting = project.materialize(NAME)
    assert waiting.success and not check(waiting, NAME, "deployed_endpoint", "approval").passed, failures(waiting)

    forged = forge(store, NAME, TrailEvent.approval, model_version="1", approved_by="alice", reason="card reviewed")
    verified = cli(project, "audit", "verify", NAME)
    assert verified.returncode == 1, verified.stdout + verified.stderr
    assert forged in verified.stdout and "has no audit key (mac)" in verified.stdout

    deployed = project.materialize(NAME, "deployed_endpoint")
    assert deployed.success, failures(deployed)
    assert not check(deployed, NAME, "deployed_endpoint", "approval").passed
    assert not deployed.asset_materializations_for_node(f"{NAME}__deployed_endpoint")


def test_a_cut_tail_and_a_rewritten_chain_fail_verify_against_the_anchor_dagster_keeps(project):
    store = FsspecArtifactStore(root=str(project.layout.data))
    done = project.materialize(NAME)
    assert done.success, failures(done)
    served = metadata(done, NAME, "deployed_endpoint")
    seq = served["audit_seq"]
    head = trail_key(NAME, seq)
    assert served["audit_hash"] == digest(store.read_bytes(head)) and served["audit_record"] == store.uri(head)
    verified = cli(project, "audit", "verify", NAME)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"anchored: record {seq} is the one the deployed_endpoint materialization of Dagster run" in verified.stdout

    kept = store.read_bytes(head)
    Path(store.uri(head)).unlink()
    cut = cli(project, "audit", "verify", NAME)
    assert cut.returncode == 1 and f"record {seq} is missing" in cut.stdout, cut.stdout + cut.stderr
    assert f"the trail ends at record {seq - 1}: its tail was deleted" in cut.stdout

    store.write_bytes(head, kept)
    unkeyed = {"key_id", "mac"}
    rehash(store, NAME, lambda r: {k: ("alice" if k == "approved_by" else v) for k, v in r.items() if k not in unkeyed})
    rewritten = cli(project, "audit", "verify", NAME)
    assert rewritten.returncode == 1, rewritten.stdout + rewritten.stderr
    assert f"{head}: hashes to " in rewritten.stdout and "the chain up to it was rewritten" in rewritten.stdout
