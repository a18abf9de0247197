"""What ``deployed_endpoint`` decides (``DeploymentRun.carry_out``), over in-memory fakes of the store, the
registry and the endpoint: which version ends up champion and served, and what the audit log and the alias
history keep of it."""

import datetime as dt
import getpass
import logging
from pathlib import Path

import dagster as dg
import pytest

from mlops_assets.governance.alias_history import PROMOTE, RESTORE, ROLLBACK, read_alias_moves
from mlops_assets.governance.audit import append_event, read_decisions, read_trail, verify_trail
from mlops_assets.naming import CHALLENGER, CHAMPION, DecisionAction, TrailEvent
from mlops_assets.records import EvaluationReport, FeatureSet, TrainedModel
from mlops_assets.rollout.deployment import AwaitingApproval, ChampionKept, DeploymentRun
from mlops_assets.spec import load_spec
from tests.unit.fakes import MemoryArtifactStore, MemoryEndpointDeployer, MemoryModelRegistry

REPO = Path(__file__).resolve().parents[3]
SPEC = load_spec(REPO / "pipelines" / "breast_cancer.yaml")
NAME = SPEC.name
SPEC_PATH = "pipelines/breast_cancer.yaml"
FEATURES = FeatureSet("f1", "train", "holdout", None, "data")


def without_labels(strategy: str, **rollout):
    """The spec with ``strategy`` and no labels source: a canary decides on error rates alone."""
    settings = SPEC.deployment.rollout.model_copy(update=rollout)
    deployment = SPEC.deployment.model_copy(update={"strategy": strategy, "rollout": settings})
    source = SPEC.source.model_copy(update={"labels": None})
    return SPEC.model_copy(update={"deployment": deployment, "source": source})


class Pipeline:
    """One pipeline's store, registry and endpoint; ``deploy`` runs ``deployed_endpoint``'s decision."""

    def __init__(self):
        self.store = MemoryArtifactStore()
        self.registry = MemoryModelRegistry()
        self.deployer = MemoryEndpointDeployer.over(self.registry)
        self.arm_reads: list[tuple] = []

    def read_arms(self, since, until):
        self.arm_reads.append((since, until))
        return []

    def train(self) -> str:
        """A new version, registered as training registers it; return its number."""
        return self.registry.register(NAME, tags={"reference_key": "ref"}).version

    def deploy(
        self, version: str | None, strategy="replace", approver=None, rollback=False, gate=True, spec=SPEC, judged=""
    ):
        """``judged``: the champion the gate compared ``version`` with (default: the champion now, as when
        nothing happened between the gate and the deployment)."""
        model = TrainedModel(NAME, version or "0", "run", FEATURES, "test")
        judged = self.champion() if judged == "" else judged
        report = EvaluationReport(model, {}, judged, None, gate, [] if gate else ["roc_auc 0.5 < 0.95"])
        run = DeploymentRun(
            spec, SPEC_PATH, self.store, self.registry, self.deployer, report, self.read_arms, logging, "dagster-run"
        )
        return run.carry_out(rollback=rollback, strategy=strategy, approver=approver)

    def champion(self) -> str | None:
        champion = self.registry.by_alias(NAME, CHAMPION)
        return champion and champion.version

    def served(self) -> str | None:
        return self.deployer.served_version(NAME)

    def moves(self) -> list[tuple[str, str | None, str, str]]:
        return [(m.version, m.previous, m.action, m.by) for m in read_alias_moves(self.store, NAME, CHAMPION)]

    def decisions(self) -> list[dict]:
        return read_decisions(self.store, NAME)


@pytest.fixture
def pipeline() -> Pipeline:
    return Pipeline()


@pytest.mark.parametrize("strategy", ["replace", "canary", "shadow"])
def test_the_first_gated_version_becomes_champion_and_is_served_whatever_the_strategy(pipeline, strategy):
    version = pipeline.train()
    decision = pipeline.deploy(version, strategy=strategy)
    auto = f"gate:auto (run started by {getpass.getuser()})"
    assert (decision.action, decision.version.version, decision.previous, decision.approved_by) == (
        "replace",
        "1",
        None,
        auto,
    )
    assert pipeline.champion() == pipeline.served() == "1"
    assert decision.url == pipeline.deployer.running_url(NAME)
    assert decision.serving_path == "python: v1 (in-memory endpoint)"
    assert pipeline.deployer.deployments == [(SPEC_PATH, "1", "memory://breast_cancer/inference_log")]
    assert pipeline.moves() == [("1", None, PROMOTE, auto)]
    (record,) = pipeline.decisions()
    assert decision.audit_key.endswith(".json") and pipeline.store.exists(decision.audit_key)
    expected = {"action": "replace", "model_version": "1", "previous_version": None, "challenger_version": "1"}
    assert {k: record[k] for k in expected} == expected
    assert (record["approved_by"], record["dagster_run_id"], record["url"]) == (auto, "dagster-run", decision.url)
    assert record["serving_path"] == decision.serving_path and record["pipeline"] == NAME


