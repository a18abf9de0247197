"""The task metrics as functions of row weights, for resampling: each takes (y_true, y_pred, y_score) and
returns a function of a (resamples, rows) weight matrix (bootstrap draw counts, or a dealt arm's rows) that
gives one value per resample from weighted sums over rows, instead of calling scikit-learn once per resample.

The ``*_and_variance`` forms give, for 0/1 weights that select rows, the metric and its sampling variance in
one pass: what studentizes a dealt gain (``evaluation.confidence.gain_interval``). ``metrics.METRICS`` holds
each metric's forms in one record.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def mean_of(per_row: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """The weighted mean of ``per_row``, for weights that sum to its length (draw counts, or a dealt arm's
    rows scaled up to the pooled count)."""
    return lambda weights: weights @ per_row / len(per_row)


def mean_and_variance(per_row: np.ndarray) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The mean of the rows that 0/1 ``weights`` select, and its sampling variance."""

    def mean_and_variance(weights):
        count = weights.sum(axis=1)
        mean = weights @ per_row / count
        return mean, np.maximum(weights @ (per_row * per_row) / count - mean * mean, 0.0) / count

    return mean_and_variance


def correct(y, pred, score):
    return (np.asarray(y) == pred).astype(float)


def absolute_error(y, pred, score):
    return np.abs(np.asarray(y, float) - pred)


def squared_error(y, pred, score):
    return (np.asarray(y, float) - pred) ** 2


def row_log_loss(y, pred, score):
    eps = np.finfo(score.dtype).eps  # scikit-learn's clipping
    return -np.log(np.clip(score[np.arange(len(y)), y.astype(int)], eps, 1 - eps))


def rmse(y, pred, score):
    return lambda weights: np.sqrt(mean_of(squared_error(y, pred, score))(weights))


def rmse_and_variance(y, pred, score):
    """The variance of the mean squared error, through the square root (the delta method)."""
    of_squares = mean_and_variance(squared_error(y, pred, score))

    def rmse_and_variance(weights):
        mse, variance = of_squares(weights)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.sqrt(mse), np.where(mse > 0, variance / (4 * mse), 0.0)

    return rmse_and_variance


def r2(y, pred, score):
    y = np.asarray(y, float)

    def r2(weights):
        n, total, squares = len(y), weights @ y, weights @ (y * y)
        spread = squares - total * total / n
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(spread > 0, 1 - (weights @ (y - pred) ** 2) / spread, np.nan)

    return r2


def f1_of(y, pred, labels):
    """Mean F1 over ``labels`` present in each resample (in its truths or predictions), as scikit-learn."""
    hits = np.stack([(y == c) & (pred == c) for c in labels], axis=1).astype(float)
    false_pos = np.stack([(y != c) & (pred == c) for c in labels], axis=1).astype(float)
    false_neg = np.stack([(y == c) & (pred != c) for c in labels], axis=1).astype(float)

    def f1(weights):
        tp, fp, fn = weights @ hits, weights @ false_pos, weights @ false_neg
        with np.errstate(invalid="ignore", divide="ignore"):
            per_label = np.where(tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
        return np.nanmean(per_label, axis=1) if len(labels) > 1 else np.nan_to_num(per_label[:, 0])

    return f1


def f1(y, pred, score):
    return f1_of(y, pred, [1]) if len(np.unique(y)) <= 2 else f1_macro(y, pred, score)


def f1_macro(y, pred, score):
    return f1_of(y, pred, np.union1d(y, pred))


def tied_groups(y, score) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Weighted counts of positives and negatives per group of tied scores, groups in rising score."""
    order = np.argsort(score[:, 1], kind="stable")
    ranked, positive = score[order, 1], (np.asarray(y)[order] == 1).astype(float)
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])

    def counts(weights):
        w = weights[:, order]
        return np.add.reduceat(w * positive, starts, axis=1), np.add.reduceat(w * (1 - positive), starts, axis=1)

    return counts


def roc_auc(y, pred, score):
    """Weighted Mann-Whitney: per resample, P(score of a positive > score of a negative) + half the ties."""
    counts = tied_groups(y, score)

    def auc(weights):
        pos, neg = counts(weights)
        below = np.cumsum(neg, axis=1) - neg
        with np.errstate(invalid="ignore", divide="ignore"):
            return (pos * (below + neg / 2)).sum(axis=1) / (pos.sum(axis=1) * neg.sum(axis=1))

    return auc


def roc_auc_and_variance(y, pred, score):
    """The AUC of the rows that 0/1 weights select and DeLong's variance of it: the spread of each positive's
    share of negatives ranked below it, over the positives, plus the same for the negatives."""
    counts = tied_groups(y, score)

    def auc_and_variance(weights):
        pos, neg = counts(weights)
        positives, negatives = pos.sum(axis=1, keepdims=True), neg.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            of_positives = (np.cumsum(neg, axis=1) - neg / 2) / negatives  # negatives below, half the ties
            of_negatives = (positives - np.cumsum(pos, axis=1) + pos / 2) / positives  # positives above
            auc = (pos * of_positives).sum(axis=1, keepdims=True) / positives
            spread_positives = (pos * (of_positives - auc) ** 2).sum(axis=1, keepdims=True) / positives
            spread_negatives = (neg * (of_negatives - auc) ** 2).sum(axis=1, keepdims=True) / negatives
            return auc[:, 0], (spread_positives / positives + spread_negatives / negatives)[:, 0]

    return auc_and_variance


def accuracy(y, pred, score):
    return mean_of(correct(y, pred, score))


def accuracy_and_variance(y, pred, score):
    return mean_and_variance(correct(y, pred, score))


def log_loss(y, pred, score):
    return mean_of(row_log_loss(y, pred, score))


def log_loss_and_variance(y, pred, score):
    return mean_and_variance(row_log_loss(y, pred, score))


def mae(y, pred, score):
    return mean_of(absolute_error(y, pred, score))


def mae_and_variance(y, pred, score):
    return mean_and_variance(absolute_error(y, pred, score))
