"""The drift report of a served model: its newest logged traffic against its training data.

With labels that can be joined to logged predictions by id, the report also carries the online metric
and its confidence interval, which the performance sensor compares with the spec's floor.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from mlops_assets.contracts import ArtifactStore
from mlops_assets.model.pipeline_model import PipelineModel
from mlops_assets.monitoring.drift.verdict import compute_drift
from mlops_assets.monitoring.estimation import Calibrator
from mlops_assets.monitoring.log_window import (
    PREDICTION,
    LogWindow,
    newest_window,
    served_predictions,
    window_ending_at,
)
from mlops_assets.monitoring.performance import (
    EstimatedPerformance,
    OnlinePerformance,
    estimated_performance,
    online_performance,
)
from mlops_assets.monitoring.served_figures import served_figures, served_markdown
from mlops_assets.records import EndpointState
from mlops_assets.spec.drift import DriftConfig

if TYPE_CHECKING:
    from mlops_assets.spec import PipelineSpec


@dataclass(frozen=True)
class DriftOutcome:
    status: str  # "drifted", "no drift" or "not enough traffic"
    window: LogWindow
    markdown: str
    as_json: dict[str, Any]
    drifted_features: list[str] = field(default_factory=list)
    performance: OnlinePerformance | None = None
    estimated: EstimatedPerformance | None = None
    reference: pd.DataFrame | None = None  # the reference's rows, for a drift's adaptation plan


def drift_config(monitoring) -> DriftConfig:
    """The spec's ``monitoring`` section as the drift statistics' configuration."""
    return DriftConfig(
        bins=monitoring.bins,
        psi_threshold=monitoring.psi_threshold,
        wasserstein_threshold=monitoring.wasserstein_threshold,
        js_threshold=monitoring.js_threshold,
        alpha=monitoring.alpha,
        correction=monitoring.correction,
        overrides={name: t.model_dump(exclude_none=True) for name, t in monitoring.features.items()},
    )


def build_drift_report(
    spec: PipelineSpec,
    store: ArtifactStore,
    endpoint: EndpointState,
    model: PipelineModel,
    labels: pd.DataFrame,
    end_row: int | None = None,
    calibrator: Calibrator | None = None,
) -> DriftOutcome:
    """Inputs and the prediction of a window (the one ending at ``end_row``, else the newest) against the
    reference and the champion's predictions on it; ``labels`` may be empty. With a ``calibrator``
    (``served_calibrator``) the online metric is also estimated from the logged probabilities."""
    monitoring = spec.monitoring
    if end_row is None:
        window = newest_window(store, endpoint.log_key, monitoring.window)
    else:
        window = window_ending_at(store, endpoint.log_key, end_row, monitoring.window)
    rows = window.table.num_rows
    base = {
        "model_version": endpoint.model_version,
        "reference": endpoint.reference_key,
        "window_rows": rows,
        "window_size": monitoring.window,
        "window_end": window.end,
        "skipped_files": window.skipped,
    }
    if rows < monitoring.min_rows:
        message = (
            f"Not enough traffic yet: {rows} logged rows, a verdict needs {monitoring.min_rows} (monitoring.min_rows)."
        )
        return DriftOutcome("not enough traffic", window, message, {**base, "status": "not enough traffic"})
    reference_frame = store.read_table(endpoint.reference_key).to_pandas()
    dtypes = {c: spec.schema_.columns[c].dtype for c in spec.input_columns}
    dtypes[PREDICTION] = "float" if spec.task == "regression" else "str"
    reference = {c: reference_frame[c].to_numpy() for c in spec.input_columns}
    reference[PREDICTION] = model.predict(reference_frame).labels
    current = {
        c: window.table.column(c).to_numpy(zero_copy_only=False) for c in window.table.column_names if c in dtypes
    }
    served, note = served_predictions(window.table, endpoint.model_version, monitoring.min_rows)
    if served is None:
        del dtypes[PREDICTION]
    else:
        current[PREDICTION] = served
    report = compute_drift(reference, current, dtypes, drift_config(monitoring))
    performance = online_performance(spec, window.table, labels, model, endpoint.model_version)
    status = "drifted" if report.drifted else "no drift"
    served = served_figures(store, endpoint.log_key, window.table, dt.datetime.now(dt.UTC).timestamp())
    markdown = report.to_markdown() + (f"\n\n{note}" if note else "") + served_markdown(served)
    if performance is not None:
        markdown += (
            f"\n\nOnline {performance.metric} on {performance.rows} labelled predictions: {performance.value:.4f} "
            f"({spec.monitoring.performance.confidence:.0%} CI {performance.low:.4f}-{performance.high:.4f}); "
            f"floor {performance.floor}: {'DECAYED' if performance.decayed else 'ok'}."
        )
    estimated = estimated_performance(spec, window.table, endpoint.model_version, calibrator)
    if estimated is not None:
        markdown += (
            f"\n\nEstimated {estimated.metric} from the served probabilities of {estimated.rows} rows (calibrated "
            f"on the holdout, no labels): {estimated.value:.4f} ± {estimated.std:.4f} (calibration's part "
            f"{estimated.calibration_std:.4f}) "
            f"({spec.monitoring.performance.confidence:.0%} interval {estimated.low:.4f}-{estimated.high:.4f}); "
            f"floor {estimated.floor}: {'DECAYED' if estimated.decayed else 'ok'}. Valid while only the inputs move; "
            "a change of the concept shows in labels only."
        )
    as_json = {
        **base,
        "status": status,
        **report.to_dict(),
        "performance": performance and vars(performance),
        "estimated_performance": estimated and vars(estimated),
        "endpoint": served,
    }
    return DriftOutcome(
        status, window, markdown, as_json, report.drifted_features, performance, estimated, reference_frame
    )
