"""When an automatic retraining may start, decided from state every sensor of a pipeline reads alike.

The daemon ticks each sensor on its own and launches what a tick asks for before the next tick sees the
result, so no rule may rest on the order of a round. The state is the runs themselves (tagged on request):

- one automatic retraining of a pipeline at a time: none is requested while one is queued or running, and
  the run queue admits one per pipeline (``RETRAINING_OF_TAG``, configured by ``local.instance``);
- one retraining per event: a report whose run was created before the latest retraining ended was answered
  by it (a burst of windows, a label batch seen by the labels and the performance sensors alike);
- a cooldown and a daily budget, the last resort rather than what stops the loop.

So the sensors need no shared cursor, and a person can see in the UI why a retraining did or did not start.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import dagster as dg

from mlops_assets.naming import (
    PIPELINE_TAG,
    RETRAIN_TAG,
    RETRAINING_OF_TAG,
    TRIGGER_TAG,
    AlertEvent,
    EndpointCheck,
)

if TYPE_CHECKING:
    from mlops_assets.spec import PipelineSpec

DAY = 86_400.0
ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


@dataclass(frozen=True)
class PipelineRuns:
    """The runs of one pipeline that the retraining decision reads: those queued or in flight, and the newest
    automatic retraining whatever its status."""

    active: list[dg.RunRecord]
    last_retraining: dg.RunRecord | None

    def retraining_in_flight(self) -> str | None:
        """Why no retraining may be requested now: one is queued or running; ``None`` when none is."""
        running = [r for r in self.active if r.dagster_run.tags.get(RETRAIN_TAG) == "true"]
        if not running:
            return None
        run = running[0].dagster_run
        return f"retraining run {run.run_id[:8]} is {run.status.value.lower()} ({run.tags.get(TRIGGER_TAG, '')})"

    def busy(self) -> str | None:
        """Why a decision on the newest reports must wait: a retraining, or a run that materializes an asset of
        the pipeline (a report, a rollback), is queued or running. A run of checks alone (the endpoint checks,
        every few minutes) changes nothing a decision reads."""
        if retraining := self.retraining_in_flight():
            return retraining
        materializing = [r for r in self.active if r.dagster_run.asset_selection]
        if materializing:
            return f"{len(materializing)} run(s) of this pipeline queued or running (reports to wait for)"
        return None

    def answered(self, instance: dg.DagsterInstance, report_run_id: str) -> str | None:
        """Why the report of run ``report_run_id`` needs no retraining of its own: it was created before the
        latest retraining ended, which answered what it saw (promoted a model that the report did not judge,
        or kept the champion: "retraining did not help"). ``None`` when no retraining has answered it."""
        last = self.last_retraining
        if last is None or last.end_time is None:
            return None
        report = instance.get_run_record_by_id(report_run_id)
        if report is None or report.create_timestamp.timestamp() >= last.end_time:
            return None
        run = last.dagster_run
        return f"answered by retraining run {run.run_id[:8]} ({run.status.value.lower()}, {run.tags.get(TRIGGER_TAG)})"


def pipeline_runs(instance: dg.DagsterInstance, pipeline: str) -> PipelineRuns:
    active = list(instance.get_run_records(filters=dg.RunsFilter(tags={PIPELINE_TAG: pipeline}, statuses=ACTIVE)))
    retrainings = dg.RunsFilter(tags={PIPELINE_TAG: pipeline, RETRAIN_TAG: "true"})
    newest = instance.get_run_records(filters=retrainings, limit=1)
    return PipelineRuns(active, newest[0] if newest else None)


def refusal(previous: list[float], now: float, cooldown_s: float, daily_budget: int) -> str | None:
    """Why a retraining may not start now, given the start times of earlier automatic ones; ``None`` if it may.

    The budget counts retrainings since midnight UTC; the cooldown counts from the latest one.
    """
    today = [t for t in previous if t >= now - now % DAY]
    if len(today) >= daily_budget:
        return f"daily budget spent: {len(today)} automatic retrainings today, budget {daily_budget}"
    if previous and now - max(previous) < cooldown_s:
        return f"cooling down: last automatic retraining {now - max(previous):.0f} s ago, cooldown {cooldown_s:.0f} s"
    return None


def retraining_refusal(instance: dg.DagsterInstance, spec: PipelineSpec, now: float) -> str | None:
    since = dt.datetime.fromtimestamp(min(now - now % DAY, now - spec.retraining.cooldown_minutes * 60), dt.UTC)
    records = instance.get_run_records(
        filters=dg.RunsFilter(tags={PIPELINE_TAG: spec.name, RETRAIN_TAG: "true"}, created_after=since)
    )
    starts = [r.create_timestamp.timestamp() for r in records]
    return refusal(starts, now, spec.retraining.cooldown_minutes * 60, spec.retraining.daily_budget)


def alert_refusal(spec: PipelineSpec, what: str, refused: str, log) -> None:
    """Announce that ``what`` wanted a retraining the policy refused; a sensor does so once per event (its
    cursor remembers), not on every tick that refuses it again."""
    from mlops_assets.alerts.delivery import asset_link, send_alerts

    link = asset_link(spec.name, "trained_model")
    send_alerts(spec, AlertEvent.retraining_refused, f"{what}: no retraining, {refused}", link, log)


def retrain_request(
    spec: PipelineSpec,
    run_key: str,
    trigger: str,
    assets: list[dg.AssetKey],
    checks: list[dg.AssetCheckKey] | None = None,
) -> dg.RunRequest:
    """A retraining run: the trigger travels as a run tag into the model version's MLflow tags. ``checks``: the
    asset checks it runs (``lifecycle_checks``; ``None``: every check of ``assets``)."""
    return dg.RunRequest(
        run_key=run_key,
        asset_selection=assets,
        asset_check_keys=checks,
        tags={PIPELINE_TAG: spec.name, RETRAIN_TAG: "true", RETRAINING_OF_TAG: spec.name, TRIGGER_TAG: trigger},
    )


def lifecycle_checks(context: dg.SensorEvaluationContext, assets: list[dg.AssetKey]) -> list[dg.AssetCheckKey] | None:
    """The checks of ``assets`` but the endpoint checks (``EndpointCheck``), which their own sensor runs on their
    interval: in a run that promotes they would judge the window of the version before, and after a failed gate
    they could only be skipped, an error in the run's log. ``None`` (every check) outside a code location."""
    if context.repository_def is None:
        return None
    endpoint_checks = set(EndpointCheck)
    found = context.repository_def.asset_graph.get_check_keys_for_assets(set(assets))
    return sorted((key for key in found if key.name not in endpoint_checks), key=lambda key: key.to_user_string())
