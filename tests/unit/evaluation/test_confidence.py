import math

import numpy as np
import pytest

from mlops_assets.evaluation.confidence import (
    _importance_weighted,
    bootstrap,
    gain_interval,
    metric_interval,
    paired_gain_interval,
    wilson_interval,
)
from mlops_assets.model.metrics import METRICS, gain


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
    "accuracy": _binary,
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
    vectorised = METRICS[name].resampled(y, pred, score)(weights)
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


@pytest.mark.parametrize("name", CASES)
def test_rows_dealt_to_two_arms_give_each_arm_its_metric(name):
    y, pred, score = CASES[name](120)
    to_challenger = np.random.default_rng(6).permutation(120) < 30
    statistic = METRICS[name].resampled(y, pred, score)
    weights = np.stack([to_challenger * (120 / 30), ~to_challenger * (120 / 90)])
    for arm, value in zip((to_challenger, ~to_challenger), statistic(weights), strict=True):
        expected = METRICS[name].compute(y[arm], pred[arm], None if score is None else score[arm])
        assert value == pytest.approx(expected, rel=1e-9)


def _ranked(rng, n: int, overlap: float):
    """Binary rows whose scores separate the classes, but for a share ``overlap`` of rows scored at random."""
    y = rng.integers(0, 2, n)
    p1 = np.where(rng.random(n) < overlap, rng.random(n), np.where(y == 1, 0.9, 0.1))
    return y, (p1 > 0.5).astype(int), np.column_stack([1 - p1, p1])


def test_a_perfectly_ranked_champion_does_not_make_a_like_challenger_look_worse():
    """The canary that rolled back a retrained copy of the champion: the champion's few labelled rows
    happened to be ranked perfectly, so every bootstrap resample of them is perfect too."""
    rng = np.random.default_rng(53)  # a seed where chance dealt the champion none of the randomly scored rows
    champion, challenger = _ranked(rng, 100, 0.04), _ranked(rng, 100, 0.04)
    assert METRICS["roc_auc"].compute(*champion) == 1.0
    _, _, challenger_high = metric_interval("roc_auc", *challenger)
    assert challenger_high < 1.0  # its own interval misses the champion's value: the old rule rolled it back
    observed, low, high = gain_interval("roc_auc", champion, challenger)
    assert observed == pytest.approx(METRICS["roc_auc"].compute(*challenger) - 1.0)
    assert low < observed < 0 <= high


@pytest.mark.parametrize("name", ["accuracy", "roc_auc"])
def test_alike_arms_are_found_worse_about_as_often_as_the_level_allows(name):
    """95% intervals: a challenger as good as the champion is confidently worse in about 2.5% of canaries,
    not more, with the arms' sizes as a 10% canary gives them."""
    rng = np.random.default_rng(12)
    found_worse = []
    for seed in range(300):
        champion, challenger = _binary(200, seed=rng.integers(1 << 30)), _binary(30, seed=rng.integers(1 << 30))
        found_worse.append(gain_interval(name, champion, challenger, n_perm=500, seed=seed)[2] < 0)
    assert 0 < np.mean(found_worse) <= 0.045


def test_delong_variance_of_the_selected_rows_equals_its_definition():
    y, _, score = _binary(90)  # with tied scores
    selected = np.random.default_rng(7).random(90) < 0.6
    positives, negatives = score[selected & (y == 1), 1], score[selected & (y == 0), 1]
    below = np.array([np.mean((p > negatives) + 0.5 * (p == negatives)) for p in positives])
    above = np.array([np.mean((positives > q) + 0.5 * (positives == q)) for q in negatives])
    auc = below.mean()
    expected = np.mean((below - auc) ** 2) / len(below) + np.mean((above - auc) ** 2) / len(above)
    (auc_of_selected,), (variance,) = METRICS["roc_auc"].resampled_with_variance(y, None, score)(
        selected[None, :].astype(float)
    )
    assert variance == pytest.approx(expected, rel=1e-9)
    assert auc_of_selected == pytest.approx(auc, rel=1e-12)


