"""Per-arm figures of a rollout, read from the logs: what a person weighs in an A/B test or a shadow
deployment, and the online metric a canary compares.

An arm is a model version. Its rows are those it answered (the inference log) or, for a shadow model,
those it scored without answering (the shadow log, which also holds the champion's answer to each row).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mlops_assets.contracts import ArtifactStore
from mlops_assets.data.locations import log_prefix, shadow_log_prefix
from mlops_assets.model.pipeline_model import PipelineModel
from mlops_assets.monitoring.label_join import (
    Labelled,
    labelled_arrays,
    labelled_metric,
    labelled_predictions,
    logged_class_index,
)
from mlops_assets.monitoring.log_window import PREDICTION, log_since
from mlops_assets.serving.inference_log import CHAMPION_PREDICTION

if TYPE_CHECKING:
    from mlops_assets.spec import PipelineSpec


@dataclass(frozen=True)
class ArmMetrics:
    """One model version's traffic since the rollout started."""

    version: str
    role: str  # "served" (it answered) or "shadow" (it scored copies)
    requests: int
    rows: int
    mean_prediction: float | None  # regression: mean prediction
    positive_share: float | None  # binary classification: share of rows predicted as the positive class
    metric: str
    labelled_rows: int
    value: float  # the metric on the labelled rows (NaN without any)
    low: float
    high: float
    # shadow: share of rows answered otherwise than the champion did (regression: mean absolute difference)
    disagreement: float | None = None
    # the labelled rows behind ``value``, for comparing arms (``None`` without any, or where the log cannot
    # give the metric); left out of ``as_dict``, which is what metadata and the audit log keep
    labelled: Labelled | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict:
        figures = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "labelled"}
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in figures.items()}


def arm_metrics(
    spec: PipelineSpec, logged: pa.Table, labels: pd.DataFrame, model: PipelineModel, role: str = "served"
) -> list[ArmMetrics]:
    """Figures per model version in ``logged`` (rows of the inference or shadow log), labelled ones
    joined to ``labels`` for the spec's primary metric with its confidence interval."""
    if logged.num_rows == 0:
        return []
    metric = spec.primary_metric
    joined = labelled_predictions(spec, logged, labels)
    arms = []
    for version in sorted(set(logged.column("model_version").to_pylist()), key=_version_order):
        rows = logged.filter(pc.equal(logged.column("model_version"), version))
        predictions = rows.column(PREDICTION).to_numpy(zero_copy_only=False)
        mine = joined[joined["model_version"] == version] if not joined.empty else joined
        labelled = labelled_arrays(metric, mine, spec.target, model) if len(mine) else None
        value, low, high = labelled_metric(metric, labelled, spec.online_confidence)
        disagreement = None
        if CHAMPION_PREDICTION in rows.column_names:
            champion = rows.column(CHAMPION_PREDICTION).to_numpy(zero_copy_only=False)
            differs = predictions != champion if model.classes else np.abs(predictions - champion)
            disagreement = float(np.mean(differs))
        arms.append(
            ArmMetrics(
                version=version,
                role=role,
                requests=len(set(rows.column("request_id").to_pylist())),
                rows=rows.num_rows,
                mean_prediction=float(np.mean(predictions)) if model.classes is None else None,
                positive_share=_positive_share(predictions, model.classes),
                metric=metric,
                labelled_rows=len(mine),
                value=value,
                low=low,
                high=high,
                disagreement=disagreement,
                labelled=labelled,
            )
        )
    return arms


def rollout_arms(
    spec: PipelineSpec,
    store: ArtifactStore,
    since: dt.datetime,
    until: dt.datetime | None,
    labels: pd.DataFrame,
    model: PipelineModel,
) -> list[ArmMetrics]:
    """Every arm of the rollout that ran from ``since`` (to ``until``, or now): the versions that answered,
    then shadow ones. ``model`` is any version of the pipeline: it knows the classes."""
    served = log_since(store, log_prefix(spec.name), since, until)
    shadow = log_since(store, shadow_log_prefix(spec.name), since, until)
    return arm_metrics(spec, served, labels, model) + arm_metrics(spec, shadow, labels, model, role="shadow")


def arms_table(arms: list[ArmMetrics]) -> str:
    """A Markdown table of the arms, for the Dagster UI and the terminal."""
    if not arms:
        return "No traffic logged since the rollout started."
    lines = [
        f"| version | role | requests | rows | predicted | labelled | {arms[0].metric} (CI) | disagreement |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for arm in arms:
        predicted = (
            f"mean {arm.mean_prediction:.4g}"
            if arm.mean_prediction is not None
            else (f"{arm.positive_share:.1%} positive" if arm.positive_share is not None else "")
        )
        metric = "" if math.isnan(arm.value) else f"{arm.value:.4f} ({arm.low:.4f}-{arm.high:.4f})"
        disagreement = (
            ""
            if arm.disagreement is None
            else (f"{arm.disagreement:.1%}" if arm.mean_prediction is None else f"mean |Δ| {arm.disagreement:.4g}")
        )
        lines.append(
            f"| v{arm.version} | {arm.role} | {arm.requests} | {arm.rows} | {predicted} | {arm.labelled_rows} "
            f"| {metric} | {disagreement} |"
        )
    return "\n".join(lines)


def _positive_share(predictions: np.ndarray, classes: list | None) -> float | None:
    if classes is None or len(classes) != 2:
        return None
    return float(np.mean(logged_class_index(classes, predictions) == 1))


def _version_order(version: str) -> tuple[int, str]:
    return (int(version), version) if version.isdigit() else (0, version)
