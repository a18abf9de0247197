"""Task metrics as pure functions of labels and model outputs, with the direction that counts as better.

Scikit-learn is imported inside the functions: the spec module reads ``METRICS`` at code-location load,
which must stay cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Metric:
    """A metric over (y_true, y_pred, y_score); ``y_score`` is class probabilities for classifiers."""

    compute: Callable[[np.ndarray, np.ndarray, np.ndarray | None], float]
    higher_is_better: bool
    tasks: tuple[str, ...]
    needs_scores: bool = False  # computed from class probabilities, not labels alone


def _accuracy(y, pred, score):
    return float(np.mean(y == pred))


def _f1(y, pred, score):
    from sklearn.metrics import f1_score

    return float(f1_score(y, pred, average="binary" if len(np.unique(y)) <= 2 else "macro"))


def _roc_auc(y, pred, score):
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y)) < 2:
        return float("nan")
    return float(roc_auc_score(y, score[:, 1]))


def _log_loss(y, pred, score):
    from sklearn.metrics import log_loss

    return float(log_loss(y, score, labels=np.arange(score.shape[1])))


def _f1_macro(y, pred, score):
    from sklearn.metrics import f1_score

    return float(f1_score(y, pred, average="macro"))


def _rmse(y, pred, score):
    return float(np.sqrt(np.mean((np.asarray(y, float) - pred) ** 2)))


def _mae(y, pred, score):
    return float(np.mean(np.abs(np.asarray(y, float) - pred)))


def _r2(y, pred, score):
    y = np.asarray(y, float)
    total = np.sum((y - y.mean()) ** 2)
    return float(1 - np.sum((y - pred) ** 2) / total) if total > 0 else float("nan")


METRICS: dict[str, Metric] = {
    "roc_auc": Metric(_roc_auc, True, ("binary",), needs_scores=True),
    "accuracy": Metric(_accuracy, True, ("binary", "multiclass")),
    "f1": Metric(_f1, True, ("binary",)),
    "f1_macro": Metric(_f1_macro, True, ("multiclass",)),
    "log_loss": Metric(_log_loss, False, ("binary", "multiclass"), needs_scores=True),
    "rmse": Metric(_rmse, False, ("regression",)),
    "mae": Metric(_mae, False, ("regression",)),
    "r2": Metric(_r2, True, ("regression",)),
}

_DEFAULTS = {
    "binary": ["roc_auc", "accuracy", "f1", "log_loss"],
    "multiclass": ["accuracy", "f1_macro", "log_loss"],
    "regression": ["rmse", "mae", "r2"],
}


def default_metrics(task: str) -> list[str]:
    """Metrics reported when the spec names none; the first is the primary one."""
    return list(_DEFAULTS[task])


def compute_metrics(
    names: list[str], y_true: np.ndarray, y_pred: np.ndarray, y_score: np.ndarray | None
) -> dict[str, float]:
    """Every named metric on one set of predictions."""
    return {name: METRICS[name].compute(y_true, y_pred, y_score) for name in names}


def gain(name: str, challenger: float, champion: float) -> float:
    """Improvement of the challenger over the champion, positive when better whatever the direction."""
    return challenger - champion if METRICS[name].higher_is_better else champion - challenger


def meets_threshold(name: str, value: float, threshold: float) -> bool:
    """A threshold is a floor for higher-is-better metrics and a ceiling for the others."""
    if np.isnan(value):
        return False
    return value >= threshold if METRICS[name].higher_is_better else value <= threshold
