"""Performance before labels: a binary classifier's online metric estimated from its served probabilities.

Confidence-based performance estimation (NannyML's CBPE): the served scores are calibrated on the fixed
holdout (isotonic regression of the holdout's labels on its scores), and the metric is its expectation under
the calibrated probabilities, as if each row's label were drawn from them. This holds under covariate shift
(the inputs move, ``P(y | x)`` does not) and fails silently under concept change, which only labels show.

The uncertainty is the sampling error of the realised metric around the estimate, given the window's scores
and a correct calibration: the exact Bernoulli standard deviation for accuracy, a seeded simulation of the
labels for roc_auc. The calibration's own error (a finite holdout) is not included.

Binary classifiers only: the log keeps the positive class's probability for them, the winning class's only
for a multiclass model, which is not enough to calibrate each class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm, rankdata

ESTIMABLE = ("accuracy", "roc_auc")
SIMULATIONS = 400  # label draws for roc_auc's uncertainty; its std is then known to about 4 %


@dataclass(frozen=True)
class Estimate:
    metric: str
    value: float
    std: float  # of the realised metric around the estimate, were the window labelled
    low: float
    high: float
    rows: int


class Calibrator:
    """Positive-class probability as a function of the served score, fitted on labelled holdout rows."""

    def __init__(self, scores: np.ndarray, labels: np.ndarray):
        from sklearn.isotonic import IsotonicRegression  # deferred: scikit-learn is only needed here

        self._isotonic = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        self._isotonic.fit(np.asarray(scores, dtype=float), np.asarray(labels, dtype=float))

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        return self._isotonic.predict(np.asarray(scores, dtype=float))


def predicted_positive(scores: np.ndarray) -> np.ndarray:
    """The model's decision rule on the positive-class probability: the argmax of ``[1 - s, s]``, so a tie
    goes to the first (negative) class."""
    return np.asarray(scores, dtype=float) > 0.5


def expected_accuracy(scores: np.ndarray, calibrated: np.ndarray) -> float:
    """Mean probability that each row's prediction is right: ``p`` where it predicts positive, else ``1 - p``."""
    return float(np.mean(_correct(scores, calibrated)))


def accuracy_std(scores: np.ndarray, calibrated: np.ndarray) -> float:
    """Standard deviation of the realised accuracy: a mean of independent Bernoulli(q_i) correctness."""
    q = _correct(scores, calibrated)
    return float(np.sqrt(np.sum(q * (1 - q))) / len(q))


def expected_roc_auc(scores: np.ndarray, calibrated: np.ndarray) -> float:
    """Area under the ROC curve of expected confusion counts: at each threshold t among the scores,
    E[TP](t) = sum p_i [s_i >= t] and E[FP](t) = sum (1 - p_i) [s_i >= t], over E[P] = sum p_i and
    E[N] = sum (1 - p_i); trapezoids between thresholds. NaN when the window is expected all of one class."""
    s, p = np.asarray(scores, dtype=float), np.asarray(calibrated, dtype=float)
    positives, negatives = p.sum(), (1 - p).sum()
    if positives <= 0 or negatives <= 0:
        return float("nan")
    order = np.argsort(-s, kind="stable")
    s, p = s[order], p[order]
    last_of_tie = np.r_[s[1:] != s[:-1], True]  # rows with equal scores pass a threshold together
    tpr = np.r_[0.0, np.cumsum(p)[last_of_tie] / positives]
    fpr = np.r_[0.0, np.cumsum(1 - p)[last_of_tie] / negatives]
    return float(np.trapezoid(tpr, fpr))


def roc_auc_std(scores: np.ndarray, calibrated: np.ndarray, seed: int = 0) -> float:
    """Standard deviation of the realised roc_auc when each label is drawn from its calibrated probability
    (draws of a single class are left out). The Mann-Whitney form makes each draw one dot product."""
    p = np.asarray(calibrated, dtype=float)
    ranks = rankdata(np.asarray(scores, dtype=float))
    draws = np.random.default_rng(seed).random((SIMULATIONS, len(p))) < p
    n1 = draws.sum(axis=1)
    n0 = len(p) - n1
    both = (n1 > 0) & (n0 > 0)
    if both.sum() < 2:
        return float("nan")
    auc = (draws[both] @ ranks - n1[both] * (n1[both] + 1) / 2) / (n1[both] * n0[both])
    return float(np.std(auc, ddof=1))


def estimate(metric: str, scores: np.ndarray, calibrator: Calibrator, confidence: float) -> Estimate:
    """The expected ``metric`` (one of ``ESTIMABLE``) on a window of served positive-class probabilities, with
    a normal interval of ``confidence`` from its std, clipped to [0, 1]."""
    scores = np.asarray(scores, dtype=float)
    calibrated = calibrator(scores)
    if metric == "accuracy":
        value, std = expected_accuracy(scores, calibrated), accuracy_std(scores, calibrated)
    else:
        value, std = expected_roc_auc(scores, calibrated), roc_auc_std(scores, calibrated)
    half = float(norm.ppf(0.5 + confidence / 2)) * std
    return Estimate(metric, value, std, max(value - half, 0.0), min(value + half, 1.0), len(scores))


def _correct(scores: np.ndarray, calibrated: np.ndarray) -> np.ndarray:
    p = np.asarray(calibrated, dtype=float)
    return np.where(predicted_positive(scores), p, 1 - p)
