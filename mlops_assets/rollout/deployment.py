"""What ``deployed_endpoint`` decides and does: promote the gated challenger, roll it out, or roll back;
make the endpoint serve the result; keep the decision and every move of ``champion`` in the audit trail.

A refused challenger is a decision, not a failure: the champion is kept (``ChampionKept``), the run succeeds
and the trail says why. A promotion is a compare-and-set: the challenger becomes champion only while the
champion is still the version the gate judged it against, so of two runs that judged against one champion
one promotes and the other is dropped (to be judged again against the new champion). A failed run leaves
the champion where it was, and a version the endpoint refuses to load moves ``champion`` back to the version
that was serving. Where the spec requires approval (``deployment.requires_approval``), a challenger no person
approved is not promoted: the run says so (``AwaitingApproval``) and nothing moves.
"""

from __future__ import annotations

import getpass
import json
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from mlops_assets.contracts import ArtifactStore, EndpointDeployer, ModelRegistry
from mlops_assets.data.locations import log_prefix
from mlops_assets.governance.alias_history import (
    PROMOTE,
    RESTORE,
    ROLLBACK,
    WITHDRAW,
    AliasMove,
    AliasMoved,
    RollbackError,
    read_alias_moves,
    record_alias_move,
    rollback_target,
    rolled_back,
)
from mlops_assets.governance.audit import append_event, is_keyed, read_trail, record_decision
from mlops_assets.governance.audit_key import load_keys
from mlops_assets.naming import CHAMPION, AlertEvent, DecisionAction, Strategy, TrailEvent
from mlops_assets.records import EvaluationReport, RegisteredModel
from mlops_assets.rollout.driver import ArmReader, roll_out


@dataclass(frozen=True)
class DeploymentDecision:
    action: DecisionAction  # any but awaiting_approval, champion_kept and the supervisor's restarts
    version: RegisteredModel  # the champion afterwards
    previous: RegisteredModel | None  # the champion it replaced, if that changed
    approved_by: str
    url: str
    serving_path: str | None  # how the endpoint scores single rows, and why (None: it serves no model)
    audit_key: str
    reasons: list[str] = field(default_factory=list)
    arms: dict[str, Any] | None = None  # the figures of the rollout this run decided or started
    ended: dict[str, Any] | None = None  # the figures of a shadow or ab rollout this run ended
    approval: dict[str, Any] | None = None  # the approval record it promoted on: who, when, why


@dataclass(frozen=True)
class AwaitingApproval:
    """A gated challenger that waits for a person's approval: nothing moved, the champion serves on."""

    version: str  # the challenger
    champion: str | None
    strategy: str
    reason: str
    audit_key: str


@dataclass(frozen=True)
class ChampionKept:
    """A challenger not promoted, by the gate or because the champion moved since the gate judged it: the
    loop's decision, not a failure. The champion (if any) serves on."""

    version: str  # the challenger
    champion: str | None
    reasons: list[str]
    audit_key: str

    @property
    def outcome(self) -> str:
        """One line for the run's tags and the portfolio."""
        kept = f"champion v{self.champion} kept" if self.champion else "no champion"
        return f"{kept}, v{self.version} not promoted"


