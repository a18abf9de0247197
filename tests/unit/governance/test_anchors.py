"""The anchors of the audit trail in Dagster's event log: what an outcome of ``deployed_endpoint`` writes, and what
``read_anchors`` reads back from a real (temporary) Dagster instance, materializations written before
``audit_seq`` included."""

import dagster as dg

from mlops_assets.governance.anchors import Anchor, anchor_metadata, read_anchors
from mlops_assets.governance.audit import append_event, digest, verify_trail
from mlops_assets.naming import TrailEvent
from tests.unit.fakes import MemoryArtifactStore

KEY = dg.AssetKey(["p", "deployed_endpoint"])


def test_an_outcome_keeps_where_its_last_record_is_its_number_and_its_hash():
    store = MemoryArtifactStore()
    append_event(store, "p", TrailEvent.gate, {"passed": True})
    key = append_event(store, "p", TrailEvent.decision, {"action": "replace"})
    metadata = anchor_metadata(store, key)
    assert metadata["audit_record"] == dg.MetadataValue.path("memory://p/trail/00000002.json")
    assert (metadata["audit_seq"], metadata["audit_hash"]) == (2, digest(store.read_bytes(key)))


def test_anchors_are_read_from_materializations_and_approval_checks_and_others_are_left_out():
    path = dg.MetadataValue.path
    with dg.instance_for_test() as instance:
        before_audit_seq = {"audit_record": path("/s/p/trail/00000003.json"), "audit_hash": "a" * 64}
        instance.report_runless_asset_event(dg.AssetMaterialization(KEY, metadata=before_audit_seq))
        instance.report_runless_asset_event(dg.AssetMaterialization(KEY, metadata={"model_version": "1"}))
        waiting = {"audit_record": path("/s/p/trail/00000005.json"), "audit_seq": 5, "audit_hash": "b" * 64}
        instance.report_runless_asset_event(
            dg.AssetCheckEvaluation(asset_key=KEY, check_name="approval", passed=False, metadata=waiting)
        )
        anchors = read_anchors(instance, "p")
    assert anchors == [
        Anchor(3, "a" * 64, "", "deployed_endpoint materialization", "/s/p/trail/00000003.json"),
        Anchor(5, "b" * 64, "", "approval check evaluation", "/s/p/trail/00000005.json"),
    ]


def test_a_trail_verifies_against_the_anchors_its_outcomes_wrote():
    store = MemoryArtifactStore()
    key = append_event(store, "p", TrailEvent.decision, {"action": "replace"})
    metadata = anchor_metadata(store, key)
    with dg.instance_for_test() as instance:
        instance.report_runless_asset_event(dg.AssetMaterialization(KEY, metadata=metadata))
        result = verify_trail(store, "p", read_anchors(instance, "p"))
    assert result.ok and result.anchored == 1
