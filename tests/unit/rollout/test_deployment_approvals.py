"""Which approvals ``deployed_endpoint`` honours (issue 19, findings 3 and 4): only one that holds under the audit
key, and each once: of two runs at once on one approval, one promotes and the other keeps the champion."""

import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from pydantic import PrivateAttr

from mlops_assets.governance.alias_history import PROMOTE, ROLLBACK
from mlops_assets.governance.audit import GENESIS, canonical, trail_key, verify_trail
from mlops_assets.naming import CHAMPION, DecisionAction, TrailEvent
from mlops_assets.resources.artifact_store import FsspecArtifactStore
from mlops_assets.rollout.deployment import AwaitingApproval, ChampionKept, DeploymentDecision
from tests.unit.governance.test_audit import forge
from tests.unit.rollout.test_deployment import NAME, Pipeline, approve, requiring_approval


@pytest.fixture
def pipeline() -> Pipeline:
    return Pipeline()


def test_an_approval_forged_into_the_trail_promotes_nothing(pipeline, caplog):
    spec = requiring_approval()
    pipeline.deploy(pipeline.train(), approver="carol", spec=spec)
    version = pipeline.train()
    forge(pipeline.store, NAME, TrailEvent.approval, model_version=version, approved_by="alice", reason="looks fine")
    with caplog.at_level(logging.WARNING):
        waiting = pipeline.deploy(version, spec=spec)
    assert isinstance(waiting, AwaitingApproval) and pipeline.champion() == pipeline.served() == "1"
    assert f"v{version} by alice does not hold under the audit key: not honoured" in caplog.text
    assert not verify_trail(pipeline.store, NAME).ok


def test_an_approval_written_before_the_audit_key_is_not_honoured(pipeline):
    version = pipeline.train()
    old = {"seq": 1, "prev_hash": GENESIS, "kind": "approval", "time": "2025-01-01T00:00:00.000+00:00"}
    approval = {**old, "pipeline": NAME, "model_version": version, "approved_by": "alice", "reason": "r"}
    pipeline.store.write_bytes(trail_key(NAME, 1), canonical(approval))
    assert isinstance(pipeline.deploy(version, spec=requiring_approval()), AwaitingApproval)
    assert pipeline.champion() is None


class MeetingStore(FsspecArtifactStore):
    """The local store, where the next two records of a champion move wait for each other before either is
    created: two runs that both read the same champion and the same approval."""

    _meeting: threading.Barrier = PrivateAttr(default_factory=lambda: threading.Barrier(2, timeout=30))
    _waiting: int = PrivateAttr(default=0)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def meet_next_two_moves(self) -> None:
        self._waiting = 2

    def create(self, key: str, data: bytes) -> None:
        record = json.loads(data)
        with self._lock:
            meets = record["kind"] == TrailEvent.alias and record["alias"] == CHAMPION and self._waiting > 0
            self._waiting -= meets
        if meets:
            self._meeting.wait()
        super().create(key, data)


def test_two_deployments_at_once_on_one_approval_promote_once(pipeline, tmp_path):
    """Issue 19, finding 4: two runs of deployed_endpoint on one approval both promoted v2 (two promote and two
    replace records). Both runs here read champion v1 and alice's approval before either records its move."""
    pipeline.store = MeetingStore(root=str(tmp_path / "store"))
    spec = requiring_approval()
    pipeline.deploy(pipeline.train(), approver="carol", spec=spec)
    version = pipeline.train()
    approve(pipeline, version)
    pipeline.store.meet_next_two_moves()
    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(lambda _: pipeline.deploy(version, spec=spec, judged="1"), range(2)))
    promoted = [o for o in outcomes if isinstance(o, DeploymentDecision)]
    kept = [o for o in outcomes if isinstance(o, ChampionKept)]
    assert len(promoted) == len(kept) == 1
    assert (promoted[0].action, promoted[0].version.version, promoted[0].approved_by) == ("replace", version, "alice")
    assert f"moved to v{version} (promote by alice) since this run read it" in kept[0].reasons[0]
    assert pipeline.champion() == pipeline.served() == version
    assert pipeline.moves() == [("1", None, PROMOTE, "carol"), (version, "1", PROMOTE, "alice")]
    actions = [(d["action"], d["challenger_version"]) for d in pipeline.decisions()]
    assert sorted(actions[1:]) == [(DecisionAction.champion_kept, version), ("replace", version)]
    assert verify_trail(pipeline.store, NAME).ok
    pipeline.deploy(None, rollback=True, approver="bob")
    again = pipeline.deploy(version, spec=spec)  # the approval was used: nothing promotes on it again
    assert (again.action, again.approval, pipeline.champion()) == ("redeploy", None, "1")
    assert pipeline.moves()[-1] == ("1", version, ROLLBACK, "bob")