def test_replace_makes_the_challenger_champion_and_records_the_champion_it_replaced(pipeline):
    pipeline.deploy(pipeline.train())
    decision = pipeline.deploy(pipeline.train(), approver="alice")
    assert (decision.action, decision.version.version, decision.previous.version) == ("replace", "2", "1")
    assert pipeline.champion() == pipeline.served() == "2"
    assert pipeline.registry.get(NAME, "2").tags["previous_champion"] == "1"
    assert pipeline.registry.get(NAME, "2").tags["approved_by"] == "alice"
    assert pipeline.moves()[-1] == ("2", "1", PROMOTE, "alice")
    assert [(d["action"], d["model_version"], d["previous_version"]) for d in pipeline.decisions()] == [
        ("replace", "1", None),
        ("replace", "2", "1"),
    ]


def test_a_version_the_gate_refused_keeps_the_champion_as_a_decision_not_a_failure(pipeline):
    """A refusal used to raise (a red run, the failed-run alert, retried by the run-retry policy)."""
    pipeline.deploy(pipeline.train())
    kept = pipeline.deploy(pipeline.train(), gate=False, approver="alice")
    assert isinstance(kept, ChampionKept) and (kept.version, kept.champion) == ("2", "1")
    assert kept.outcome == "champion v1 kept, v2 not promoted"
    assert kept.reasons == ["the gate refused it", "roc_auc 0.5 < 0.95"]
    assert pipeline.champion() == pipeline.served() == "1"
    assert len(pipeline.moves()) == len(pipeline.deployer.deployments) == 1
    record = pipeline.decisions()[-1]
    assert (record["action"], record["model_version"], record["challenger_version"]) == (
        DecisionAction.champion_kept,
        "1",
        "2",
    )
    assert record["reasons"] == kept.reasons and pipeline.store.exists(kept.audit_key)


def test_a_challenger_judged_against_a_champion_that_has_since_moved_is_dropped(pipeline):
    """Two retrainings judged against v1; the first promoted: the second was never compared with v2."""
    pipeline.deploy(pipeline.train())
    second, third = pipeline.train(), pipeline.train()
    assert pipeline.deploy(second, judged="1").version.version == "2"
    kept = pipeline.deploy(third, judged="1")
    assert isinstance(kept, ChampionKept) and pipeline.champion() == pipeline.served() == "2"
    assert "the gate judged v3 against champion v1" in kept.reasons[0] and "champion is now v2" in kept.reasons[0]
    assert "materialize breast_cancer/evaluation_report again to judge it against v2" in kept.reasons[0]
    assert [(m[0], m[1]) for m in pipeline.moves()] == [("1", None), ("2", "1")]


def test_of_two_runs_promoting_from_one_champion_at_once_one_moves_it(pipeline, monkeypatch):
    """The second run decides between the first's record of its move and the first's move in the registry:
    the registry still names v1, the trail does not."""
    pipeline.deploy(pipeline.train())
    first, second = pipeline.train(), pipeline.train()
    promote, outcomes = pipeline.registry.promote, []

    def promote_after_the_other_run(name, version, approved_by, rollback=False):
        if not outcomes:
            outcomes.append(pipeline.deploy(second, judged="1"))
        return promote(name, version, approved_by, rollback)

    monkeypatch.setattr(type(pipeline.registry), "promote", lambda self, *a, **k: promote_after_the_other_run(*a, **k))
    promoted = pipeline.deploy(first, judged="1")
    assert promoted.version.version == first and pipeline.champion() == first
    (other,) = outcomes
    assert isinstance(other, ChampionKept) and "is moving champion from v1 to v2" in other.reasons[0]
    assert [(m[0], m[1], m[2]) for m in pipeline.moves()] == [("1", None, PROMOTE), ("2", "1", PROMOTE)]
    assert verify_trail(pipeline.store, NAME).ok


