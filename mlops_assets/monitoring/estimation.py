"""Performance before labels: a classifier's online metric estimated from its served probabilities.

Confidence-based performance estimation (NannyML's CBPE): the served scores are calibrated on the served
version's fixed holdout, and the metric is its expectation under the calibrated probabilities, as if each
row's outcome were drawn from them. This holds under covariate shift (the inputs move, ``P(y | x)`` does not)
and fails silently under concept change, which only labels show.

What can be calibrated is what the inference log keeps of a row: a binary model's positive-class probability,
a multiclass model's winning-class probability only.

- accuracy, any classifier: the chance that the prediction is right as an isotonic function of the top-class
  confidence (a binary model's ``max(s, 1 - s)``), fitted on the holdout's confidences against whether each
  prediction was right; the estimate is its mean over the window. Binary and multiclass share this.
- roc_auc, binary classifiers: the positive class's probability as an isotonic function of the score, and the
  area under the ROC curve of the expected confusion counts. A multiclass roc_auc needs every class's
  probability, which the log does not keep: ``NotEstimable``.

The stated std has two independent parts, so their variances add:

- sampling: the realised metric around its expectation were the window labelled, given a right calibration
  (the exact Bernoulli std for accuracy, a seeded simulation of the labels for roc_auc);
- calibration: the error a finite holdout puts into the calibration, as it reaches this window: the std of
  the estimate recomputed with the isotonic fits to ``CALIBRATIONS`` bootstrap resamples of the holdout. It is
  measured where the window's scores lie, so it grows with a small holdout and with a shift towards scores
  the holdout has few rows of.

Neither covers a calibration that no longer holds (a concept change, or a shift far past the holdout's scores,
where the model extrapolates): no holdout can measure that. Nor the upward bias that a finite holdout's noisy
calibration gives the roc_auc estimate (the area is not linear in the calibrated probabilities): the bootstrap
sees only part of it, so the estimated roc_auc runs somewhat high, the more so the smaller the holdout.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from mlops_assets.errors import MlopsError
from mlops_assets.spec.vocabulary import ESTIMABLE

SIMULATIONS = 400  # label draws for roc_auc's sampling std; its std is then known to about 4 %
CALIBRATIONS = 200  # bootstrap refits of the calibration; the calibration std is then known to about 5 %


class NotEstimable(MlopsError):
    """A metric the served scores cannot give for this model (``monitoring.performance.estimated``)."""


@dataclass(frozen=True)
class Estimate:
    metric: str
    value: float
    std: float  # of the realised metric around the estimate, were the window labelled: sampling and calibration
    low: float
    high: float
    rows: int
    calibration_std: float  # the part of ``std`` that the finite holdout's calibration puts in


class _Isotonic:
    """An isotonic fit of outcomes on scores, clipped outside the scores seen (scikit-learn's
    ``IsotonicRegression`` with ``out_of_bounds="clip"``), and its fits to bootstrap resamples of the same rows.

    A resample is a vector of integer weights, drawn one at a time (memory stays that of the holdout), so the
    rows are sorted once and tied scores merged once for all ``CALIBRATIONS`` fits, each then one pass of
    scipy's pool-adjacent-violators: a few milliseconds in all for a few thousand rows."""

    def __init__(self, scores: np.ndarray, outcomes: np.ndarray, seed: int):
        self._scores, self._rows = np.unique(scores, return_inverse=True)
        self._outcomes = outcomes
        self._fit = self._fitted(np.ones(len(outcomes)))
        rng, uniform = np.random.default_rng(seed), np.full(len(outcomes), 1 / len(outcomes))
        self._refits = [self._fitted(rng.multinomial(len(outcomes), uniform)) for _ in range(CALIBRATIONS)]

    def _fitted(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from scipy.optimize import isotonic_regression  # deferred: only a drift report that estimates needs it

        total = np.bincount(self._rows, weights, len(self._scores))
        seen = total > 0  # scores a resample left out do not constrain its fit
        mean = np.bincount(self._rows, weights * self._outcomes, len(self._scores))[seen] / total[seen]
        return self._scores[seen], isotonic_regression(mean, weights=total[seen]).x

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        return np.interp(scores, *self._fit)  # linear between the fitted scores, constant past both ends

    def refits(self, scores: np.ndarray):
        """The calibrated ``scores`` under each bootstrap refit, one array at a time."""
        return (np.interp(scores, *fit) for fit in self._refits)


class Calibrator:
    """The served scores calibrated on the served version's labelled holdout: the chance that a prediction is
    right given its top-class confidence, and for a binary model the positive class's probability given its
    score."""

    def __init__(self, proba: np.ndarray, labels: np.ndarray, seed: int = 0):
        """``proba``: the holdout's class probabilities, one column per class, or a binary model's
        positive-class probability alone; ``labels``: the holdout's class indices."""
        proba, labels = np.asarray(proba, dtype=float), np.asarray(labels)
        if proba.ndim == 1:
            proba = np.column_stack([1 - proba, proba])
        self.classes = proba.shape[1]
        right = (proba.argmax(axis=1) == labels).astype(float)  # argmax: a tie goes to the first class, as served
        self.right = _Isotonic(proba.max(axis=1), right, seed)
        self.positive = _Isotonic(proba[:, 1], (labels == 1).astype(float), seed) if self.classes == 2 else None

    def confidence(self, scores: np.ndarray) -> np.ndarray:
        """The top-class probability of logged scores: ``max(s, 1 - s)`` of a binary model's positive-class
        probability, a multiclass model's (already the winning class's) as it is."""
        scores = np.asarray(scores, dtype=float)
        return np.maximum(scores, 1 - scores) if self.classes == 2 else scores


def check_estimable(metric: str, classes: int) -> None:
    """Refuse a metric the logged scores of a ``classes``-class model cannot give, saying what to change."""
    if metric not in ESTIMABLE or (metric == "roc_auc" and classes > 2):
        raise NotEstimable(
            f"monitoring.performance.estimated: {metric} cannot be estimated for a {classes}-class model from "
            "the logged winning-class probability (accuracy can, for any classifier; roc_auc for a binary one): "
            "set monitoring.performance.metric to accuracy, or estimated to false"
        )


def accuracy_std(right: np.ndarray) -> float:
    """Standard deviation of the realised accuracy: a mean of independent Bernoulli(q_i) correctness, where
    ``right`` holds each row's chance ``q_i`` of a right prediction."""
    q = np.asarray(right, dtype=float)
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
    from scipy.stats import rankdata  # deferred: scipy.stats takes a second to import

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
    """The expected ``metric`` on a window of logged scores (see ``Calibrator.confidence``), with a normal
    interval of ``confidence`` from its std (sampling and calibration), clipped to [0, 1]."""
    check_estimable(metric, calibrator.classes)
    scores = np.asarray(scores, dtype=float)
    if metric == "accuracy":
        top = calibrator.confidence(scores)
        right = calibrator.right(top)
        value, sampling = float(np.mean(right)), accuracy_std(right)
        refitted = [float(np.mean(q)) for q in calibrator.right.refits(top)]
    else:
        calibrated = calibrator.positive(scores)
        value, sampling = expected_roc_auc(scores, calibrated), roc_auc_std(scores, calibrated)
        refitted = [expected_roc_auc(scores, p) for p in calibrator.positive.refits(scores)]
    calibration = float(np.std(refitted, ddof=1))
    std = float(np.hypot(sampling, calibration))
    half = NormalDist().inv_cdf(0.5 + confidence / 2) * std
    return Estimate(metric, value, std, max(value - half, 0.0), min(value + half, 1.0), len(scores), calibration)