@dataclass
class DeploymentRun:
    """One materialization of ``deployed_endpoint``: the resources it acts through and what it evaluated."""

    spec: Any
    spec_path: str
    store: ArtifactStore
    registry: ModelRegistry
    deployer: EndpointDeployer
    report: EvaluationReport
    read_arms: ArmReader  # per-version figures logged between two times
    log: Any
    run_id: str
    approval: dict[str, Any] | None = None  # the approval this run promotes on, once found

    def carry_out(
        self, rollback: bool, strategy: str, approver: str | None
    ) -> DeploymentDecision | AwaitingApproval | ChampionKept:
        """Roll back, or promote the gated challenger by ``strategy``; a running shadow or ab rollout ends
        either way, its figures kept. A challenger that is already champion is served again, not promoted:
        a re-run restarts a stopped endpoint and moves no alias.

        ``approver`` (the run's ``approved_by``) is a person's approval; so is an ``approval`` record of the
        challenger in the trail (``mlops-assets approve``) that no move of ``champion`` to or from that version
        has used up since. Where the spec requires one for ``strategy`` and there is none, nothing moves."""
        if rollback:
            return self._roll_back(approver or f"rollback by {getpass.getuser()}")
        reasons, ended = self._end_running_rollout()
        challenger = self.report.model
        if not self.report.gate_passed:
            return self._keep(["the gate refused it", *self.report.gate_reasons])
        try:
            return self._promote(strategy, approver, reasons, ended)
        except AliasMoved as moved:
            now = self.registry.by_alias(self.spec.name, CHAMPION)
            serving = now.version if now else None
            return self._keep(
                [
                    f"the gate judged v{challenger.version} against champion "
                    f"{_named(self.report.champion_version)}, and {moved}; it is dropped, not promoted: materialize "
                    f"{self.spec.name}/evaluation_report again to judge it against {_named(serving)}"
                ]
            )

    def _promote(
        self, strategy: str, approver: str | None, reasons: list[str], ended: dict | None
    ) -> DeploymentDecision | AwaitingApproval:
        """Promote the gated challenger by ``strategy``, or serve the champion again when it already is one."""
        name, challenger = self.spec.name, self.report.model
        required = self.spec.deployment.approval_required(strategy)
        self.approval = self._approval(challenger.version, approver, required)
        if self.approval is not None:
            approver = self.approval["approved_by"]
            reasons.append(
                f"approved by {approver} at {self.approval['time']}: {self.approval.get('reason') or 'no reason given'}"
            )
        approved_by = approver or f"gate:auto (run started by {getpass.getuser()})"
        champion = self.registry.by_alias(name, CHAMPION)
        undone = None if approver else rolled_back(read_alias_moves(self.store, name, CHAMPION), challenger.version)
        if champion is not None and (champion.version == challenger.version or undone is not None):
            if undone is not None:
                reasons.append(
                    f"v{challenger.version} was rolled back by {undone.by} at {undone.time}: it is promoted again "
                    "only with an explicit approval (approved_by); the champion is served again"
                )
            return self._serve(DecisionAction.redeploy, champion, None, approved_by, reasons, ended)
        if required and approver is None:
            return self._await_approval(champion, strategy)
        if self.approval is not None:  # who, when and why travel with the version
            tags = {"approved_at": self.approval["time"], "approval_reason": self.approval.get("reason") or ""}
            self.registry.record(name, challenger.version, tags, {})
        judged = self.report.champion_version
        if strategy == Strategy.replace or champion is None:
            previous = self._move_champion(challenger.version, approved_by, PROMOTE, judged)
            version = self.registry.get(name, challenger.version)
            return self._serve(DecisionAction.replace, version, previous, approved_by, reasons, ended)
        self.deployer.deploy(self.spec_path, champion, self.store.uri(log_prefix(name)))  # serves meanwhile
        outcome = roll_out(
            self.spec,
            self.registry,
            self.deployer,
            champion,
            self.registry.get(name, challenger.version),
            approved_by,
            self.log,
            self.read_arms,
            strategy,
            promote=lambda version, by: self._move_champion(version, by, PROMOTE, judged),
        )
        previous = champion if outcome.served_version != champion.version else None
        if outcome.action == DecisionAction.rolled_back:
            why = "; ".join(outcome.reasons)
            self._alert_rollback(f"canary of v{challenger.version} rolled back, v{champion.version} serves: {why}")
        return self._record(
            outcome.action,
            self.registry.get(name, outcome.served_version),
            previous,
            approved_by,
            reasons + outcome.reasons,
            arms_record(outcome.arms, outcome.metrics),
            ended,
        )

    def _approval(self, version: str, approver: str | None, required: bool) -> dict[str, Any] | None:
        """The approval this run promotes ``version`` on: the newest ``approval`` record of it in the trail that
        holds under the audit key (``audit.is_keyed``: not forged, not from before the key) and that no later
        move of ``champion`` to or from it has used up; else, where approval is required, the run's own
        ``approver``, recorded in the trail first so that every approval is there.

        The move that uses an approval up is a compare-and-set (``_move_champion``): of two runs that found one
        approval, one moves ``champion`` on it and the other keeps the champion."""
        if approver is None or required:
            trail, keys = read_trail(self.store, self.spec.name), load_keys()
            for record in reversed(trail):
                moved = record["kind"] == TrailEvent.alias and record.get("alias") == CHAMPION
                if moved and version in (record.get("version"), record.get("previous")):
                    break
                approves = record["kind"] == TrailEvent.approval and record.get("model_version") == version
                if approves and approver in (None, record["approved_by"]):
                    if is_keyed(record, keys):
                        return approval_summary(record)
                    self.log.warning(
                        f"approval record {record.get('seq')} of {self.spec.name} v{version} by "
                        f"{record.get('approved_by')} does not hold under the audit key: not honoured "
                        f"(`mlops-assets audit verify {self.spec.name}` says why)"
                    )
        if approver is None or not required:
            return None
        reason = f"approved_by given with Dagster run {self.run_id} (run config or the mlops/approved_by tag)"
        record = {"model_version": version, "approved_by": approver, "reason": reason, "dagster_run_id": self.run_id}
        key = append_event(self.store, self.spec.name, TrailEvent.approval, record)
        return approval_summary(json.loads(self.store.read_bytes(key)))

    def _keep(self, reasons: list[str]) -> ChampionKept:
        """Record that the challenger is not promoted and the champion serves on: a decision of the loop."""
        name, version = self.spec.name, self.report.model.version
        champion = self.registry.by_alias(name, CHAMPION)
        key = self._record_unmoved(DecisionAction.champion_kept, champion, reasons)
        return ChampionKept(version, champion.version if champion else None, reasons, key)

    def _await_approval(self, champion: RegisteredModel | None, strategy: str) -> AwaitingApproval:
        """Record that the gated challenger waits for a person, and say how to approve it; nothing moves."""
        name, version = self.spec.name, self.report.model.version
        serving = f"champion v{champion.version} serves on" if champion else "there is no champion yet"
        reason = (
            f"v{version} passed the gate, and deployment.requires_approval asks a person to approve its {strategy} "
            f"promotion: none has. Approve it with `mlops-assets approve {name} --version {version} --by NAME "
            f"--reason TEXT`, then materialize {name}/deployed_endpoint again (or run it with approved_by); "
            f"{serving}"
        )
        key = self._record_unmoved(DecisionAction.awaiting_approval, champion, [reason], strategy=strategy)
        return AwaitingApproval(version, champion.version if champion else None, strategy, reason, key)

    def _record_unmoved(
        self, action: DecisionAction, champion: RegisteredModel | None, reasons: list[str], **extra
    ) -> str:
        """A decision that moved nothing (the champion kept, or waiting for approval) in the trail; its key."""
        decision = {
            "action": action,
            "model_version": champion.version if champion else None,
            "previous_version": None,
            "challenger_version": self.report.model.version,
            "approved_by": None,
            "reasons": reasons,
            "dagster_run_id": self.run_id,
            **extra,
        }
        return record_decision(self.store, self.spec.name, decision)

    def _roll_back(self, approved_by: str) -> DeploymentDecision:
        """Back to the last different champion in the alias history; a rollback that cannot happen fails
        before anything moves."""
        name = self.spec.name
        current = self.registry.by_alias(name, CHAMPION)
        if current is None:
            raise dg.Failure(f"{name} has no champion to roll back")
        try:
            target = rollback_target(name, read_alias_moves(self.store, name, CHAMPION), current.version)
        except RollbackError as exc:
            raise dg.Failure(str(exc)) from None
        reasons, ended = self._end_running_rollout()
        try:
            self._move_champion(target, approved_by, ROLLBACK, current.version)
        except AliasMoved as moved:
            raise dg.Failure(f"nothing rolled back: {moved}; run the rollback again if it is still wanted") from None
        decision = self._serve(
            DecisionAction.rollback, self.registry.get(name, target), current, approved_by, reasons, ended
        )
        self._alert_rollback(f"champion rolled back from v{current.version} to v{target} by {approved_by}")
        return decision

    def _alert_rollback(self, message: str) -> None:
        from mlops_assets.alerts.delivery import asset_link, send_alerts

        send_alerts(self.spec, AlertEvent.rollback, message, asset_link(self.spec.name, "deployed_endpoint"), self.log)

    def _move_champion(
        self, version: str, approved_by: str, action: str, expected: str | None
    ) -> RegisteredModel | None:
        """Point ``champion`` at ``version`` if it still is ``expected`` (the version the decision read; ``None``:
        no champion), else raise ``AliasMoved``; return the previous champion.

        The move is recorded in the trail first, as a compare-and-set against the champion moves this run read,
        then made in the registry: of two runs that read the same champion, one records its move and the other
        fails before anything moved. A registry that refuses the move gets the trail's champion back."""
        name = self.spec.name
        current = self.registry.by_alias(name, CHAMPION)
        if (current and current.version) != expected:
            raise AliasMoved(f"{CHAMPION} is now {_named(current.version if current else None)}")
        moves = read_alias_moves(self.store, name, CHAMPION)
        last = moves[-1] if moves else None
        if last is not None and last.version != expected and last.previous == expected:
            # recorded, not yet made in the registry: another run's move is under way (a trail that ends
            # elsewhere, not from ``expected``, is one the registry left by a move made outside the framework)
            raise AliasMoved(
                f"run {last.dagster_run_id} is moving {CHAMPION} from {_named(expected)} to v{last.version}"
            )
        move = AliasMove(CHAMPION, version, expected, action, approved_by, self.run_id)
        record_alias_move(self.store, name, move, moves_seen=len(moves))
        try:
            return self.registry.promote(name, version, approved_by, rollback=action != PROMOTE)
        except BaseException:
            if expected is not None:
                undo = AliasMove(CHAMPION, expected, version, RESTORE, f"the registry refused v{version}", self.run_id)
                record_alias_move(self.store, name, undo)
            raise

    def _end_running_rollout(self) -> tuple[list[str], dict | None]:
        """A person ends a shadow or ab rollout by deploying: what it showed, before it ends."""
        if self.deployer.running_url(self.spec.name) is None:
            return [], None
        status = self.deployer.rollout_status(self.spec.name)
        rollout = status.rollout
        if rollout is None:
            return [], None
        arms = self.read_arms(rollout.started, None)
        return [f"ended the {rollout.mode} of v{rollout.challenger_version}"], arms_record(status.arms, arms)

    def _serve(
        self,
        action: DecisionAction,
        version: RegisteredModel,
        previous: RegisteredModel | None,
        approved_by: str,
        reasons: list[str],
        ended: dict | None,
    ) -> DeploymentDecision:
        """Make the endpoint serve ``version``, which ``champion`` already names; move the alias back if the
        endpoint cannot load it."""
        name = self.spec.name
        try:
            self.deployer.deploy(self.spec_path, version, self.store.uri(log_prefix(name)))
        except Exception as exc:
            if previous is not None:
                by = f"restored: v{version.version} did not deploy"
                self._move_champion(previous.version, by, RESTORE, version.version)
            else:  # there was no champion before: there is none after
                self.registry.withdraw(name, CHAMPION)
                by = f"withdrawn: v{version.version} did not deploy"
                record_alias_move(self.store, name, AliasMove(CHAMPION, "", version.version, WITHDRAW, by, self.run_id))
            failed = {"action": f"{action} failed", "model_version": version.version, "reasons": [str(exc)]}
            record_decision(self.store, name, {**failed, "previous_version": previous and previous.version})
            raise
        return self._record(action, version, previous, approved_by, reasons, None, ended)

    def _record(
        self,
        action: DecisionAction,
        version: RegisteredModel,
        previous: RegisteredModel | None,
        approved_by: str,
        reasons: list[str],
        arms: dict | None,
        ended: dict | None,
    ) -> DeploymentDecision:
        url = self.deployer.running_url(self.spec.name) or ""
        serving_path = self.deployer.rollout_status(self.spec.name).fast_path_check
        decision = {
            "action": action,
            "model_version": version.version,
            "previous_version": previous.version if previous else None,
            "challenger_version": None if action == DecisionAction.rollback else self.report.model.version,
            "approved_by": approved_by,
            "reasons": reasons,
            "arms": arms,
            "ended_rollout_arms": ended,
            "dagster_run_id": self.run_id,
            "url": url,
            "serving_path": serving_path,
            "approval": self.approval,
        }
        audit_key = record_decision(self.store, self.spec.name, decision)
        return DeploymentDecision(
            action, version, previous, approved_by, url, serving_path, audit_key, reasons, arms, ended, self.approval
        )


def _named(version: str | None) -> str:
    return f"v{version}" if version else "none"


def approval_summary(record: dict[str, Any]) -> dict[str, Any]:
    """What a deployment keeps of the approval it promoted on: who, when, why, and where it is in the trail."""
    return {k: record.get(k) for k in ("seq", "model_version", "approved_by", "time", "reason")}


def arms_record(counters: dict, arms: list) -> dict:
    """A rollout's figures: the endpoint's counters per arm, and per version what the logs show."""
    from mlops_assets.rollout.arms import arms_table

    return {"counters": counters, "versions": [arm.as_dict() for arm in arms], "table": arms_table(arms)}