def test_a_challenger_already_champion_is_served_again_and_moves_no_alias(pipeline):
    version = pipeline.train()
    pipeline.deploy(version)
    pipeline.deployer.stop(NAME)
    assert pipeline.deployer.running_url(NAME) is None
    decision = pipeline.deploy(version)
    assert (decision.action, decision.version.version, decision.previous) == ("redeploy", "1", None)
    assert pipeline.served() == "1" and len(pipeline.moves()) == 1
    assert [d["action"] for d in pipeline.decisions()] == ["replace", "redeploy"]


def test_rollback_returns_to_the_last_different_champion_and_a_second_one_goes_further_back(pipeline):
    for _ in range(3):
        pipeline.deploy(pipeline.train())
    pipeline.deploy("3")  # a re-run: no new champion to return to
    first = pipeline.deploy(None, rollback=True)
    assert (first.action, first.version.version, first.previous.version) == ("rollback", "2", "3")
    assert first.approved_by == f"rollback by {getpass.getuser()}"
    assert pipeline.champion() == pipeline.served() == "2"
    assert pipeline.registry.get(NAME, "3").tags["rolled_back_by"] == first.approved_by
    assert pipeline.registry.get(NAME, "2").tags["previous_champion"] == "1"  # its own predecessor kept
    second = pipeline.deploy(None, rollback=True, approver="bob")
    assert (second.version.version, second.previous.version, second.approved_by) == ("1", "2", "bob")
    assert pipeline.champion() == pipeline.served() == "1"
    assert pipeline.moves()[-2:] == [("2", "3", ROLLBACK, first.approved_by), ("1", "2", ROLLBACK, "bob")]
    last = pipeline.decisions()[-1]
    assert (last["action"], last["model_version"], last["previous_version"]) == ("rollback", "1", "2")
    assert last["challenger_version"] is None


def test_a_rollback_with_no_earlier_champion_fails_before_anything_moves(pipeline):
    with pytest.raises(dg.Failure, match="breast_cancer has no champion to roll back"):
        pipeline.deploy(None, rollback=True)
    pipeline.deploy(pipeline.train())
    with pytest.raises(dg.Failure, match="v1 is the first champion in its alias history"):
        pipeline.deploy(None, rollback=True)
    assert pipeline.champion() == pipeline.served() == "1"
    assert len(pipeline.moves()) == len(pipeline.decisions()) == 1


def test_a_version_rolled_back_by_a_person_is_promoted_again_only_with_an_explicit_approval(pipeline):
    pipeline.deploy(pipeline.train())
    pipeline.deploy(pipeline.train())
    pipeline.deploy(None, rollback=True, approver="bob")
    again = pipeline.deploy("2")  # the same report, deployed again by the gate alone
    assert (again.action, again.version.version, pipeline.champion(), pipeline.served()) == ("redeploy", "1", "1", "1")
    assert again.reasons[0].startswith("v2 was rolled back by bob at ")
    approved = pipeline.deploy("2", approver="carol")
    assert (approved.action, approved.version.version, approved.previous.version) == ("replace", "2", "1")
    assert pipeline.champion() == pipeline.served() == "2"


def test_a_version_the_endpoint_cannot_load_puts_the_serving_champion_back_and_is_audited(pipeline):
    pipeline.deploy(pipeline.train())
    broken = pipeline.train()
    pipeline.deployer.refuse(broken, "the pickle does not load")
    with pytest.raises(dg.Failure, match="refused the reload: the pickle does not load"):
        pipeline.deploy(broken, approver="alice")
    assert pipeline.champion() == pipeline.served() == "1"
    assert pipeline.moves()[-2:] == [("2", "1", PROMOTE, "alice"), ("1", "2", RESTORE, "restored: v2 did not deploy")]
    failed = pipeline.decisions()[-1]
    assert (failed["action"], failed["model_version"], failed["previous_version"]) == ("replace failed", "2", "1")
    assert "the pickle does not load" in failed["reasons"][0]
    assert pipeline.registry.get(NAME, "2").tags["rolled_back_by"] == "restored: v2 did not deploy"
    with pytest.raises(dg.Failure, match="no earlier champion"):  # v2 never served: nothing to return to
        pipeline.deploy(None, rollback=True)


def test_a_rollback_to_a_version_the_endpoint_cannot_load_leaves_the_current_champion(pipeline):
    pipeline.deploy(pipeline.train())
    pipeline.deploy(pipeline.train())
    pipeline.deployer.refuse("1")
    with pytest.raises(dg.Failure, match="refused the reload"):
        pipeline.deploy(None, rollback=True, approver="bob")
    assert pipeline.champion() == pipeline.served() == "2"
    assert pipeline.moves()[-2:] == [("1", "2", ROLLBACK, "bob"), ("2", "1", RESTORE, "restored: v1 did not deploy")]
    assert pipeline.decisions()[-1]["action"] == "rollback failed"