@pytest.mark.parametrize("name", ["accuracy", "mae", "log_loss"])
def test_the_variance_of_a_mean_metric_is_its_rows_spread_over_their_count(name):
    y, pred, score = CASES[name](100)
    selected = np.arange(100) < 40
    per_row = {
        "accuracy": lambda: (y == pred).astype(float),
        "mae": lambda: np.abs(y - pred),
        "log_loss": lambda: -np.log(score[np.arange(100), y.astype(int)]),
    }[name]()[selected]
    (mean,), (variance,) = METRICS[name].resampled_with_variance(y, pred, score)(selected[None, :].astype(float))
    assert variance == pytest.approx(np.var(per_row) / 40, rel=1e-9)
    assert mean == pytest.approx(np.mean(per_row), rel=1e-12)


def test_an_equal_metric_with_differently_spread_errors_is_not_found_worse():
    """Same mean absolute error, 1.0: the champion's errors normal, the small challenger's mostly 0.2 and
    one in ten 8.2. Its rows are not interchangeable with the champion's, which a plain permutation test
    assumes (it rolled back about 20% of such canaries); the studentized one keeps near its level."""
    rng = np.random.default_rng(14)
    found_worse = []
    for seed in range(300):
        y = rng.normal(10, 3, 300)
        champion_errors = rng.normal(0, np.sqrt(np.pi / 2), 270)
        challenger_errors = np.where(rng.random(30) < 0.9, 0.2, 8.2) * rng.choice([-1, 1], 30)
        champion, challenger = (y[:270], y[:270] + champion_errors, None), (y[270:], y[270:] + challenger_errors, None)
        found_worse.append(gain_interval("mae", champion, challenger, n_perm=500, seed=seed)[2] < 0)
    assert np.mean(found_worse) <= 0.05


def test_a_worse_challenger_is_found_and_its_interval_holds_the_true_gain():
    rng = np.random.default_rng(13)
    y = rng.normal(10, 3, 600)
    champion = (y[:300], y[:300] + rng.normal(0, 1, 300), None)
    challenger = (y[300:], y[300:] + rng.normal(0, 2, 300), None)  # rmse 2 against 1: a gain of -1
    observed, low, high = gain_interval("rmse", champion, challenger)
    assert observed == pytest.approx(
        gain("rmse", METRICS["rmse"].compute(*challenger), METRICS["rmse"].compute(*champion))
    )
    assert low < -1.0 < high < 0


def test_perfect_arms_tie_and_undefined_metrics_give_no_interval():
    y = np.array([0, 1] * 10)
    perfect = (y, y, np.eye(2)[y])
    assert gain_interval("accuracy", perfect, perfect) == (0.0, 0.0, 0.0)
    one_class = (np.ones(6, dtype=int), np.ones(6, dtype=int), np.tile([0.2, 0.8], (6, 1)))
    observed, low, high = gain_interval("roc_auc", perfect, one_class)
    assert math.isnan(observed) and math.isnan(low) and math.isnan(high)


def _two_models(name: str, n: int, seed: int):
    """The same rows, scored by two models of a kind: the second one's outputs drawn afresh."""
    y, champion_pred, champion_score = CASES[name](n, seed=seed)
    _, challenger_pred, challenger_score = CASES[name](n, seed=seed + 100)
    return y, (champion_pred, champion_score), (challenger_pred, challenger_score)


@pytest.mark.parametrize("name", CASES)
def test_a_model_compared_with_itself_gains_nothing_with_certainty(name):
    y, model, _ = _two_models(name, 200, 3)
    weights = np.random.default_rng(8).uniform(0.2, 3.0, 200)
    assert paired_gain_interval(name, y, model, model, n_boot=300) == (0.0, 0.0, 0.0)
    assert paired_gain_interval(name, y, model, model, sample_weight=weights, n_boot=300) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize("name", CASES)
