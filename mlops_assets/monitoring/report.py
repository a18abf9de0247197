"""The drift report of a served model: its newest logged traffic against its training data.

With labels that can be joined to logged predictions by id, the report also carries the online metric
and its confidence interval, which the performance sensor compares with the spec's floor.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mlops_assets.contracts import ArtifactStore
from mlops_assets.data.locations import log_file_written_ns, log_files
from mlops_assets.evaluation.metrics import METRICS, meets_threshold
from mlops_assets.model.pipeline_model import PipelineModel
from mlops_assets.monitoring.drift.verdict import DriftConfig, compute_drift
from mlops_assets.monitoring.estimation import Calibrator, Estimate, check_estimable, estimate
from mlops_assets.naming import WINDOW_PREFIX
from mlops_assets.records import EndpointState

if TYPE_CHECKING:
    from mlops_assets.spec import PipelineSpec

log = logging.getLogger(__name__)
PREDICTION = "prediction"


@dataclass(frozen=True)
class LogWindow:
    table: pa.Table
    end: str | None  # key of the newest file read: names the window, so one window triggers one retraining
    skipped: list[str] = field(default_factory=list)  # unreadable files, reported and left out


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


def newest_window(store: ArtifactStore, prefix: str, rows: int) -> LogWindow:
    """The last ``rows`` logged rows, reading files newest first until the window is full, so memory is
    bounded by the window plus one file, not by the log."""
    tables, total, skipped, end = [], 0, [], None
    for key in reversed(log_files(store, prefix)):
        try:
            table = store.read_table(key)
        except (OSError, pa.ArrowException) as exc:
            log.warning("skipping unreadable inference log file %s: %s", key, exc)
            skipped.append(key)
            continue
        end = end or key
        tables.append(table)
        total += table.num_rows
        if total >= rows:
            break
    if not tables:
        return LogWindow(pa.table({}), None, skipped)
    window = pa.concat_tables(reversed(tables), promote_options="permissive")
    return LogWindow(window.slice(max(0, window.num_rows - rows)), end, skipped)


def window_ending_at(store: ArtifactStore, prefix: str, end_row: int, rows: int) -> LogWindow:
    """The ``rows`` logged rows that end at row ``end_row`` of the log (counted over its readable files in
    write order, as the drift sensor counts them): each report reads the window it was asked for, however
    much traffic came since. Row counts come from footers; only the files of the window are read."""
    tables, skipped, seen = [], [], 0
    start_row = max(end_row - rows, 0)
    for key in log_files(store, prefix):
        if seen >= end_row:
            break
        try:
            count = store.row_count(key)
        except (OSError, pa.ArrowException):
            skipped.append(key)
            continue
        first, seen = seen, seen + count
        if seen <= start_row:
            continue
        table = store.read_table(key)
        tables.append(table.slice(max(start_row - first, 0), min(end_row, seen) - max(start_row, first)))
    if not tables:
        return LogWindow(pa.table({}), None, skipped)
    return LogWindow(
        pa.concat_tables(tables, promote_options="permissive"), f"{WINDOW_PREFIX}{start_row}-{end_row}", skipped
    )


def requests_since(now: dict | None, before: dict | None) -> tuple[int, int] | None:
    """(accepted, rejected) scoring requests between two readings of the endpoint's counters; an endpoint
    that restarted meanwhile counts from zero. ``None`` when the endpoint could not be asked."""
    if now is None:
        return None
    restarted = before is None or any(now[k] < before.get(k, 0) for k in ("accepted", "rejected"))
    base = {"accepted": 0, "rejected": 0} if restarted else before
    return now["accepted"] - base["accepted"], now["rejected"] - base["rejected"]


def served_figures(store: ArtifactStore, prefix: str, window: pa.Table, now: float) -> dict[str, Any] | None:
    """The endpoint's scoring figures (its telemetry snapshots) from the window's first logged row until
    ``now``: requests, the share failed on its side (5xx) and the p50 and p99 latency, which the
    report shows beside the drift of the same traffic. ``None`` when the window has no timestamp."""
    from mlops_assets.monitoring.slo import failed_requests
    from mlops_assets.serving.telemetry import stored_snapshots, summarise

    if "timestamp" not in window.column_names or window.num_rows == 0:
        return None
    start = pc.min(window.column("timestamp")).as_py().timestamp()
    summary = summarise(stored_snapshots(store, prefix, start), start, now)
    requests = summary["requests"]
    return {
        "since": dt.datetime.fromtimestamp(start, dt.UTC).isoformat(timespec="seconds"),
        "requests": requests,
        "failed_share": failed_requests(summary["requests_by_status"]) / requests if requests else None,
        **{f"latency_{q}_ms": _ms(summary[f"latency_{q}_s"]) for q in ("p50", "p99")},
    }


def served_markdown(figures: dict[str, Any] | None) -> str:
    """One line of the report: what the endpoint's telemetry says of the window's time."""
    if figures is None:
        return ""
    if not figures["requests"]:
        return f"\n\nEndpoint since {figures['since']}: no scoring request in its telemetry snapshots yet."
    return (
        f"\n\nEndpoint since {figures['since']}: {figures['requests']} scoring requests, "
        f"{figures['failed_share']:.2%} failed on its side (5xx), latency p50 {figures['latency_p50_ms']:.3g} ms, "
        f"p99 {figures['latency_p99_ms']:.3g} ms."
    )


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


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


def labelled_predictions(spec: PipelineSpec, logged: pa.Table, labels: pd.DataFrame) -> pd.DataFrame:
    """Logged rows whose id has a label, with the label in the target column; the last label of an id wins."""
    key = spec.source.labels.id_column if spec.source.labels else None
    if labels.empty or key is None or key not in logged.column_names:
        return pd.DataFrame()
    columns = [c for c in ("model_version", key, PREDICTION, "score") if c in logged.column_names]
    truth = labels[[key, spec.target]].drop_duplicates(key, keep="last").astype({key: str})
    return logged.select(columns).to_pandas().merge(truth, on=key, how="inner")


class Labelled(NamedTuple):
    """Labelled predictions as the metrics take them: encoded truths, predictions and class probabilities."""

    y_true: np.ndarray
    y_pred: np.ndarray
    y_score: np.ndarray | None


def labelled_arrays(metric: str, joined: pd.DataFrame, target: str, model: PipelineModel) -> Labelled | None:
    """Rows from ``labelled_predictions`` as ``metric`` takes them; ``None`` where the log cannot give it.

    The log keeps the positive class's probability, so score-based metrics (roc_auc, log_loss) are
    available for binary classifiers; a multiclass log supports label-based metrics only.
    """
    y_true = model.encode_target(joined[target].to_numpy())
    if model.classes is None:
        return Labelled(y_true, joined[PREDICTION].to_numpy(dtype=float), None)
    y_pred = logged_class_index(model.classes, joined[PREDICTION].to_numpy())
    score = joined["score"].to_numpy(dtype=float)
    proba = np.column_stack([1 - score, score]) if len(model.classes) == 2 else None
    if proba is None and METRICS[metric].needs_scores:
        return None
    return Labelled(y_true, y_pred, proba)


def labelled_metric(metric: str, labelled: Labelled | None, confidence: float) -> tuple[float, float, float]:
    """(value, low, high) of ``metric`` on rows from ``labelled_arrays``; NaN where it is undefined."""
    from mlops_assets.evaluation.confidence import metric_interval

    return (math.nan, math.nan, math.nan) if labelled is None else metric_interval(metric, *labelled, confidence)


def logged_class_index(classes: list, logged: np.ndarray) -> np.ndarray:
    """Class indices of predictions as the log keeps them, as text: a class ``1`` is logged as ``"1"``,
    ``True`` as ``"true"`` (Arrow's cast), so the classes are cast the same way to be found again."""
    index = {text: i for i, text in enumerate(pa.array(classes).cast(pa.string()).to_pylist())}
    return np.array([index[v] for v in logged.tolist()])


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


def log_since(store: ArtifactStore, prefix: str, since: dt.datetime, until: dt.datetime | None = None) -> pa.Table:
    """Rows logged at or after ``since`` (and before ``until``). File names start with their write time in
    nanoseconds, and a file holds rows logged before it was written, so older files are never opened."""
    start_ms = int(since.timestamp() * 1000)
    end_ms = math.inf if until is None else int(until.timestamp() * 1000)
    tables = []
    for key in log_files(store, prefix):
        written_ns = log_file_written_ns(key)
        if written_ns is not None and written_ns // 1_000_000 < start_ms:
            continue
        table = store.read_table(key)
        timestamps = table.column("timestamp").cast(pa.int64())
        keep = pc.greater_equal(timestamps, start_ms)
        if until is not None:
            keep = pc.and_(keep, pc.less(timestamps, end_ms))
        tables.append(table.filter(keep))
    return pa.concat_tables(tables, promote_options="permissive") if tables else pa.table({})


def served_predictions(window: pa.Table, version: str, min_rows: int) -> tuple[np.ndarray | None, str]:
    """The window's predictions by the served version, and a note when they are too few to compare.

    Prediction drift is the served model's: rows another version answered (before a swap) say nothing
    about it, and would read as drift the moment a retrained model starts serving."""
    if PREDICTION not in window.column_names:
        return None, ""
    mine = pc.equal(window.column("model_version"), version) if "model_version" in window.column_names else None
    predictions = window.column(PREDICTION) if mine is None else window.column(PREDICTION).filter(mine)
    if len(predictions) < min_rows:
        return None, (
            f"The prediction is not compared: {len(predictions)} rows of the window were answered by v{version}, "
            f"a verdict needs {min_rows} (monitoring.min_rows)."
        )
    return predictions.to_numpy(zero_copy_only=False), ""


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
