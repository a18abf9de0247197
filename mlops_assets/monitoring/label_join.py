"""The label join: logged predictions whose id has a label, as the metrics take them."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa

from mlops_assets.model.metrics import METRICS
from mlops_assets.model.pipeline_model import PipelineModel
from mlops_assets.monitoring.log_window import PREDICTION

if TYPE_CHECKING:
    from mlops_assets.spec import PipelineSpec


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
