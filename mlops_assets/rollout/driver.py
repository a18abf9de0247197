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
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlops_assets.contracts import EndpointDeployer, ModelRegistry
from mlops_assets.errors import MlopsError
from mlops_assets.evaluation.confidence import gain_interval
from mlops_assets.naming import CHALLENGER, CHAMPION, DecisionAction, Strategy
from mlops_assets.records import RegisteredModel, Rollout
from mlops_assets.serving.routing import ArmStats, CanaryVerdict, OnlineComparison, canary_verdict

if TYPE_CHECKING:  # the code location imports this module: pandas and pyarrow stay out of it
    from mlops_assets.rollout.arms import ArmMetrics
    from mlops_assets.spec import PipelineSpec


@dataclass(frozen=True)
class RolloutOutcome:
    action: DecisionAction  # promoted, rolled_back, shadow_started or ab_started
    served_version: str  # the champion after the rollout
    reasons: list[str] = field(default_factory=list)
    arms: dict[str, Any] = field(default_factory=dict)  # the endpoint's counters per arm
    metrics: list[ArmMetrics] = field(default_factory=list)  # per version, from the logs


STARTED = {Strategy.shadow: DecisionAction.shadow_started, Strategy.ab: DecisionAction.ab_started}  # left to a person
ArmReader = Callable[[dt.datetime, dt.datetime | None], list["ArmMetrics"]]
LABEL_POLL_SECONDS = 5.0  # between reads of the logs and labels: each read opens every file since the start


def roll_out(
    spec: PipelineSpec,
    registry: ModelRegistry,
    deployer: EndpointDeployer,
    champion: RegisteredModel,
    challenger: RegisteredModel,
    approved_by: str,
    log,
    read_arms: ArmReader,
    strategy: str,
    poll_seconds: float = 1.0,
    promote: Callable[[str, str], object] | None = None,
) -> RolloutOutcome:
    """Start a rollout of ``challenger`` by ``strategy`` (canary, shadow or ab: the run's, which may override
    the spec's), with the spec's settings; a canary is also decided here. ``read_arms(since, until)``
    gives the per-version figures logged in that time, with the online metric where labels have arrived.

    A canary that cannot finish (an error, the run stopped) is ended before the error goes on: no
    challenger keeps a share of the traffic without a verdict. ``promote(version, by)`` moves ``champion``
    on a canary's verdict (``DeploymentRun`` passes its compare-and-set; default: the registry's own move).
    """
    settings = spec.deployment.rollout
    plan = Rollout(Strategy(strategy), challenger.version, settings.share, settings.sticky_key or spec.id_column)
    started = deployer.start_rollout(spec.name, plan)
    if plan.mode != Strategy.canary:
        registry.record(spec.name, challenger.version, {"rollout": f"{plan.mode} against v{champion.version}"}, {})
        reasons = [f"{plan.mode} of v{challenger.version} against champion v{champion.version} is running"]
        return RolloutOutcome(STARTED[plan.mode], champion.version, reasons, started.arms)
    if started.rollout is None:
        raise MlopsError(f"the endpoint started no rollout of v{challenger.version}: it shows none running")
    since = started.rollout.started
    log.info(f"canary: v{challenger.version} answers {plan.share:.0%} of requests until {settings.min_requests}")
    try:
        verdict = _canary_verdict(spec, deployer, champion, challenger, since, read_arms, poll_seconds)
    except BaseException as exc:
        deployer.end_rollout(spec.name)
        registry.record(spec.name, challenger.version, {"canary": f"ended without a verdict: {exc!r}"[:5000]}, {})
        raise
    try:
        if verdict.promote:
            promoted_by = f"canary ({approved_by})"
            if promote is None:
                registry.promote(spec.name, challenger.version, promoted_by)
            else:
                promote(challenger.version, promoted_by)
        else:
            registry.record(
                spec.name,
                challenger.version,
                {"canary": "rolled back", "canary_reasons": "; ".join(verdict.reasons)},
                {},
            )
    except BaseException:
        deployer.end_rollout(spec.name)  # a verdict the registry did not take: the registry's champion serves alone
        raise
    ended = dt.datetime.now(dt.UTC)
    final = deployer.end_rollout(spec.name)
    served = challenger.version if verdict.promote else champion.version
    try:  # the decision stands without the logs' figures
        figures = read_arms(since, ended)
    except Exception as exc:
        log.warning(f"canary decided, but its figures could not be read from the logs: {exc!r}")
        figures = []
    action = DecisionAction.promoted if verdict.promote else DecisionAction.rolled_back
    return RolloutOutcome(action, served, verdict.reasons, final.arms, figures)


def _canary_verdict(
    spec: PipelineSpec,
    deployer: EndpointDeployer,
    champion: RegisteredModel,
    challenger: RegisteredModel,
    since: dt.datetime,
    read_arms: ArmReader,
    poll_seconds: float,
) -> CanaryVerdict:
    """Poll the endpoint's counters (and, with labels, the logged arms) until a verdict can be given or
    the time is up."""
    settings = spec.deployment.rollout
    deadline = time.monotonic() + settings.timeout_minutes * 60
    arms: list[ArmMetrics] = []
    online, last_read = None, -math.inf
    while True:
        counters = deployer.rollout_status(spec.name).arms
        enough = counters["challenger"]["requests"] >= settings.min_requests
        if enough and spec.source.labels is not None and time.monotonic() - last_read >= LABEL_POLL_SECONDS:
            arms, last_read = read_arms(since, None), time.monotonic()
            online = online_comparison(
                arms, champion.version, challenger.version, settings.min_labelled_rows, spec.online_confidence
            )
        if (enough and (online is not None or spec.source.labels is None)) or time.monotonic() >= deadline:
            break
        time.sleep(poll_seconds)
    verdict = canary_verdict(
        ArmStats(**counters[CHAMPION]),
        ArmStats(**counters[CHALLENGER]),
        settings.min_requests,
        settings.max_error_rate_increase,
        online,
        settings.min_gain,
    )
    if verdict is None:
        return CanaryVerdict(
            False, [f"FAIL: fewer than {settings.min_requests} requests in {settings.timeout_minutes} min"]
        )
    if spec.source.labels is not None and online is None:
        by_version = {a.version: a for a in arms if a.role == "served"}
        figures = ", ".join(
            f"{who} {arm.labelled_rows} rows, {arm.metric} {arm.value:.4f}"
            for who, arm in (
                (CHAMPION, by_version.get(champion.version)),
                (CHALLENGER, by_version.get(challenger.version)),
            )
            if arm is not None
        )
        verdict.reasons.append(
            f"online metric not compared by the timeout: it needs {settings.min_labelled_rows} labelled rows per "
            f"arm and a defined value ({figures or 'no labelled rows'})"
        )
    return verdict


def online_comparison(
    arms: list[ArmMetrics], champion: str, challenger: str, min_rows: int, confidence: float = 0.95
) -> OnlineComparison | None:
    """Both arms' online metric and the challenger's gain, once each arm has ``min_rows`` labelled
    predictions and the metric is defined on both (roc_auc is not, on rows of one class)."""
    by_version = {arm.version: arm for arm in arms if arm.role == "served"}
    first, second = by_version.get(champion), by_version.get(challenger)
    if first is None or second is None or min(first.labelled_rows, second.labelled_rows) < min_rows:
        return None
    if first.labelled is None or second.labelled is None:
        return None
    interval = gain_interval(first.metric, first.labelled, second.labelled, confidence)
    return None if math.isnan(interval[2]) else OnlineComparison(first.metric, first.value, second.value, *interval)