def test_a_first_version_the_endpoint_cannot_load_leaves_no_champion(pipeline):
    broken = pipeline.train()
    pipeline.deployer.refuse(broken)
    with pytest.raises(dg.Failure, match="refused the reload"):
        pipeline.deploy(broken)
    assert pipeline.decisions()[-1]["action"] == "replace failed"
    assert pipeline.champion() is None


def traffic(challenger_errors: int = 0):
    """Each read of the endpoint's status finds 30 more requests answered by the challenger, 270 by the
    champion."""

    def arrive(deployer: MemoryEndpointDeployer) -> None:
        deployer.answer(NAME, CHALLENGER, 30, errors=challenger_errors)
        deployer.answer(NAME, CHAMPION, 270)

    return arrive


def test_a_canary_that_answers_well_promotes_the_challenger_and_records_the_move_and_the_arms(pipeline):
    pipeline.deploy(pipeline.train())
    challenger = pipeline.train()
    pipeline.deployer.on_status(traffic())
    spec = without_labels("canary", min_requests=20, max_error_rate_increase=0.0)
    decision = pipeline.deploy(challenger, strategy="canary", approver="alice", spec=spec)
    assert (decision.action, decision.version.version, decision.previous.version) == ("promoted", "2", "1")
    assert pipeline.champion() == pipeline.served() == "2"
    assert pipeline.deployer.rollout_status(NAME).rollout is None
    assert pipeline.registry.get(NAME, "2").tags["approved_by"] == "canary (alice)"
    assert pipeline.moves()[-1] == ("2", "1", PROMOTE, "canary (alice)")  # as the registry records it
    assert decision.arms["counters"][CHALLENGER]["requests"] == 30 and decision.arms["versions"] == []
    record = pipeline.decisions()[-1]
    assert (record["action"], record["model_version"], record["previous_version"]) == ("promoted", "2", "1")
    assert record["arms"]["counters"] == decision.arms["counters"]
    assert record["reasons"][0].startswith("ok: error rate 0.0000 vs champion 0.0000")


def test_a_canary_that_fails_more_often_leaves_the_champion_and_moves_no_alias(pipeline):
    pipeline.deploy(pipeline.train())
    challenger = pipeline.train()
    pipeline.deployer.on_status(traffic(challenger_errors=3))
    spec = without_labels("canary", min_requests=20, max_error_rate_increase=0.05)
    decision = pipeline.deploy(challenger, strategy="canary", spec=spec)
    assert (decision.action, decision.version.version, decision.previous) == ("rolled back", "1", None)
    assert pipeline.champion() == pipeline.served() == "1"
    assert len(pipeline.moves()) == 1
    assert decision.reasons[0].startswith("FAIL: error rate 0.1000 vs champion 0.0000")
    assert pipeline.registry.get(NAME, "2").tags["canary"] == "rolled back"


def test_a_shadow_is_started_for_a_person_and_ended_with_its_figures_by_the_next_deployment(pipeline):
    pipeline.deploy(pipeline.train())
    started = pipeline.deploy(pipeline.train(), strategy="shadow", spec=without_labels("shadow"))
    assert (started.action, started.version.version, started.previous) == ("shadow started", "1", None)
    assert pipeline.champion() == pipeline.served() == "1"
    rollout = pipeline.deployer.rollout_status(NAME).rollout
    assert (rollout.mode, rollout.challenger_version) == ("shadow", "2")
    assert pipeline.registry.get(NAME, "2").tags["rollout"] == "shadow against v1"
    pipeline.deployer.answer(NAME, CHAMPION, 40)
    pipeline.deployer.answer(NAME, CHALLENGER, 0, rows=400)
    decided = pipeline.deploy("2", approver="alice")  # a person promotes the shadowed version
    assert (decided.action, decided.version.version, decided.previous.version) == ("replace", "2", "1")
    assert decided.reasons == ["ended the shadow of v2"]
    assert (
        decided.ended["counters"][CHALLENGER]["rows"] == 400 and decided.ended["counters"][CHAMPION]["requests"] == 40
    )
    assert pipeline.arm_reads[-1] == (dt.datetime.fromisoformat(rollout.started_at), None)  # all it logged
    assert pipeline.deployer.rollout_status(NAME).rollout is None and pipeline.served() == "2"
    assert pipeline.decisions()[-1]["ended_rollout_arms"]["counters"] == decided.ended["counters"]


