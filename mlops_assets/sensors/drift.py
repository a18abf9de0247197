"""The drift sensor: a drift report per window of new traffic, a retraining when the reports say drift.

A tick lists the inference log and reads the footers of files it has not seen (their row counts), plus the
latest drift report materializations: never the log's rows.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

import dagster as dg

from mlops_assets.contracts import ArtifactStore
from mlops_assets.data.locations import log_files, log_prefix
from mlops_assets.naming import ADAPTATION_TAG, PIPELINE_TAG, TRIGGER_TAG, WINDOW_END_TAG, WINDOW_PREFIX, DriftStatus
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


@dataclass
class DriftCursor:
    last_file: str = ""  # newest log file counted
    rows: int = 0  # rows logged up to and including ``last_file``
    rows_at_last_report: int = 0
    skipped_files: int = 0
    refusal_alerted: str = ""  # ``window_end`` of the last drift whose refused retraining was announced

    @classmethod
    def parse(cls, text: str | None) -> DriftCursor:
        """The cursor a tick left; entries of an older cursor's shape that no rule reads any more are dropped."""
        fields = cls.__dataclass_fields__
        return cls(**{k: v for k, v in json.loads(text).items() if k in fields}) if text else cls()


def count_new_rows(store: ArtifactStore, keys: list[str], cursor: DriftCursor, log) -> DriftCursor:
    """Advance the cursor over files newer than it, counting rows from footers; unreadable files are
    skipped with a warning and counted."""
    rows, skipped = cursor.rows, cursor.skipped_files
    new = [k for k in keys if k > cursor.last_file]
    for key in new:
        try:
            rows += store.row_count(key)
        except Exception as exc:
            log.warning(f"skipping unreadable inference log file {key}: {exc}")
            skipped += 1
    last = new[-1] if new else cursor.last_file
    return DriftCursor(last, rows, cursor.rows_at_last_report, skipped, cursor.refusal_alerted)


def recent_reports(instance: dg.DagsterInstance, key: dg.AssetKey, count: int) -> list[DriftReportMetadata]:
    """The newest drift reports of this sensor's traffic windows (``rows a-b``), one per window, newest first, each
    with the run that made it. Reports over the newest rows (by hand, after a label batch or a retraining) cover
    traffic a window report covers too: counted again they would make one drifted window look persistent."""
    records = instance.fetch_materializations(key, limit=count * 4 + 20).records
    reports: list[DriftReportMetadata] = []
    windows: set[str] = set()
    for record in records:
        if record.asset_materialization is None:
            continue
        report = DriftReportMetadata.from_metadata(record.asset_materialization.metadata)
        window = report.window_end
        if window is None or window in windows or not window.startswith(WINDOW_PREFIX):
            continue
        windows.add(window)
        reports.append(replace(report, drift_report_id=record.run_id))
    return reports[:count]


def report_requests(spec: PipelineSpec, key: dg.AssetKey, cursor: DriftCursor) -> list[dg.RunRequest]:
    """One drift report per full window of new traffic, each over its own window (the rows that end at its
    count), so a burst of traffic gives every window its verdict."""
    requests, window = [], spec.monitoring.window
    while cursor.rows - cursor.rows_at_last_report >= window:
        end = cursor.rows_at_last_report + window
        requests.append(
            dg.RunRequest(
                run_key=f"{spec.name}:drift_report:rows:{end}",
                asset_selection=[key],
                tags={
                    PIPELINE_TAG: spec.name,
                    TRIGGER_TAG: f"traffic:rows {end - window}-{end}",
                    WINDOW_END_TAG: str(end),
                },
            )
        )
        cursor.rows_at_last_report = end
    return requests


