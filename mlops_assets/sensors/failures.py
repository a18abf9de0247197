"""The run failure sensor: a failed run of a pipeline's assets is announced to its alerts, linked to the run.

Built only for specs with alerts (the Dagster UI already lists failed runs). A run belongs to the pipeline when
it carries the pipeline's tag or materializes one of its assets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg

from mlops_assets.naming import PIPELINE_TAG, AlertEvent

if TYPE_CHECKING:
    from mlops_assets.spec import PipelineSpec


def belongs_to(run: dg.DagsterRun, pipeline: str) -> bool:
    """Whether ``run`` is one of ``pipeline``'s: its tag, or an asset under the pipeline's key prefix."""
    keys = run.asset_selection or set()
    return run.tags.get(PIPELINE_TAG) == pipeline or any(key.path[0] == pipeline for key in keys)


def build_failure_sensor(spec: PipelineSpec) -> dg.SensorDefinition:
    @dg.run_failure_sensor(
        name=f"{spec.name}_failure_alerts",
        description=f"Announces a failed run of the {spec.name} assets to the spec's alerts.",
        default_status=dg.DefaultSensorStatus(spec.retraining.sensors.upper()),
    )
    def failure_alerts(context: dg.RunFailureSensorContext):
        from mlops_assets.alerts.delivery import run_link, send_alerts

        run = context.dagster_run
        if not belongs_to(run, spec.name):
            return
        steps = sorted({event.step_key for event in context.get_step_failure_events() if event.step_key})
        where = f" in {', '.join(steps)}" if steps else ""
        message = f"run {run.run_id} failed{where}: {context.failure_event.message or 'no message'}"
        send_alerts(spec, AlertEvent.run_failed, message, run_link(run.run_id), context.log)

    return failure_alerts