def test_a_strategy_given_for_the_run_overrides_the_one_of_the_spec(pipeline):
    pipeline.deploy(pipeline.train())
    started = pipeline.deploy(pipeline.train(), strategy="shadow")  # the spec says replace
    assert (started.action, pipeline.deployer.rollout_status(NAME).rollout.mode) == ("shadow started", "shadow")


def requiring_approval(required=True):
    return SPEC.model_copy(update={"deployment": SPEC.deployment.model_copy(update={"requires_approval": required})})


def approve(pipeline: Pipeline, version: str, by: str = "alice", reason: str = "reviewed the model card") -> None:
    record = {"model_version": version, "approved_by": by, "reason": reason}
    append_event(pipeline.store, NAME, TrailEvent.approval, record)


def test_a_challenger_no_person_approved_is_not_promoted_where_the_spec_requires_approval(pipeline):
    spec = requiring_approval()
    pipeline.deploy(pipeline.train())
    waiting = pipeline.deploy(pipeline.train(), spec=spec)
    assert isinstance(waiting, AwaitingApproval) and (waiting.version, waiting.champion) == ("2", "1")
    assert f"mlops-assets approve {NAME} --version 2 --by NAME --reason TEXT" in waiting.reason
    assert pipeline.champion() == pipeline.served() == "1" and len(pipeline.deployer.deployments) == 1
    record = pipeline.decisions()[-1]
    assert (record["action"], record["model_version"], record["challenger_version"]) == ("awaiting approval", "1", "2")
    approve(pipeline, "2")
    decision = pipeline.deploy("2", spec=spec)
    assert (decision.action, decision.version.version, decision.approved_by) == ("replace", "2", "alice")
    assert pipeline.champion() == pipeline.served() == "2"
    tags = pipeline.registry.get(NAME, "2").tags
    assert (tags["approved_by"], tags["approval_reason"]) == ("alice", "reviewed the model card")
    assert tags["approved_at"] == decision.approval["time"]
    assert pipeline.decisions()[-1]["approval"]["approved_by"] == "alice"
    assert decision.reasons[0].startswith("approved by alice at ")


def test_an_approval_is_used_up_by_the_promotion_it_allowed_and_a_rollback(pipeline):
    spec = requiring_approval(["replace"])
    approve(pipeline, "1")
    pipeline.deploy(pipeline.train(), spec=spec)
    approve(pipeline, "2")
    pipeline.deploy(pipeline.train(), spec=spec)
    pipeline.deploy(None, rollback=True, approver="bob")
    again = pipeline.deploy("2", spec=spec)  # the approval came before the rollback: it no longer counts
    assert (again.action, again.approval, pipeline.champion()) == ("redeploy", None, "1")
    approve(pipeline, "2", by="carol")
    approved = pipeline.deploy("2", spec=spec)
    assert (approved.action, approved.approved_by, pipeline.champion()) == ("replace", "carol", "2")
    pipeline.train()
    assert not isinstance(pipeline.deploy("3", spec=spec, strategy="shadow"), AwaitingApproval)  # not required


def test_an_approver_given_with_the_run_counts_and_is_recorded_in_the_trail(pipeline):
    decision = pipeline.deploy(pipeline.train(), spec=requiring_approval(), approver="carol")
    assert (decision.action, decision.approved_by, pipeline.champion()) == ("replace", "carol", "1")
    (approval,) = [r for r in read_trail(pipeline.store, NAME) if r["kind"] == TrailEvent.approval]
    assert approval["approved_by"] == "carol" and "dagster-run" in approval["reason"]
    assert decision.approval["seq"] == approval["seq"]


def test_every_step_of_a_deployment_is_in_a_trail_that_verifies(pipeline):
    pipeline.deploy(pipeline.train())
    pipeline.deploy(pipeline.train(), approver="alice")
    pipeline.deploy(None, rollback=True, approver="bob")
    kinds = [(r["kind"], r.get("action")) for r in read_trail(pipeline.store, NAME)]
    assert kinds == [
        ("alias", PROMOTE),
        ("decision", "replace"),
        ("alias", PROMOTE),
        ("decision", "replace"),
        ("alias", ROLLBACK),
        ("decision", "rollback"),
    ]
    assert verify_trail(pipeline.store, NAME).ok
