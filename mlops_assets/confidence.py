"""Confidence intervals for the task metrics of ``mlops_assets.metrics``, as pure functions.

Accuracy is a binomial proportion and gets the Wilson score interval, which keeps its coverage near 0 and 1
where the normal approximation does not. Every other metric gets a percentile bootstrap with a fixed seed,
so the same predictions always give the same interval. The bootstrap is vectorised: each block of
resamples is a (resamples, rows) matrix of how often each row was drawn, and every metric is computed
from weighted sums over rows, not by calling scikit-learn once per resample.

Two models that answered different rows (the arms of a canary) are compared by ``gain_interval``, which
deals the pooled rows between the arms again with the same weighted sums.

>>> import numpy as np
>>> y = np.array([1, 0, 1, 1, 0, 1, 0, 1, 1, 1])
>>> value, low, high = metric_interval("accuracy", y, np.ones(10, dtype=int), None)
>>> value, round(low, 3), round(high, 3)
(0.7, 0.397, 0.892)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist

import numpy as np

from mlops_assets.metrics import METRICS, gain

BLOCK_CELLS = 1 << 22  # resamples x rows per block: bounds the memory of the bootstrap to ~32 MiB


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (successes out of trials)."""
    if trials == 0:
        return math.nan, math.nan
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p, n = successes / trials, trials
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def metric_interval(
    name: str,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    y_score: np.ndarray | None,
    confidence: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(value, low, high) of a metric in ``METRICS`` at the given two-sided confidence level.

    ``y_score`` holds class probabilities (roc_auc and log_loss need it). Bootstrap resamples on which
    the metric is undefined (roc_auc with a single class) are left out of the percentiles.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    value = METRICS[name].compute(y_true, y_pred, y_score)
    if len(y_true) == 0:
        return value, math.nan, math.nan
    if name == "accuracy":
        return (value, *wilson_interval(int(np.sum(y_true == y_pred)), len(y_true), confidence))
    replicates = bootstrap(_FROM_WEIGHTS[name](y_true, y_pred, y_score), len(y_true), n_boot, seed)
    tail = (1 - confidence) / 2 * 100
    low, high = np.nanpercentile(replicates, [tail, 100 - tail])
    return value, float(low), float(high)


def gain_interval(
    name: str,
    champion: tuple[np.ndarray, np.ndarray, np.ndarray | None],
    challenger: tuple[np.ndarray, np.ndarray, np.ndarray | None],
    confidence: float = 0.95,
    n_perm: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(gain, low, high): the challenger's gain over the champion on a metric of ``METRICS`` (positive when
    better, as ``metrics.gain``), each arm given as (y_true, y_pred, y_score) of the rows it answered.

    Both arms are samples, so both arms' noise must widen the interval. Bootstrapping each arm does not
    do it where a small sample is ranked or classified perfectly (a good model's canary often is): every
    resample of it is perfect too, and that arm looks exactly known. The interval here inverts a
    permutation test instead: if the arms were alike their rows would be exchangeable, so dealing the
    pooled rows between them again, in the arms' sizes, shows the gains that chance alone makes, and the
    interval is the observed gain less those (a shift model). Its upper end is below 0 exactly when a
    one-sided permutation test finds the challenger worse at level ``(1 - confidence) / 2``.

    >>> y = np.array([0, 1] * 20)
    >>> perfect, one_swap = np.eye(2)[y], np.eye(2)[np.r_[1, y[1:]]]
    >>> observed, low, high = gain_interval("roc_auc", (y, y, perfect), (y, y, one_swap))
    >>> round(observed, 4), low < 0 < high
    (-0.025, True)
    """
    arms = (champion, challenger)
    y_true, y_pred = (np.concatenate([arm[i] for arm in arms]) for i in (0, 1))
    y_score = None if champion[2] is None else np.concatenate([champion[2], challenger[2]])
    compute = METRICS[name].compute
    observed = gain(name, compute(*challenger), compute(*champion))
    rows, dealt = len(y_true), len(challenger[0])
    if math.isnan(observed) or dealt in (0, rows):
        return observed, math.nan, math.nan
    statistic = _FROM_WEIGHTS[name](y_true, y_pred, y_score)
    rng = np.random.default_rng(seed)
    per_block = max(1, BLOCK_CELLS // rows)
    gains = []
    for start in range(0, n_perm, per_block):
        size = min(per_block, n_perm - start)
        to_challenger = rng.permuted(np.tile(np.arange(rows) < dealt, (size, 1)), axis=1)
        # weights summing to the pooled row count, as the bootstrap's draw counts do
        mine, theirs = to_challenger * (rows / dealt), ~to_challenger * (rows / (rows - dealt))
        gains.append(gain(name, statistic(mine), statistic(theirs)))
    gains = np.concatenate(gains)
    # a deal that gives the observed gain, but for rounding in the weighted sums, is a tie: the test must not
    # reject a challenger on the last bit of a float (two perfect arms would otherwise be "worse" half the time)
    gains[np.isclose(gains, observed, rtol=1e-9, atol=1e-12)] = observed
    tail = (1 - confidence) / 2 * 100
    chance_low, chance_high = np.nanpercentile(gains, [tail, 100 - tail])
    return observed, float(observed - chance_high), float(observed - chance_low)


def bootstrap(statistic: Callable[[np.ndarray], np.ndarray], rows: int, n_boot: int, seed: int) -> np.ndarray:
    """``statistic`` on ``n_boot`` resamples of ``rows`` rows drawn with replacement; ``statistic`` takes a
    (resamples, rows) matrix of draw counts and returns one value per resample."""
    rng = np.random.default_rng(seed)
    per_block = max(1, BLOCK_CELLS // rows)
    values = []
    for start in range(0, n_boot, per_block):
        size = min(per_block, n_boot - start)
        draws = rng.integers(0, rows, size=(size, rows)) + (np.arange(size) * rows)[:, None]
        values.append(statistic(np.bincount(draws.ravel(), minlength=size * rows).reshape(size, rows)))
    return np.concatenate(values)


def _mean_of(per_row: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    return lambda weights: weights @ per_row / len(per_row)


def _rmse(y, pred, score):
    return lambda weights: np.sqrt(_mean_of((np.asarray(y, float) - pred) ** 2)(weights))


def _mae(y, pred, score):
    return _mean_of(np.abs(np.asarray(y, float) - pred))


def _r2(y, pred, score):
    y = np.asarray(y, float)

    def r2(weights):
        n, total, squares = len(y), weights @ y, weights @ (y * y)
        spread = squares - total * total / n
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(spread > 0, 1 - (weights @ (y - pred) ** 2) / spread, np.nan)

    return r2


def _log_loss(y, pred, score):
    eps = np.finfo(score.dtype).eps  # scikit-learn's clipping
    return _mean_of(-np.log(np.clip(score[np.arange(len(y)), y.astype(int)], eps, 1 - eps)))


def _f1_of(y, pred, labels):
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


def _f1(y, pred, score):
    return _f1_of(y, pred, [1]) if len(np.unique(y)) <= 2 else _f1_macro(y, pred, score)


def _f1_macro(y, pred, score):
    return _f1_of(y, pred, np.union1d(y, pred))


def _roc_auc(y, pred, score):
    """Weighted Mann-Whitney: per resample, P(score of a positive > score of a negative) + half the ties."""
    order = np.argsort(score[:, 1], kind="stable")
    ranked, positive = score[order, 1], (np.asarray(y)[order] == 1).astype(float)
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])  # groups of tied scores

    def auc(weights):
        w = weights[:, order]
        pos, neg = np.add.reduceat(w * positive, starts, axis=1), np.add.reduceat(w * (1 - positive), starts, axis=1)
        below = np.cumsum(neg, axis=1) - neg
        with np.errstate(invalid="ignore", divide="ignore"):
            return (pos * (below + neg / 2)).sum(axis=1) / (pos.sum(axis=1) * neg.sum(axis=1))

    return auc


_FROM_WEIGHTS = {
    "accuracy": lambda y, pred, score: _mean_of((np.asarray(y) == pred).astype(float)),
    "roc_auc": _roc_auc,
    "f1": _f1,
    "f1_macro": _f1_macro,
    "log_loss": _log_loss,
    "rmse": _rmse,
    "mae": _mae,
    "r2": _r2,
}
