"""The labels sensor: a new label batch (a new or changed file in the labels source) brings a drift and
performance report at once (the online metric is computed when labels land, whatever the cooldown) and
retrains the model on the labelled production rows it completes.

A tick stats the files of the labels source and opens only new or changed ones, to check that they can be
read (a parquet footer, a CSV header); it never loads the batches: raw_data does, in the run.
"""

from __future__ import annotations

import csv
import hashlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from mlops_assets.data.locations import file_version, list_files
from mlops_assets.naming import PIPELINE_TAG, TRIGGER_TAG
from mlops_assets.sensors.policy import (
    alert_refusal,
    lifecycle_checks,
    pipeline_runs,
    retrain_request,
    retraining_refusal,
)

if TYPE_CHECKING:
    from mlops_assets.spec import PipelineSpec

REFUSAL_ALERTED = "mlops/refusal_alerted"  # cursor entry beside the files: the batch whose refusal was announced


def readable(file: str, columns: set[str]) -> str | None:
    """Why ``file`` cannot be a label batch, or ``None`` when it looks usable."""
    import fsspec
    import pyarrow.parquet as pq

    try:
        if file.endswith(".parquet"):
            with fsspec.open(file, "rb") as handle:
                names = set(pq.read_schema(handle).names)
        else:  # a BOM, quoted names: as pandas reads them
            with fsspec.open(file, "rt", encoding="utf-8-sig", newline="") as handle:
                names = set(next(csv.reader(handle), []))
    except Exception as exc:
        return f"unreadable ({type(exc).__name__}: {exc})"
    missing = columns - names
    return f"missing column(s) {sorted(missing)}" if missing else None


def build_labels_sensor(
    spec: PipelineSpec, spec_path: Path, report_key: dg.AssetKey, retrain_assets: list[dg.AssetKey]
) -> dg.SensorDefinition:
    labels = spec.source.labels
    columns = {labels.id_column, spec.target}

    @dg.sensor(
        name=f"{spec.name}_labels_sensor",
        description=f"Retrains when a label batch lands in {labels.path}.",
        asset_selection=dg.AssetSelection.assets(report_key, *retrain_assets),
        minimum_interval_seconds=spec.retraining.interval_seconds,
        default_status=dg.DefaultSensorStatus(spec.retraining.sensors.upper()),
    )
    def labels_sensor(context: dg.SensorEvaluationContext):
        seen: dict[str, list[int] | str] = json.loads(context.cursor) if context.cursor else {}
        files = {f: file_version(f) for f in list_files(labels.path, spec_path.parent)}
        if context.cursor is None:
            context.update_cursor(json.dumps(files))
            return dg.SkipReason(f"watching {len(files)} existing label file(s); new batches will retrain")
        changed = [f for f, stat in files.items() if seen.get(f) != stat]
        problems = {f: readable(f, columns) for f in changed}
        for file, problem in problems.items():
            if problem:
                context.log.warning(f"skipping label file {file}: {problem}")
        batch = [f for f in changed if problems[f] is None]
        bad = {f: files[f] for f in changed if problems[f]}
        if not batch:
            context.update_cursor(json.dumps({**seen, **bad}))
            return dg.SkipReason(
                f"no new label batch ({len(bad)} unreadable file(s) skipped)" if bad else "no new label batch"
            )
        batch_id = hashlib.sha256(json.dumps({f: files[f] for f in batch}, sort_keys=True).encode()).hexdigest()[:12]
        names = ", ".join(Path(f).name for f in batch)
        trigger = f"label_batch:{batch_id} ({names})"
        if spec.retraining.on_new_labels and (
            running := pipeline_runs(context.instance, spec.name).retraining_in_flight()
        ):
            # one retraining at a time: the batch stays new (the cursor does not take it) until the run ends
            context.update_cursor(json.dumps({**seen, **bad}))
            return dg.SkipReason(f"{len(batch)} new label file(s) wait: {running}")
        report = dg.RunRequest(
            run_key=f"{spec.name}:labels_report:{batch_id}",
            asset_selection=[report_key],
            tags={PIPELINE_TAG: spec.name, TRIGGER_TAG: trigger},
        )
        if not spec.retraining.on_new_labels:
            context.update_cursor(json.dumps({**seen, **bad, **{f: files[f] for f in batch}}))
            return dg.SensorResult(
                [report], skip_reason=f"{len(batch)} new label file(s); retraining.on_new_labels is off"
            )
        refused = retraining_refusal(context.instance, spec, time.time())
        if refused:
            if seen.get(REFUSAL_ALERTED) != batch_id:
                alert_refusal(spec, f"label batch {batch_id} ({names})", refused, context.log)
            # the batch stays new until it can be acted on; its refusal is announced once
            context.update_cursor(json.dumps({**seen, **bad, REFUSAL_ALERTED: batch_id}))
            context.log.info(f"{len(batch)} new label file(s): a report now, no retraining yet: {refused}")
            return [report]
        context.update_cursor(json.dumps({**seen, **bad, **{f: files[f] for f in batch}}))
        checks = lifecycle_checks(context, retrain_assets)
        return [report, retrain_request(spec, f"{spec.name}:labels:{batch_id}", trigger, retrain_assets, checks)]

    return labels_sensor
