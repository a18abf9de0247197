"""Confidence-based performance estimation: hand-computed values, self-consistency, and where it holds."""

from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pytest
from pydantic import ValidationError
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import accuracy_score, roc_auc_score

from mlops_assets.monitoring.estimation import (
    Calibrator,
    accuracy_std,
    estimate,
    expected_roc_auc,
    roc_auc_std,
)
from mlops_assets.monitoring.performance import estimated_metadata, estimated_performance
from mlops_assets.sensors.performance import observed
from mlops_assets.spec.operations import Performance


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def test_binary_accuracy_is_the_top_class_construction_checked_against_scikit_learns_isotonic_regression():
    """The chance of a right prediction, fitted on the holdout's top-class confidence ``max(s, 1 - s)``, and
    averaged over the window: the same construction as a multiclass model's winning-class probability."""
    rng = np.random.default_rng(0)
    holdout, labels = model_world(rng, 500, 0.0)
    window, _ = model_world(rng, 300, 0.5)
    right = IsotonicRegression(out_of_bounds="clip").fit(np.maximum(holdout, 1 - holdout), (holdout > 0.5) == labels)
    expected = right.predict(np.maximum(window, 1 - window)).mean()
    assert estimate("accuracy", window, Calibrator(holdout, labels), 0.95).value == pytest.approx(expected)
    as_columns = Calibrator(np.column_stack([1 - holdout, holdout]), labels)
    assert estimate("accuracy", window, as_columns, 0.95) == estimate(
        "accuracy", window, Calibrator(holdout, labels), 0.95
    )


def test_the_sampling_std_of_accuracy_is_that_of_a_mean_of_bernoullis():
    assert accuracy_std(np.array([0.8, 0.7, 0.4])) == pytest.approx(np.sqrt(0.8 * 0.2 + 0.7 * 0.3 + 0.4 * 0.6) / 3)


def test_a_score_of_one_half_predicts_the_negative_class_as_argmax_does():
    tie = np.array([0.5, 0.5])
    assert estimate("accuracy", tie, Calibrator(tie, np.array([0, 0])), 0.95).value == 1.0
    assert estimate("accuracy", tie, Calibrator(tie, np.array([1, 1])), 0.95).value == 0.0


def test_expected_roc_auc_by_hand():
    # E[P] = E[N] = 1.5; ROC points (0, 0), (0.2/1.5, 0.8/1.5), (0.7/1.5, 1.3/1.5), (1, 1)
    scores, calibrated = np.array([0.9, 0.5, 0.1]), np.array([0.8, 0.5, 0.2])
    assert expected_roc_auc(scores, calibrated) == pytest.approx(23 / 30)


def test_expected_roc_auc_with_certain_labels_is_scikit_learns_including_ties():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, 300) / 4
    labels = (rng.random(300) < scores * 0.8 + 0.1).astype(float)
    assert expected_roc_auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores))
    assert np.isnan(expected_roc_auc(scores, np.zeros(300)))


def test_on_labels_drawn_from_the_calibrated_model_the_estimate_is_the_realised_metric_within_sampling_error():
    rng = np.random.default_rng(1)
    scores = rng.beta(2, 2, 1000)
    calibrated = scores  # labels drawn from the scores themselves: calibrated as they are
    draws = rng.random((300, len(scores))) < calibrated
    accuracy = [accuracy_score(y, scores > 0.5) for y in draws]
    auc = [roc_auc_score(y, scores) for y in draws]
    right = np.maximum(calibrated, 1 - calibrated)
    assert np.mean(accuracy) == pytest.approx(np.mean(right), abs=0.003)
    assert np.std(accuracy) == pytest.approx(accuracy_std(right), rel=0.15)
    assert np.mean(auc) == pytest.approx(expected_roc_auc(scores, calibrated), abs=0.003)
    assert np.std(auc) == pytest.approx(roc_auc_std(scores, calibrated), rel=0.15)


def model_world(rng, rows, mean, concept=2.0):
    """Inputs around ``mean``; labels from ``sigmoid(concept * x)``; the served model says ``sigmoid(x)``
    (right order, too timid: its calibration matters)."""
    x = rng.normal(mean, 1.0, rows)
    return sigmoid(x), (rng.random(rows) < sigmoid(concept * x)).astype(int)


def test_under_covariate_shift_the_estimate_stays_within_a_few_points_of_the_realised_metric():
    rng = np.random.default_rng(2)
    calibrator = Calibrator(*model_world(rng, 2000, 0.0))
    for mean in (0.0, 0.7, 1.5):
        scores, labels = model_world(rng, 1000, mean)
        accuracy = estimate("accuracy", scores, calibrator, 0.95)
        auc = estimate("roc_auc", scores, calibrator, 0.95)
        assert abs(accuracy.value - accuracy_score(labels, scores > 0.5)) < 0.03
        assert abs(auc.value - roc_auc_score(labels, scores)) < 0.03
        assert accuracy.low <= accuracy.value <= accuracy.high and auc.std > 0


