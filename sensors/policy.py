"""When an automatic retraining may start: a cooldown and a daily budget shared by every sensor of a pipeline.

The state is the runs themselves (tagged on request), so the sensors need no shared cursor and a person
can see in the UI why a retraining did or did not start.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

from mlops_assets.naming import PIPELINE_TAG, RETRAIN_TAG, TRIGGER_TAG, AlertEvent, EndpointCheck

DAY = 86_400.0


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


def retraining_refusal(instance: dg.DagsterInstance, spec, now: float) -> str | None:
    since = dt.datetime.fromtimestamp(min(now - now % DAY, now - spec.retraining.cooldown_minutes * 60), dt.UTC)
    records = instance.get_run_records(
        filters=dg.RunsFilter(tags={PIPELINE_TAG: spec.name, RETRAIN_TAG: "true"}, created_after=since)
    )
    starts = [r.create_timestamp.timestamp() for r in records]
    return refusal(starts, now, spec.retraining.cooldown_minutes * 60, spec.retraining.daily_budget)


def alert_refusal(spec, what: str, refused: str, log) -> None:
    """Announce that ``what`` wanted a retraining the policy refused; a sensor does so once per event (its
    cursor remembers), not on every tick that refuses it again."""
    from mlops_assets.monitoring.alerts import asset_link, send_alerts

    link = asset_link(spec.name, "trained_model")
    send_alerts(spec, AlertEvent.retraining_refused, f"{what}: no retraining, {refused}", link, log)


def retrain_request(
    spec, run_key: str, trigger: str, assets: list[dg.AssetKey], checks: list[dg.AssetCheckKey] | None = None
) -> dg.RunRequest:
    """A retraining run: the trigger travels as a run tag into the model version's MLflow tags. ``checks``: the
    asset checks it runs (``lifecycle_checks``; ``None``: every check of ``assets``)."""
    return dg.RunRequest(
        run_key=run_key,
        asset_selection=assets,
        asset_check_keys=checks,
        tags={PIPELINE_TAG: spec.name, RETRAIN_TAG: "true", TRIGGER_TAG: trigger},
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