def build_drift_sensor(
    spec: PipelineSpec, keys: dict[str, dg.AssetKey], retrain_assets: list[dg.AssetKey]
) -> dg.SensorDefinition:
    prefix = log_prefix(spec.name)
    persistence = spec.monitoring.persistence

    @dg.sensor(
        name=f"{spec.name}_drift_sensor",
        description=f"Drift report per {spec.monitoring.window} logged requests; retraining after "
        f"{persistence} drifted window(s).",
        asset_selection=dg.AssetSelection.assets(keys["drift_report"], *retrain_assets),
        minimum_interval_seconds=spec.retraining.interval_seconds,
        default_status=dg.DefaultSensorStatus(spec.retraining.sensors.upper()),
    )
    def drift_sensor(context: dg.SensorEvaluationContext, store: ArtifactStore):
        cursor = count_new_rows(store, log_files(store, prefix), DriftCursor.parse(context.cursor), context.log)
        requests, notes = report_requests(spec, keys["drift_report"], cursor), []
        if not requests:
            notes.append(f"{cursor.rows - cursor.rows_at_last_report} new rows of {spec.monitoring.window}")
        if spec.retraining.on_drift:
            if requests:  # the windows just requested are judged first: a burst is decided once, on its newest
                notes.append(f"{len(requests)} drift report(s) requested; the retraining decision waits for them")
            else:
                retraining, note = retraining_decision(context, spec, keys, retrain_assets, cursor)
                requests += retraining
                notes += [note] if note else []
        if cursor.skipped_files:
            notes.append(f"{cursor.skipped_files} unreadable log file(s) skipped so far")
        context.update_cursor(json.dumps(asdict(cursor)))
        return requests or dg.SkipReason("; ".join(notes) or "nothing new")

    return drift_sensor


def retraining_decision(
    context: dg.SensorEvaluationContext,
    spec: PipelineSpec,
    keys,
    retrain_assets: list[dg.AssetKey],
    cursor: DriftCursor,
) -> tuple[list[dg.RunRequest], str]:
    """At most one retraining, toward the newest drifted window, once nothing of the pipeline is queued or
    running; and none for a report that a retraining already answered or that judged a former champion."""
    persistence = spec.monitoring.persistence
    reports = recent_reports(context.instance, keys["drift_report"], persistence)
    newest = reports[0] if reports else None
    if newest is None or newest.status in (DriftStatus.no_drift, DriftStatus.not_enough_traffic):
        return [], ""
    window = str(newest.window_end)  # a traffic window: recent_reports keeps no other
    runs = pipeline_runs(context.instance, spec.name)
    if waiting := runs.busy():
        return [], f"drift in window {window}: decided once nothing is in flight; {waiting}"
    if answered := runs.answered(context.instance, str(newest.drift_report_id)):
        return [], f"drift in window {window}: {answered}"
    champion = champion_version(context.instance, keys["deployed_endpoint"])
    if champion is not None and newest.model_version not in (None, champion):
        return [], f"drift in window {window} was judged on v{newest.model_version}; v{champion} serves now"
    if newest.status != DriftStatus.drifted or not newest.adaptation_window:
        return [], f"drift in window {window} not retrained: {newest.verdict}"
    if not (len(reports) == persistence and all(r.status == DriftStatus.drifted for r in reports)):
        return [], f"drift in window {window}: not yet in {persistence} windows in a row"
    if refused := retraining_refusal(context.instance, spec, time.time()):
        if cursor.refusal_alerted != window:
            alert_refusal(spec, f"drift in window {window}", refused, context.log)
            cursor.refusal_alerted = window
        return [], f"drift in window {window} not acted on: {refused}"
    run_key = f"{spec.name}:retrain:drift:{window}"
    checks = lifecycle_checks(context, retrain_assets)
    request = retrain_request(spec, run_key, f"drift_report:{newest.drift_report_id}", retrain_assets, checks)
    return [request.with_replaced_attrs(tags={**request.tags, ADAPTATION_TAG: newest.adaptation_window})], ""


def champion_version(instance: dg.DagsterInstance, endpoint_key: dg.AssetKey) -> str | None:
    """The version the newest ``deployed_endpoint`` materialization serves: what a fresh report judges."""
    event = instance.get_latest_materialization_event(endpoint_key)
    if event is None or event.asset_materialization is None:
        return None
    version = event.asset_materialization.metadata.get("model_version")
    return getattr(version, "value", None)
