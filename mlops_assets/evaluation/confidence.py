"""Confidence intervals for the task metrics of ``mlops_assets.model.metrics``, as pure functions.

Accuracy is a binomial proportion and gets the Wilson score interval, which keeps its coverage near 0 and 1
where the normal approximation does not. Every other metric gets a percentile bootstrap with a fixed seed,
so the same predictions always give the same interval. The bootstrap is vectorised: each block of
resamples is a (resamples, rows) matrix of how often each row was drawn, and every metric is computed
from weighted sums over rows, not by calling scikit-learn once per resample.

Two models that answered different rows (the arms of a canary) are compared by ``gain_interval``, which
deals the pooled rows between the arms again with the same weighted sums. Two models scored on the same
rows (a holdout of recent production rows) are compared by ``paired_gain_interval``, which draws the rows
once per resample for both, so the noise of which rows were drawn cancels out of their difference.

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

from mlops_assets.model.metrics import METRICS, gain

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
    replicates = bootstrap(METRICS[name].resampled(y_true, y_pred, y_score), len(y_true), n_boot, seed)
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
    permutation test instead: dealing the pooled rows between the arms again, in the arms' sizes, shows
    the gains that chance alone makes, and the interval is the observed gain less those (a shift model).
    The dealt gain is studentized (divided by its standard error: DeLong's for roc_auc, the per-row
    spread for accuracy, mae, rmse and log_loss), so the test holds its level when the arms have the same
    metric with differently spread errors, not only when their rows are interchangeable; f1 and r2 are
    dealt as they are, which assumes the latter. The upper end is below 0 when a one-sided test finds the
    challenger worse at level ``(1 - confidence) / 2``, up to the Monte-Carlo error of ``n_perm`` deals.

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
    metric = METRICS[name]
    studentized = metric.resampled_with_variance is not None
    of_rows = (metric.resampled_with_variance if studentized else metric.resampled)(y_true, y_pred, y_score)

    def gain_and_error(to_challenger: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mine, theirs = to_challenger.astype(float), (~to_challenger).astype(float)
        if not studentized:  # f1, r2: dealt as they are
            # the statistics take weights summing to the pooled row count, as the bootstrap's draw counts do
            gains = gain(name, of_rows(mine * (rows / dealt)), of_rows(theirs * (rows / (rows - dealt))))
            return gains, np.ones_like(gains)
        (my_value, my_variance), (their_value, their_variance) = of_rows(mine), of_rows(theirs)
        return gain(name, my_value, their_value), np.sqrt(my_variance + their_variance)

    (observed_error,) = gain_and_error((np.arange(rows) >= rows - dealt)[None, :])[1]
    if observed_error == 0:  # each arm's rows all alike (two perfect arms): nothing to deal
        return observed, observed, observed
    rng = np.random.default_rng(seed)
    per_block = max(1, BLOCK_CELLS // rows)
    dealt_t = []
    for start in range(0, n_perm, per_block):
        size = min(per_block, n_perm - start)
        gains, errors = gain_and_error(rng.permuted(np.tile(np.arange(rows) < dealt, (size, 1)), axis=1))
        with np.errstate(invalid="ignore", divide="ignore"):  # no gain but rounding's: no spread to divide by
            dealt_t.append(np.where(np.isclose(gains, 0, rtol=0, atol=1e-12), 0.0, gains / errors))
    dealt_t = np.concatenate(dealt_t)
    observed_t = observed / observed_error
    # a deal that gives the observed value, but for rounding in the weighted sums, is a tie: the test must
    # not reject a challenger on the last bit of a float
    dealt_t[np.isclose(dealt_t, observed_t, rtol=1e-9, atol=1e-12)] = observed_t
    tail = (1 - confidence) / 2 * 100
    chance_low, chance_high = np.nanpercentile(dealt_t, [tail, 100 - tail])
    return observed, float(observed - chance_high * observed_error), float(observed - chance_low * observed_error)


def paired_gain_interval(
    name: str,
    y_true: np.ndarray,
    champion: tuple[np.ndarray, np.ndarray | None],
    challenger: tuple[np.ndarray, np.ndarray | None],
    sample_weight: np.ndarray | None = None,
    confidence: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(gain, low, high): the challenger's gain over the champion on a metric of ``METRICS`` (positive when
    better, as ``metrics.gain``), both models given as (y_pred, y_score) on the same rows ``y_true``.

    A percentile bootstrap of the gain in which each resample draws the rows once and scores both models on
    that draw: most of either model's error comes from which rows were drawn (hard rows are hard for both),
    and it cancels in the difference, so the interval is far narrower than two independent ones would give.
    ``sample_weight`` (importance weights of the rows) weighs each row as ``metrics`` does; the point gain is
    the gain of the weighted metrics. Resamples on which the metric is undefined (roc_auc with one class)
    are left out of the percentiles.

    >>> y = np.array([0, 1] * 20)
    >>> same = (y, np.eye(2)[y])
    >>> paired_gain_interval("roc_auc", y, same, same)
    (0.0, 0.0, 0.0)
    """
    y_true = np.asarray(y_true)
    compute = METRICS[name].compute
    observed = gain(name, compute(y_true, *challenger, sample_weight), compute(y_true, *champion, sample_weight))
    if math.isnan(observed) or len(y_true) == 0:
        return observed, math.nan, math.nan
    of_champion, of_challenger = (METRICS[name].resampled(y_true, *model) for model in (champion, challenger))
    to_weights = _importance_weighted(sample_weight)

    def gains(draws: np.ndarray) -> np.ndarray:
        weights = to_weights(draws)
        return gain(name, of_challenger(weights), of_champion(weights))

    replicates = bootstrap(gains, len(y_true), n_boot, seed)
    if np.isnan(replicates).all():
        return observed, math.nan, math.nan
    tail = (1 - confidence) / 2 * 100
    low, high = np.nanpercentile(replicates, [tail, 100 - tail])
    return observed, float(low), float(high)


def _importance_weighted(sample_weight: np.ndarray | None) -> Callable[[np.ndarray], np.ndarray]:
    """Draw counts times the rows' importance weights, scaled to sum to the row count in each resample.

    The resampled forms of ``METRICS`` take weights summing to the row count (``resampled.mean_of`` divides
    by it, ``resampled.r2`` centres with it), which draw counts do. Multiplied by importance weights they no
    longer do, and each resample's sum differs: scaling each resample to the row count makes every statistic
    the weighted metric of the drawn rows, as ``metrics`` computes it (the self-normalised, ratio estimate). A resample
    that drew only rows of zero weight has no metric and gives NaN, left out as an undefined one.
    """
    if sample_weight is None:
        return lambda draws: draws
    sample_weight = np.asarray(sample_weight, float)

    def weighted(draws: np.ndarray) -> np.ndarray:
        weights = draws * sample_weight
        with np.errstate(invalid="ignore", divide="ignore"):
            return weights * (draws.shape[1] / weights.sum(axis=1, keepdims=True))

    return weighted


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
