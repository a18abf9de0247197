"""The performance sensor: retrains when the online metric's confidence interval falls past the floor.

A report that a retraining answered (one created before the latest retraining ended, such as the report a
label batch brings beside its own retraining) starts none: one event, one retraining.

The metric is computed by the drift report (logged predictions joined to labels by id); a tick reads the
newest report's metadata only. With ``monitoring.performance.estimated`` a report without labels is judged
by the metric estimated from the served probabilities, and its decay retrains the same way.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import dagster as dg

from mlops_assets.records import DriftReportMetadata
from mlops_assets.sensors.policy import (
    alert_refusal,
    lifecycle_checks,
    pipeline_runs,
    retrain_request,
    retraining_refusal,
)

if TYPE_CHECKING:
    from mlops_assets.spec import PipelineSpec


def build_performance_sensor(
    spec: PipelineSpec, report_key: dg.AssetKey, retrain_assets: list[dg.AssetKey]
) -> dg.SensorDefinition:
    settings = spec.monitoring.performance
    if settings is None:
        raise ValueError(f"{spec.name} declares no online metric (monitoring.performance): no sensor to build")

    @dg.sensor(
        name=f"{spec.name}_performance_sensor",
        description=f"Retrains when online {settings.metric} is confidently past {settings.floor}.",
        asset_selection=dg.AssetSelection.assets(*retrain_assets),
        minimum_interval_seconds=spec.retraining.interval_seconds,
        default_status=dg.DefaultSensorStatus(spec.retraining.sensors.upper()),
    )
    def performance_sensor(context: dg.SensorEvaluationContext):
        records = context.instance.fetch_materializations(report_key, limit=1).records
        if not records:
            return dg.SkipReason("no drift report yet")
        record = records[0]
        metadata = record.asset_materialization.metadata if record.asset_materialization else {}
        found = observed(metadata, settings.metric, settings.estimated)
        if found is None:
            return dg.SkipReason("the newest drift report has no labelled predictions")
        kind, bounds, decayed = found
        if not decayed:
            return dg.SkipReason(f"{bounds}: not past the floor {settings.floor}")
        window = DriftReportMetadata.from_metadata(metadata).window_end  # a window's reports (a retraining's) act once
        if context.cursor == window:
            return dg.SkipReason(f"{bounds}: already acted on window {window}")
        runs = pipeline_runs(context.instance, spec.name)
        if waiting := runs.retraining_in_flight():
            return dg.SkipReason(f"{bounds} past the floor; decided once the retraining ends: {waiting}")
        if answered := runs.answered(context.instance, record.run_id):  # e.g. the label batch's own retraining
            return dg.SkipReason(f"{bounds} past the floor in window {window}: {answered}")
        refused = retraining_refusal(context.instance, spec, time.time())
        if refused:
            if context.cursor != f"refused:{window}":  # announced once per window, not on every tick
                alert_refusal(spec, f"{bounds} past the floor in window {window}", refused, context.log)
                context.update_cursor(f"refused:{window}")
            return dg.SkipReason(f"{bounds} past the floor, not acted on: {refused}")
        context.update_cursor(window)
        trigger = f"{kind}:{record.run_id} ({bounds})"
        checks = lifecycle_checks(context, retrain_assets)
        return retrain_request(spec, f"{spec.name}:retrain:decay:{window}", trigger, retrain_assets, checks)

    return performance_sensor


def observed(metadata, metric: str, estimated: bool) -> tuple[str, str, bool] | None:
    """What a report says of the metric: ``(trigger kind, value and bounds, decayed)``. The realised metric
    when labels joined, else the estimate from the served probabilities when the spec acts on it; ``None``
    when the report has neither."""
    for prefix, kind, flag in (
        ("online", "performance_decay", "performance_decayed"),
        ("estimated", "estimated_decay", "estimate_decayed"),
    ):
        if flag not in metadata or (prefix == "estimated" and not estimated):
            continue
        low, high = metadata[f"{prefix}_low"].value, metadata[f"{prefix}_high"].value
        label = metric if prefix == "online" else f"estimated {metric}"
        return kind, f"{label} {metadata[f'{prefix}_{metric}'].value:.4f} [{low:.4f}, {high:.4f}]", metadata[flag].value
    return None
