"""The drift sensor: a drift report per window of new traffic, a retraining when the reports say drift.

A tick lists the inference log and reads the footers of files it has not seen (their row counts), plus the
latest drift report materializations: never the log's rows.
"""

import json
import time
from dataclasses import asdict, dataclass

import dagster as dg

from mlops_assets.contracts import ArtifactStore
from mlops_assets.locations import log_files, log_prefix
from sensors.policy import retrain_request, retraining_refusal


@dataclass
class DriftCursor:
    last_file: str = ""  # newest log file counted
    rows: int = 0  # rows logged up to and including ``last_file``
    rows_at_last_report: int = 0
    retrained_window: str = ""  # ``window_end`` of the last report that started a retraining
    skipped_files: int = 0

    @classmethod
    def parse(cls, text: str | None) -> "DriftCursor":
        return cls(**json.loads(text)) if text else cls()


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
    return DriftCursor(last, rows, cursor.rows_at_last_report, cursor.retrained_window, skipped)


def recent_reports(instance: dg.DagsterInstance, key: dg.AssetKey, count: int) -> list[dict]:
    """The newest drift reports, one per traffic window, newest first: status, window and run id."""
    records = instance.fetch_materializations(key, limit=count * 4).records
    reports, windows = [], set()
    for record in records:
        metadata = record.asset_materialization.metadata
        window = getattr(metadata.get("window_end"), "value", None)
        if window in windows or window in (None, "none"):
            continue
        windows.add(window)
        reports.append({"status": metadata["status"].value, "window": window, "run_id": record.run_id})
    return reports[:count]


def build_drift_sensor(spec, keys: dict[str, dg.AssetKey], retrain_assets: list[dg.AssetKey]) -> dg.SensorDefinition:
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
        requests, notes = [], []
        if cursor.rows - cursor.rows_at_last_report >= spec.monitoring.window:
            requests.append(
                dg.RunRequest(
                    run_key=f"{spec.name}:drift_report:{cursor.last_file}",
                    asset_selection=[keys["drift_report"]],
                    tags={"mlops/pipeline": spec.name, "mlops/trigger": f"traffic:{cursor.rows} rows"},
                )
            )
            cursor.rows_at_last_report = cursor.rows
        else:
            notes.append(f"{cursor.rows - cursor.rows_at_last_report} new rows of {spec.monitoring.window}")
        reports = recent_reports(context.instance, keys["drift_report"], persistence)
        drifted = len(reports) == persistence and all(r["status"] == "drifted" for r in reports)
        if spec.retraining.on_drift and drifted and reports[0]["window"] != cursor.retrained_window:
            refused = retraining_refusal(context.instance, spec, time.time())
            if refused:
                notes.append(f"drift in window {reports[0]['window']} not acted on: {refused}")
            else:
                trigger = f"drift_report:{reports[0]['run_id']}"
                run_key = f"{spec.name}:retrain:drift:{reports[0]['window']}"
                requests.append(retrain_request(spec, run_key, trigger, retrain_assets))
                cursor.retrained_window = reports[0]["window"]
        if cursor.skipped_files:
            notes.append(f"{cursor.skipped_files} unreadable log file(s) skipped so far")
        context.update_cursor(json.dumps(asdict(cursor)))
        return requests or dg.SkipReason("; ".join(notes) or "nothing new")

    return drift_sensor
