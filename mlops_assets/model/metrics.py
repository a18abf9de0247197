"""Task metrics as pure functions of labels and model outputs, with the direction that counts as better.

Scikit-learn is imported inside the functions, where it is needed; the spec validates against the metrics'
names and tasks (``spec.vocabulary.METRIC_TASKS``), which ``METRICS`` takes its tasks from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mlops_assets.model import resampled
from mlops_assets.spec.vocabulary import METRIC_TASKS

Resampled = Callable[..., Callable[[np.ndarray], np.ndarray]]  # see ``resampled``


@dataclass(frozen=True)
class Metric:
    """Everything about one metric, so adding one is one entry in ``METRICS``.

    ``compute`` takes (y_true, y_pred, y_score, sample_weight=None); ``y_score`` is class probabilities for
    classifiers. ``sample_weight`` weighs each row (importance weights, a training window's decay); without
    it every row counts once, computed exactly as before weights existed. ``resampled`` is the same metric as
    a function of row weights (the bootstrap and the dealt canary arms), and ``resampled_with_variance`` adds
    its sampling variance where one is known (``None``: the dealt gain is not studentized)."""

    compute: Callable[..., float]
    higher_is_better: bool
    tasks: tuple[str, ...]
    resampled: Resampled
    resampled_with_variance: Resampled | None = None
    needs_scores: bool = False  # computed from class probabilities, not labels alone


def _accuracy(y, pred, score, sample_weight=None):
    if sample_weight is None:
        return float(np.mean(y == pred))
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(y, pred, sample_weight=sample_weight))


def _f1(y, pred, score, sample_weight=None):
    from sklearn.metrics import f1_score

    average = "binary" if len(np.unique(y)) <= 2 else "macro"
    return float(f1_score(y, pred, average=average, sample_weight=sample_weight))


def _roc_auc(y, pred, score, sample_weight=None):
    from sklearn.metrics import roc_auc_score

    # rows of zero weight are not in the sample: both classes must be among the weighted rows
    counted = np.asarray(y) if sample_weight is None else np.asarray(y)[np.asarray(sample_weight) > 0]
    if len(np.unique(counted)) < 2:
        return float("nan")
    return float(roc_auc_score(y, score[:, 1], sample_weight=sample_weight))


def _log_loss(y, pred, score, sample_weight=None):
    from sklearn.metrics import log_loss

    return float(log_loss(y, score, labels=np.arange(score.shape[1]), sample_weight=sample_weight))


def _f1_macro(y, pred, score, sample_weight=None):
    from sklearn.metrics import f1_score

    return float(f1_score(y, pred, average="macro", sample_weight=sample_weight))


def _mean(values: np.ndarray, sample_weight: np.ndarray | None) -> np.ndarray:
    """The plain mean without weights (bit for bit what the metrics gave before they took weights)."""
    return np.mean(values) if sample_weight is None else np.average(values, weights=sample_weight)


def _rmse(y, pred, score, sample_weight=None):
    return float(np.sqrt(_mean((np.asarray(y, float) - pred) ** 2, sample_weight)))


def _mae(y, pred, score, sample_weight=None):
    return float(_mean(np.abs(np.asarray(y, float) - pred), sample_weight))


def _r2(y, pred, score, sample_weight=None):
    y = np.asarray(y, float)
    if sample_weight is None:
        total, residual = np.sum((y - y.mean()) ** 2), np.sum((y - pred) ** 2)
    else:
        weight = np.asarray(sample_weight, float)
        total = np.sum(weight * (y - np.average(y, weights=weight)) ** 2)
        residual = np.sum(weight * (y - pred) ** 2)
    return float(1 - residual / total) if total > 0 else float("nan")


METRICS: dict[str, Metric] = {
    "roc_auc": Metric(
        _roc_auc, True, METRIC_TASKS["roc_auc"], resampled.roc_auc, resampled.roc_auc_and_variance, needs_scores=True
    ),
    "accuracy": Metric(_accuracy, True, METRIC_TASKS["accuracy"], resampled.accuracy, resampled.accuracy_and_variance),
    "f1": Metric(_f1, True, METRIC_TASKS["f1"], resampled.f1),
    "f1_macro": Metric(_f1_macro, True, METRIC_TASKS["f1_macro"], resampled.f1_macro),
    "log_loss": Metric(
        _log_loss,
        False,
        METRIC_TASKS["log_loss"],
        resampled.log_loss,
        resampled.log_loss_and_variance,
        needs_scores=True,
    ),
    "rmse": Metric(_rmse, False, METRIC_TASKS["rmse"], resampled.rmse, resampled.rmse_and_variance),
    "mae": Metric(_mae, False, METRIC_TASKS["mae"], resampled.mae, resampled.mae_and_variance),
    "r2": Metric(_r2, True, METRIC_TASKS["r2"], resampled.r2),
}


def compute_metrics(
    names: list[str],
    y_true: np.ndarray,
    y_pred: np.ndarray,
    y_score: np.ndarray | None,
    sample_weight: np.ndarray | None = None,
) -> dict[str, float]:
    """Every named metric on one set of predictions, each row weighted by ``sample_weight`` where given."""
    return {name: METRICS[name].compute(y_true, y_pred, y_score, sample_weight) for name in names}


def gain(name: str, challenger: float, champion: float) -> float:
    """Improvement of the challenger over the champion, positive when better whatever the direction."""
    return challenger - champion if METRICS[name].higher_is_better else champion - challenger


def meets_threshold(name: str, value: float, threshold: float) -> bool:
    """A threshold is a floor for higher-is-better metrics and a ceiling for the others."""
    if np.isnan(value):
        return False
    return value >= threshold if METRICS[name].higher_is_better else value <= threshold
