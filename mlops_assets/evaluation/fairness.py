"""Fairness figures and per-slice metrics as pure functions of labels, predictions and a group per row.

- ``demographic_parity_difference``: the largest selection rate (share of rows predicted ``positive``) of a
  group less the smallest.
- ``equalized_odds_difference``: the larger of the true-positive-rate gap and the false-positive-rate gap
  between groups (fairlearn's definition, its ``agg="worst_case"``).
- ``error_gap`` (regression): the largest mean absolute error of a group less the smallest.

A rate a group cannot have (a TPR without a positive row, an FPR without a negative one) is undefined and
left out of that gap; a figure with fewer than two groups defined is NaN, which no limit accepts.

Multiclass targets are judged one class against the rest, each class in turn, and the worst class is the
figure: a model fair to every class but one is not fair. Binary targets are judged on the positive class
(the second of the sorted classes, as ``roc_auc`` scores it).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from mlops_assets.model.metrics import METRICS

MISSING_GROUP = "(missing)"  # the group of rows whose sensitive value is missing


@dataclass(frozen=True)
class GroupFigure:
    """One fairness figure over one sensitive column, with the per-group rates it is taken from."""

    name: str  # demographic_parity_difference, equalized_odds_difference or error_gap
    column: str
    value: float
    by_group: dict[str, dict[str, float]]  # group -> {"rows": n, rate or error: value}
    target_class: str | None = None  # the class judged against the rest (classification)

    def as_json(self) -> dict:
        return asdict(self)


def group_labels(values) -> np.ndarray:
    """Each row's group as text, missing values in a group of their own."""
    return np.array([MISSING_GROUP if _missing(v) else str(v) for v in np.asarray(values, dtype=object).tolist()])


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _spread(rates: dict[str, float]) -> float:
    defined = [r for r in rates.values() if not math.isnan(r)]
    return max(defined) - min(defined) if len(defined) >= 2 else math.nan


def _rate(hits: np.ndarray) -> float:
    return float(np.mean(hits)) if len(hits) else math.nan


def selection_rates(y_pred, groups, positive) -> dict[str, float]:
    """Share of each group's rows predicted ``positive``."""
    y_pred, groups = np.asarray(y_pred), np.asarray(groups)
    return {g: _rate(y_pred[groups == g] == positive) for g in np.unique(groups).tolist()}


def demographic_parity_difference(y_pred, groups, positive) -> float:
    """Largest selection rate of a group less the smallest (0: every group is selected alike)."""
    return _spread(selection_rates(y_pred, groups, positive))


def error_rates(y_true, y_pred, groups, positive) -> dict[str, tuple[float, float]]:
    """(true-positive rate, false-positive rate) of each group; NaN where the group has no such rows."""
    y_true, y_pred, groups = np.asarray(y_true), np.asarray(y_pred), np.asarray(groups)
    rates = {}
    for g in np.unique(groups).tolist():
        mine = groups == g
        actual, predicted = y_true[mine] == positive, y_pred[mine] == positive
        rates[g] = (_rate(predicted[actual]), _rate(predicted[~actual]))
    return rates


def equalized_odds_difference(y_true, y_pred, groups, positive) -> float:
    """The larger of the TPR gap and the FPR gap between groups (fairlearn's worst case)."""
    rates = error_rates(y_true, y_pred, groups, positive)
    gaps = [_spread({g: r[i] for g, r in rates.items()}) for i in (0, 1)]
    defined = [gap for gap in gaps if not math.isnan(gap)]
    return max(defined) if defined else math.nan


def group_errors(y_true, y_pred, groups) -> dict[str, float]:
    """Mean absolute error of each group."""
    error, groups = np.abs(np.asarray(y_true, float) - np.asarray(y_pred, float)), np.asarray(groups)
    return {g: float(np.mean(error[groups == g])) for g in np.unique(groups).tolist()}


def error_gap(y_true, y_pred, groups) -> float:
    """Largest mean absolute error of a group less the smallest (regression)."""
    return _spread(group_errors(y_true, y_pred, groups))


def slice_metrics(names, y_true, y_pred, y_score, groups) -> dict[str, dict[str, float]]:
    """Every named metric of ``METRICS`` on each group's rows, with the group's row count under ``rows``; a
    metric undefined on a group (roc_auc over one class) is NaN."""
    y_true, y_pred, groups = np.asarray(y_true), np.asarray(y_pred), np.asarray(groups)
    out = {}
    for g in np.unique(groups).tolist():
        mine = groups == g
        score = None if y_score is None else y_score[mine]
        values = {}
        for name in names:
            try:
                values[name] = METRICS[name].compute(y_true[mine], y_pred[mine], score)
            except ValueError:  # a metric scikit-learn refuses on this group's rows
                values[name] = math.nan
        out[g] = {"rows": int(mine.sum()), **values}
    return out


def fairness_figures(task: str, column: str, y_true, y_pred, groups, classes: list | None) -> list[GroupFigure]:
    """The figures that fit ``task`` for one sensitive column. ``y_true`` and ``y_pred`` are class indices
    for classifiers (``classes`` names them), values for regression."""
    groups = np.asarray(groups)
    counts = {g: int(np.sum(groups == g)) for g in np.unique(groups).tolist()}
    if task == "regression":
        errors = group_errors(y_true, y_pred, groups)
        by_group = {g: {"rows": counts[g], "mae": e} for g, e in errors.items()}
        return [GroupFigure("error_gap", column, _spread(errors), by_group)]
    positives = [1] if task == "binary" else range(len(classes))
    parity = [_parity(column, y_pred, groups, counts, p, classes) for p in positives]
    odds = [_odds(column, y_true, y_pred, groups, counts, p, classes) for p in positives]
    return [_worst(parity), _worst(odds)]


def _parity(column, y_pred, groups, counts, positive, classes) -> GroupFigure:
    rates = selection_rates(y_pred, groups, positive)
    by_group = {g: {"rows": counts[g], "selection_rate": r} for g, r in rates.items()}
    return GroupFigure("demographic_parity_difference", column, _spread(rates), by_group, str(classes[positive]))


def _odds(column, y_true, y_pred, groups, counts, positive, classes) -> GroupFigure:
    rates = error_rates(y_true, y_pred, groups, positive)
    by_group = {g: {"rows": counts[g], "tpr": tpr, "fpr": fpr} for g, (tpr, fpr) in rates.items()}
    value = equalized_odds_difference(y_true, y_pred, groups, positive)
    return GroupFigure("equalized_odds_difference", column, value, by_group, str(classes[positive]))


def _worst(figures: list[GroupFigure]) -> GroupFigure:
    """The class with the largest figure; an undefined one counts as the worst, as no limit accepts it."""
    return max(figures, key=lambda f: math.inf if math.isnan(f.value) else f.value)
