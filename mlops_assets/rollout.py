"""Canary, shadow and A/B rollouts of a gated challenger, driven from the ``deployed_endpoint`` asset.

A canary is decided here, automatically: the endpoint routes a share of requests to the challenger, this
module polls its counters until the challenger has answered enough requests and, where the spec has
labels, until both arms have enough labelled predictions to compare their online metric (or the time is
up); then it promotes the challenger to ``champion`` or rolls it back, and the endpoint ends the rollout
serving the champion alone.
Shadow and A/B rollouts are started here and left running for a person to decide.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlops_assets.arms import ArmMetrics
from mlops_assets.contracts import EndpointDeployer, ModelRegistry, RegisteredModel
from mlops_assets.routing import ArmStats, CanaryVerdict, OnlineComparison, Rollout, canary_verdict


@dataclass(frozen=True)
class RolloutOutcome:
    action: str  # "promoted", "rolled back", "shadow started" or "ab started"
    served_version: str  # the champion after the rollout
    reasons: list[str] = field(default_factory=list)
    arms: dict[str, Any] = field(default_factory=dict)  # the endpoint's counters per arm
    metrics: list[ArmMetrics] = field(default_factory=list)  # per version, from the logs


ArmReader = Callable[[dt.datetime], list[ArmMetrics]]


def roll_out(
    spec,
    registry: ModelRegistry,
    deployer: EndpointDeployer,
    champion: RegisteredModel,
    challenger: RegisteredModel,
    approved_by: str,
    log,
    read_arms: ArmReader,
    poll_seconds: float = 1.0,
) -> RolloutOutcome:
    """Start the spec's rollout of ``challenger``; a canary is also decided here. ``read_arms`` gives the
    per-version figures logged since a time, with the online metric where labels have arrived."""
    settings = spec.deployment.rollout
    plan = Rollout(spec.deployment.strategy, challenger.version, settings.share, settings.sticky_key or spec.id_column)
    started = deployer.start_rollout(spec.name, plan)
    if plan.mode != "canary":
        registry.record(spec.name, challenger.version, {"rollout": f"{plan.mode} against v{champion.version}"}, {})
        reasons = [f"{plan.mode} of v{challenger.version} against champion v{champion.version} is running"]
        return RolloutOutcome(f"{plan.mode} started", champion.version, reasons, started.get("arms", {}))
    since = dt.datetime.fromisoformat(started["rollout"]["started_at"])
    log.info(f"canary: v{challenger.version} answers {plan.share:.0%} of requests until {settings.min_requests}")
    deadline = time.monotonic() + settings.timeout_minutes * 60
    while True:
        counters = deployer.rollout_status(spec.name)["arms"]
        arms = read_arms(since) if spec.source.labels is not None else []
        online = _online_metrics(arms, champion.version, challenger.version, settings.min_labelled_rows)
        enough = counters["candidate"]["requests"] >= settings.min_requests
        timed_out = time.monotonic() >= deadline
        if (enough and (online is not None or spec.source.labels is None)) or timed_out:
            break
        time.sleep(poll_seconds)
    verdict = canary_verdict(
        ArmStats(**counters["champion"]),
        ArmStats(**counters["candidate"]),
        settings.min_requests,
        settings.max_error_rate_increase,
        online,
        settings.min_gain,
    )
    if verdict is None:
        verdict = CanaryVerdict(
            False, [f"FAIL: fewer than {settings.min_requests} requests in {settings.timeout_minutes} min"]
        )
    elif spec.source.labels is not None and online is None:
        labelled = {a.version: a.labelled_rows for a in arms}
        verdict.reasons.append(
            f"metric not compared: fewer than {settings.min_labelled_rows} labelled rows per arm by the timeout "
            f"(champion {labelled.get(champion.version, 0)}, challenger {labelled.get(challenger.version, 0)})"
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
        "promoted" if verdict.promote else "rolled back",
        served,
        verdict.reasons,
        final.get("arms", {}),
        read_arms(since),
    )


def _online_metrics(arms: list[ArmMetrics], champion: str, challenger: str, min_rows: int) -> OnlineComparison | None:
    """Both arms' online metric once each has ``min_rows`` labelled predictions."""
    by_version = {arm.version: arm for arm in arms if arm.role == "served"}
    first, second = by_version.get(champion), by_version.get(challenger)
    if first is None or second is None or min(first.labelled_rows, second.labelled_rows) < min_rows:
        return None
    return OnlineComparison(first.metric, first.value, second.value, second.low, second.high)
