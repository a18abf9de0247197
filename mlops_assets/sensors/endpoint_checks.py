"""The endpoint checks' sensor: runs the checks on ``deployed_endpoint`` on their own (no materialization), the
SLO checks every ``monitoring.slo.interval_minutes``, the schema-break check every
``monitoring.schema_break.interval_minutes`` and the skew check every ``monitoring.skew.interval_minutes``,
while the pipeline has a champion endpoint; and rolls ``champion`` back once per failed SLO evaluation whose
check said a rollback is due (``monitoring.slo.rollback``), by a run of ``deployed_endpoint`` with ``rollback``.

A tick reads the latest ``deployed_endpoint`` materialization and the checks' latest evaluations: never the
telemetry or the log, which the checks read in their own run.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import dagster as dg

from mlops_assets.monitoring.slo import objectives
from mlops_assets.naming import PIPELINE_TAG, TRIGGER_TAG, EndpointCheck, asset_keys
from mlops_assets.sensors.policy import lifecycle_checks

if TYPE_CHECKING:
    from mlops_assets.spec import PipelineSpec


@dataclass
class EndpointChecksCursor:
    slo_requested_at: float = 0.0  # when the sensor last asked for the SLO checks (seconds since the epoch)
    skew_requested_at: float = 0.0
    schema_break_requested_at: float = 0.0

    @classmethod
    def parse(cls, text: str | None) -> EndpointChecksCursor:
        return cls(**json.loads(text)) if text else cls()


def due_checks(spec: PipelineSpec, cursor: EndpointChecksCursor, now: float) -> list[EndpointCheck]:
    """The checks whose interval has passed since the sensor last asked for them; the cursor moves for those."""
    due = []
    slo = spec.monitoring.slo
    if slo is not None and now - cursor.slo_requested_at >= slo.interval_minutes * 60:
        due += objectives(slo)
        cursor.slo_requested_at = now
    if now - cursor.schema_break_requested_at >= spec.monitoring.schema_break.interval_minutes * 60:
        due.append(EndpointCheck.schema_break)
        cursor.schema_break_requested_at = now
    if now - cursor.skew_requested_at >= spec.monitoring.skew.interval_minutes * 60:
        due.append(EndpointCheck.skew)
        cursor.skew_requested_at = now
    return due


def rollback_request(
    spec: PipelineSpec, context: dg.SensorEvaluationContext, deployed: dg.EventLogEntry
) -> dg.RunRequest | None:
    """A run of ``deployed_endpoint`` with ``rollback``, when the latest evaluation of an SLO check failed and
    said a rollback is due, for the version that still serves (evaluated after its deployment); keyed by the
    check run, so one failed evaluation rolls back once. The reason travels as the approver into the audit trail.

    The run carries the deployment's own checks (its approval), not the endpoint checks: those keep their
    interval, and would judge the traffic from before the rollback again."""
    key = asset_keys(spec.name)["deployed_endpoint"]
    instance = context.instance
    serving = _value(deployed.asset_materialization.metadata.get("model_version"))
    failed = []
    for check in objectives(spec.monitoring.slo):
        record = instance.get_latest_asset_check_evaluation_record(dg.AssetCheckKey(key, check.value))
        evaluation = record.event.dagster_event.event_specific_data if record and record.event else None
        if evaluation is None or evaluation.passed or record.event.timestamp <= deployed.timestamp:
            continue
        metadata = {name: _value(value) for name, value in evaluation.metadata.items()}
        if metadata.get("rollback_to", "none") != "none" and metadata.get("model_version") == serving:
            failed.append((check, record.run_id, metadata))
    if not failed:
        return None
    _, run_id, metadata = failed[0]
    names = ", ".join(check for check, _, _ in failed)
    by = f"sensor {sensor_name(spec)}: {metadata['rollback']} (check run {run_id})"
    config = {"rollback": True, "approved_by": by}
    return dg.RunRequest(
        run_key=f"{spec.name}:rollback:slo:{run_id}",
        asset_selection=[key],
        asset_check_keys=lifecycle_checks(context, [key]),
        run_config={"ops": {f"{spec.name}__deployed_endpoint": {"config": config}}},
        tags={PIPELINE_TAG: spec.name, TRIGGER_TAG: f"slo: {names} failed"},
    )


def sensor_name(spec: PipelineSpec) -> str:
    return f"{spec.name}_endpoint_checks"


def _value(metadata_value):
    return getattr(metadata_value, "value", metadata_value)


def build_endpoint_checks_sensor(spec: PipelineSpec) -> dg.SensorDefinition:
    key = asset_keys(spec.name)["deployed_endpoint"]
    slo = spec.monitoring.slo
    checks = [*objectives(slo), EndpointCheck.schema_break, EndpointCheck.skew]
    every = f"SLO checks every {slo.interval_minutes:g} min, " if slo else ""
    every += f"schema break every {spec.monitoring.schema_break.interval_minutes:g} min, "
    rolls_back = "; rolls champion back on a failed SLO (monitoring.slo.rollback)" if slo and slo.rollback else ""

    @dg.sensor(
        name=sensor_name(spec),
        description=f"Checks the served endpoint: {every}skew every {spec.monitoring.skew.interval_minutes:g} min"
        f"{rolls_back}.",
        asset_selection=dg.AssetSelection.checks(*(dg.AssetCheckKey(key, c.value) for c in checks))
        | dg.AssetSelection.assets(key),
        minimum_interval_seconds=spec.retraining.interval_seconds,
        default_status=dg.DefaultSensorStatus(spec.retraining.sensors.upper()),
    )
    def endpoint_checks(context: dg.SensorEvaluationContext):
        deployed = context.instance.get_latest_materialization_event(key)
        if deployed is None:
            return dg.SkipReason(f"no champion endpoint yet: {key.to_user_string()} was never materialized")
        requests = []
        if slo is not None and slo.rollback and (rollback := rollback_request(spec, context, deployed)):
            requests.append(rollback)
        now = time.time()
        cursor = EndpointChecksCursor.parse(context.cursor)
        due = due_checks(spec, cursor, now)
        if due:
            requests.append(
                dg.RunRequest(
                    run_key=f"{spec.name}:endpoint_checks:{'+'.join(due)}:{now:.0f}",
                    asset_selection=[],
                    asset_check_keys=[dg.AssetCheckKey(key, check.value) for check in due],
                    tags={PIPELINE_TAG: spec.name, TRIGGER_TAG: f"endpoint checks: {', '.join(due)}"},
                )
            )
        context.update_cursor(json.dumps(asdict(cursor)))
        return requests or dg.SkipReason("no check due yet")

    return endpoint_checks