def test_the_paired_gain_is_the_gain_of_the_weighted_metrics(name):
    y, champion, challenger = _two_models(name, 300, 4)
    weights = np.random.default_rng(9).uniform(0.1, 5.0, 300)
    for sample_weight in (None, weights):
        observed, low, high = paired_gain_interval(name, y, champion, challenger, sample_weight, n_boot=300)
        compute = METRICS[name].compute
        expected = gain(name, compute(y, *challenger, sample_weight), compute(y, *champion, sample_weight))
        assert observed == expected
        assert low <= observed <= high


@pytest.mark.parametrize("name", CASES)
def test_importance_weighted_resamples_equal_the_weighted_metric_of_the_drawn_rows(name):
    """Draw counts times importance weights no longer sum to the row count the statistics assume; scaled
    back to it, each resample is the weighted metric of its rows, as metrics.py computes it."""
    y, pred, score = CASES[name](120)
    rng = np.random.default_rng(10)
    importance = rng.uniform(0.1, 5.0, 120)
    draws = rng.integers(0, 120, size=(5, 120))
    counts = np.stack([np.bincount(d, minlength=120) for d in draws])
    vectorised = METRICS[name].resampled(y, pred, score)(_importance_weighted(importance)(counts))
    for d, value in zip(draws, vectorised, strict=True):
        expected = METRICS[name].compute(y[d], pred[d], None if score is None else score[d], importance[d])
        assert value == pytest.approx(expected, rel=1e-9)


def test_a_clearly_better_challenger_has_an_interval_above_zero():
    rng = np.random.default_rng(15)
    y = rng.normal(10, 3, 400)
    champion, challenger = (y + rng.normal(0, 1.5, 400), None), (y + rng.normal(0, 1.0, 400), None)
    weights = rng.uniform(0.5, 2.0, 400)
    for sample_weight in (None, weights):
        observed, low, high = paired_gain_interval("rmse", y, champion, challenger, sample_weight)
        assert 0 < low < observed < high
        assert low < 0.5 < high  # rmse 1.5 against 1.0


def test_pairing_narrows_the_interval_when_the_models_err_alike():
    """Two models sharing most of their error: which rows were drawn moves both alike, which a comparison
    of separate samples cannot tell from a difference between the models."""
    rng = np.random.default_rng(16)
    y = rng.normal(10, 3, 500)
    shared = rng.normal(0, 1, 500)
    champion, challenger = y + shared, y + shared + rng.normal(0, 0.2, 500)
    _, paired_low, paired_high = paired_gain_interval("mae", y, (champion, None), (challenger, None))
    _, unpaired_low, unpaired_high = gain_interval("mae", (y, champion, None), (y, challenger, None))
    assert paired_high - paired_low < (unpaired_high - unpaired_low) / 4


def test_the_paired_interval_is_reproducible_and_the_seed_matters():
    y, champion, challenger = _two_models("roc_auc", 300, 5)
    first = paired_gain_interval("roc_auc", y, champion, challenger, seed=3)
    assert first == paired_gain_interval("roc_auc", y, champion, challenger, seed=3)
    assert first != paired_gain_interval("roc_auc", y, champion, challenger, seed=4)


def test_paired_resamples_with_one_class_are_left_out():
    y = np.array([0, 1, 1])
    champion = (y, np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]]))  # ranks the rows perfectly
    challenger = (y, np.array([[0.5, 0.5], [0.1, 0.9], [0.9, 0.1]]))  # ranks the second positive below the negative
    observed, low, high = paired_gain_interval("roc_auc", y, champion, challenger, n_boot=400)

    def by_hand(counts):  # the challenger misranks the share of drawn positives that are the second one
        negative, first, second = counts.T.astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where((negative > 0) & (first + second > 0), -second / (first + second), np.nan)

    gains = bootstrap(by_hand, 3, 400, 0)  # the same draws: the same seed and row count
    assert np.isnan(gains).sum() > 50  # many resamples had one class
    assert observed == -0.5
    assert (low, high) == pytest.approx(tuple(np.nanpercentile(gains, [2.5, 97.5])), rel=1e-12)