def test_under_concept_change_the_estimate_is_wrong_and_only_labels_can_tell():
    """The honest failure: the inputs do not move, the relation does, and the scores cannot show it."""
    rng = np.random.default_rng(3)
    calibrator = Calibrator(*model_world(rng, 2000, 0.0))
    scores, flipped = model_world(rng, 1000, 0.0, concept=-2.0)
    found = estimate("accuracy", scores, calibrator, 0.95)
    assert found.value > 0.7 and accuracy_score(flipped, scores > 0.5) < 0.3
    assert found.low > accuracy_score(flipped, scores > 0.5)  # confidently wrong


def test_the_calibration_std_is_the_spread_of_the_estimate_over_independent_holdouts():
    """What the bootstrap refits stand for: other holdouts of the same size would calibrate differently."""
    rng = np.random.default_rng(6)
    window, _ = model_world(rng, 1000, 0.7)
    found = [estimate("accuracy", window, Calibrator(*model_world(rng, 300, 0.0)), 0.95) for _ in range(60)]
    spread = np.std([f.value for f in found], ddof=1)
    assert np.mean([f.calibration_std for f in found]) == pytest.approx(spread, rel=0.2)


def test_with_a_small_holdout_the_stated_interval_covers_the_realised_accuracy_and_sampling_alone_would_not():
    rng = np.random.default_rng(7)
    stated, sampling_only = [], []
    for _ in range(100):
        calibrator = Calibrator(*model_world(rng, 300, 0.0))
        scores, labels = model_world(rng, 1000, 0.7)
        found, realised = estimate("accuracy", scores, calibrator, 0.95), accuracy_score(labels, scores > 0.5)
        stated.append(found.low <= realised <= found.high)
        sampling = np.sqrt(found.std**2 - found.calibration_std**2)
        sampling_only.append(abs(realised - found.value) <= 1.96 * sampling)
    assert np.mean(stated) >= 0.9 and np.mean(sampling_only) < 0.8


def test_the_spec_refuses_an_estimate_of_a_metric_the_served_probabilities_cannot_give():
    with pytest.raises(ValidationError) as raised:
        Performance(metric="f1", floor=0.8, estimated=True)
    (error,) = raised.value.errors()
    assert error["loc"] == ("estimated",) and "'f1' cannot be estimated" in error["msg"]
    assert Performance(metric="f1", floor=0.8).estimated is False


def spec(metric="accuracy", floor=0.9):
    performance = SimpleNamespace(metric=metric, floor=floor, confidence=0.95, estimated=True)
    return SimpleNamespace(monitoring=SimpleNamespace(performance=performance))


def test_the_report_estimates_on_the_served_versions_rows_and_says_when_it_decayed():
    rng = np.random.default_rng(4)
    calibrator = Calibrator(*model_world(rng, 2000, 0.0))
    scores, _ = model_world(rng, 400, 0.0)
    window = pa.table({"model_version": ["2"] * 300 + ["1"] * 100, "score": scores})
    found = estimated_performance(spec(floor=0.95), window, "2", calibrator)
    assert found.rows == 300 and found.decayed and found.high < 0.95
    assert not estimated_performance(spec(floor=0.5), window, "2", calibrator).decayed
    assert estimated_performance(spec(), window, "2", None) is None
    assert estimated_metadata(found)["estimated_accuracy"] == found.value


def test_the_sensor_reads_the_realised_metric_first_and_the_estimate_only_when_the_spec_acts_on_it():
    def values(**kw):
        return {k: SimpleNamespace(value=v) for k, v in kw.items()}

    estimate_only = values(estimated_accuracy=0.7, estimated_low=0.65, estimated_high=0.75, estimate_decayed=True)
    assert observed(estimate_only, "accuracy", estimated=False) is None
    kind, bounds, decayed = observed(estimate_only, "accuracy", estimated=True)
    assert (kind, decayed) == ("estimated_decay", True) and bounds == "estimated accuracy 0.7000 [0.6500, 0.7500]"
    both = {
        **estimate_only,
        **values(online_accuracy=0.95, online_low=0.9, online_high=0.99, performance_decayed=False),
    }
    assert observed(both, "accuracy", estimated=True) == (
        "performance_decay",
        "accuracy 0.9500 [0.9000, 0.9900]",
        False,
    )
