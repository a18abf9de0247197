import math

import numpy as np
import pytest

from mlops_assets.confidence import _FROM_WEIGHTS, metric_interval, wilson_interval
from mlops_assets.metrics import METRICS


def _binary(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p1 = np.clip(0.5 + (y - 0.5) * 0.4 + rng.normal(0, 0.25, n), 0.01, 0.99)
    p1[: n // 10] = 0.5  # ties in the scores
    return y, (p1 > 0.5).astype(int), np.column_stack([1 - p1, p1])


def _multiclass(n: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    pred = np.where(rng.random(n) < 0.7, y, rng.integers(0, 3, n))
    score = rng.dirichlet(np.ones(3), n) * 0.5
    score[np.arange(n), pred] += 0.5
    return y, pred, score


def _regression(n: int, seed: int = 2):
    rng = np.random.default_rng(seed)
    y = rng.normal(10, 3, n)
    return y, y + rng.normal(0, 1, n), None


CASES = {
    "roc_auc": _binary,
    "f1": _binary,
    "log_loss": _binary,
    "f1_macro": _multiclass,
    "rmse": _regression,
    "mae": _regression,
    "r2": _regression,
}


def test_wilson_by_hand():
    z = 1.959963984540054
    p, n = 0.7, 10
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    assert wilson_interval(7, 10) == pytest.approx((centre - half, centre + half), rel=1e-12)
    low, high = wilson_interval(0, 20)
    assert low == 0.0 and high == pytest.approx(z**2 / (20 + z**2))  # the interval never leaves [0, 1]
    widths = [high - low for low, high in (wilson_interval(45, 50, c) for c in (0.9, 0.95, 0.99))]
    assert widths == sorted(widths)


def test_accuracy_uses_the_wilson_interval():
    y = np.array([1, 0, 1, 1, 0, 1, 0, 1, 1, 1])
    assert metric_interval("accuracy", y, np.ones(10, dtype=int), None) == (0.7, *wilson_interval(7, 10))


@pytest.mark.parametrize("name", CASES)
def test_vectorised_resamples_equal_the_metric_on_each_resample(name):
    y, pred, score = CASES[name](120)
    rng = np.random.default_rng(5)
    draws = rng.integers(0, len(y), size=(6, len(y)))
    weights = np.stack([np.bincount(d, minlength=len(y)) for d in draws])
    vectorised = _FROM_WEIGHTS[name](y, pred, score)(weights)
    for d, value in zip(draws, vectorised, strict=True):
        expected = METRICS[name].compute(y[d], pred[d], None if score is None else score[d])
        assert value == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("name", CASES)
def test_bootstrap_interval_contains_the_value_and_narrows_with_more_rows(name):
    small, large = (metric_interval(name, *CASES[name](n), n_boot=500) for n in (200, 5_000))
    for value, low, high in (small, large):
        assert low <= value <= high
    assert large[2] - large[1] < (small[2] - small[1]) / 2  # about 1/sqrt(25) as wide


def test_the_interval_is_reproducible_and_the_seed_matters():
    data = _regression(300)
    assert metric_interval("rmse", *data, seed=3) == metric_interval("rmse", *data, seed=3)
    assert metric_interval("rmse", *data, seed=3) != metric_interval("rmse", *data, seed=4)
    assert metric_interval("rmse", *data, confidence=0.99)[1] < metric_interval("rmse", *data)[1]


def test_resamples_without_both_classes_are_left_out():
    y, pred, score = np.array([0, 1, 1]), np.array([0, 1, 1]), np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]])
    value, low, high = metric_interval("roc_auc", y, pred, score, n_boot=200)
    assert value == 1.0 and low == high == 1.0
