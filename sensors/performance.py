"""The performance sensor: retrains when the online metric's confidence interval falls past the floor.

The metric is computed by the drift report (logged predictions joined to labels by id); a tick reads the
newest report's metadata only.
"""

import time

import dagster as dg

from sensors.policy import retrain_request, retraining_refusal


def build_performance_sensor(spec, report_key: dg.AssetKey, retrain_assets: list[dg.AssetKey]) -> dg.SensorDefinition:
    settings = spec.monitoring.performance

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
        metadata = record.asset_materialization.metadata
        if "performance_decayed" not in metadata:
            return dg.SkipReason("the newest drift report has no labelled predictions")
        value = metadata[f"online_{settings.metric}"].value
        bounds = (
            f"{settings.metric} {value:.4f} [{metadata['online_low'].value:.4f}, {metadata['online_high'].value:.4f}]"
        )
        if not metadata["performance_decayed"].value:
            return dg.SkipReason(f"{bounds}: not past the floor {settings.floor}")
        window = metadata["window_end"].value  # several reports of one window (a retraining run makes one) act once
        if context.cursor == window:
            return dg.SkipReason(f"{bounds}: already acted on window {window}")
        refused = retraining_refusal(context.instance, spec, time.time())
        if refused:
            return dg.SkipReason(f"{bounds} past the floor, not acted on: {refused}")
        context.update_cursor(window)
        trigger = f"performance_decay:{record.run_id} ({bounds})"
        return retrain_request(spec, f"{spec.name}:retrain:decay:{window}", trigger, retrain_assets)

    return performance_sensor
