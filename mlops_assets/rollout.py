"""Canary, shadow and A/B rollouts of a gated challenger, driven from the ``deployed_endpoint`` asset.

A canary is decided here, automatically: the endpoint routes a share of requests to the challenger, this
module polls its counters until the challenger has answered enough requests (or the time is up), then
promotes it to ``champion`` or rolls it back, and the endpoint ends the rollout serving the champion alone.
Shadow and A/B rollouts are started here and left running for a person to decide.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from mlops_assets.contracts import EndpointDeployer, ModelRegistry, RegisteredModel
from mlops_assets.routing import ArmStats, CanaryVerdict, Rollout, canary_verdict


@dataclass(frozen=True)
class RolloutOutcome:
    action: str  # "promoted", "rolled back", "shadow started" or "ab started"
    served_version: str  # the champion after the rollout
    reasons: list[str] = field(default_factory=list)
    arms: dict[str, Any] = field(default_factory=dict)


def roll_out(
    spec,
    registry: ModelRegistry,
    deployer: EndpointDeployer,
    champion: RegisteredModel,
    challenger: RegisteredModel,
    approved_by: str,
    log,
    poll_seconds: float = 1.0,
) -> RolloutOutcome:
    settings = spec.deployment.rollout
    plan = Rollout(spec.deployment.strategy, challenger.version, settings.share, settings.sticky_key or spec.id_column)
    deployer.start_rollout(spec.name, plan)
    if plan.mode != "canary":
        registry.record(spec.name, challenger.version, {"rollout": f"{plan.mode} against v{champion.version}"}, {})
        reasons = [f"{plan.mode} of v{challenger.version} against champion v{champion.version} is running"]
        return RolloutOutcome(f"{plan.mode} started", champion.version, reasons)
    log.info(f"canary: v{challenger.version} answers {plan.share:.0%} of requests until {settings.min_requests}")
    deadline = time.monotonic() + settings.timeout_minutes * 60
    verdict: CanaryVerdict | None = None
    while verdict is None and time.monotonic() < deadline:
        arms = deployer.rollout_status(spec.name)["arms"]
        verdict = canary_verdict(
            ArmStats(**arms["champion"]),
            ArmStats(**arms["candidate"]),
            settings.min_requests,
            settings.max_error_rate_increase,
        )
        if verdict is None:
            time.sleep(poll_seconds)
    if verdict is None:
        verdict = CanaryVerdict(
            False, [f"FAIL: fewer than {settings.min_requests} requests in {settings.timeout_minutes} min"]
        )
    if verdict.promote:
        registry.promote(spec.name, challenger.version, f"canary ({approved_by})")
    else:
        registry.record(
            spec.name, challenger.version, {"canary": "rolled back", "canary_reasons": "; ".join(verdict.reasons)}, {}
        )
    final = deployer.end_rollout(spec.name)
    served = challenger.version if verdict.promote else champion.version
    return RolloutOutcome(
        "promoted" if verdict.promote else "rolled back", served, verdict.reasons, final.get("arms", {})
    )
