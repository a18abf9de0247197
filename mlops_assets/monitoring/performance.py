"""The served model's online performance: measured on labelled predictions, or estimated from the served
probabilities before labels arrive, each judged against the spec's floor."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mlops_assets.contracts import ArtifactStore
from mlops_assets.model.metrics import METRICS, meets_threshold
from mlops_assets.model.pipeline_model import PipelineModel
from mlops_assets.monitoring.estimation import Calibrator, Estimate, check_estimable, estimate
from mlops_assets.monitoring.label_join import labelled_arrays, labelled_metric, labelled_predictions

if TYPE_CHECKING:
    from mlops_assets.spec import PipelineSpec


@dataclass(frozen=True)
class OnlinePerformance:
    metric: str
    value: float
    low: float
    high: float
    rows: int
    floor: float
    decayed: bool  # the whole confidence interval is on the wrong side of the floor


@dataclass(frozen=True)
class EstimatedPerformance(Estimate):
    """The online metric expected from the served probabilities alone (``monitoring.performance.estimated``),
    judged against the spec's floor."""

    floor: float
    decayed: bool  # the whole interval is on the wrong side of the floor


def online_performance(
    spec: PipelineSpec, window: pa.Table, labels: pd.DataFrame, model: PipelineModel, version: str
) -> OnlinePerformance | None:
    """The spec's online metric on the window's rows that ``version`` answered and whose id has a label;
    ``None`` without any. Rows another version answered judge that version, not the one serving."""
    settings = spec.monitoring.performance
    if settings is None:
        return None
    if "model_version" in window.column_names:
        window = window.filter(pc.equal(window.column("model_version"), version))
    joined = labelled_predictions(spec, window, labels).tail(settings.window)
    if joined.empty:
        return None
    labelled = labelled_arrays(settings.metric, joined, spec.target, model)
    value, low, high = labelled_metric(settings.metric, labelled, settings.confidence)
    bound = high if METRICS[settings.metric].higher_is_better else low
    return OnlinePerformance(
        settings.metric,
        value,
        low,
        high,
        len(joined),
        settings.floor,
        not meets_threshold(settings.metric, bound, settings.floor),
    )


def served_calibrator(
    spec: PipelineSpec, store: ArtifactStore, model: PipelineModel, training_set: str | None
) -> Calibrator | None:
    """The served version's scores calibrated on its fixed holdout (stored beside its training set), when the
    spec asks for an estimate (``monitoring.performance.estimated``), for a classifier whose holdout has two
    classes or more; ``None`` otherwise. A metric this model's logged scores cannot give (roc_auc of a
    multiclass model) raises ``NotEstimable`` before the holdout is read."""
    from mlops_assets.model.provenance import HOLDOUT, stored_parts

    settings = spec.monitoring.performance
    if settings is None or not settings.estimated or model.classes is None or not training_set:
        return None
    check_estimable(settings.metric, len(model.classes))
    key = stored_parts(training_set)[HOLDOUT]
    if not store.exists(key):
        return None
    holdout = store.read_table(key).to_pandas()
    labels = model.encode_target(holdout[spec.target].to_numpy())
    if len(set(labels.tolist())) < 2:
        return None
    return Calibrator(model.predict(holdout).proba, labels)


def estimated_performance(
    spec: PipelineSpec, window: pa.Table, version: str, calibrator: Calibrator | None
) -> EstimatedPerformance | None:
    """The spec's online metric expected on the window's rows that ``version`` answered, from their logged
    scores; ``None`` without a calibrator or rows."""
    settings = spec.monitoring.performance
    if calibrator is None or "score" not in window.column_names:
        return None
    if "model_version" in window.column_names:
        window = window.filter(pc.equal(window.column("model_version"), version))
    scores = window.column("score").to_numpy(zero_copy_only=False).astype(float)
    scores = scores[np.isfinite(scores)]
    if len(scores) == 0:
        return None
    found = estimate(settings.metric, scores, calibrator, settings.confidence)
    bound = found.high if METRICS[settings.metric].higher_is_better else found.low
    decayed = bool(np.isfinite(bound) and not meets_threshold(settings.metric, bound, settings.floor))
    return EstimatedPerformance(**asdict(found), floor=settings.floor, decayed=decayed)


def estimated_metadata(estimated: EstimatedPerformance | None) -> dict:
    """The estimated online metric as a report's metadata (what the performance sensor reads); nothing
    without an estimate."""
    if estimated is None:
        return {}
    return {
        f"estimated_{estimated.metric}": estimated.value,
        "estimated_std": estimated.std,
        "estimated_calibration_std": estimated.calibration_std,
        "estimated_low": estimated.low,
        "estimated_high": estimated.high,
        "estimated_rows": estimated.rows,
        "estimate_decayed": estimated.decayed,
    }
