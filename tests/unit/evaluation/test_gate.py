import numpy as np
import pytest

from mlops_assets.evaluation.gate import evaluate_gate
from mlops_assets.model.metrics import compute_metrics, gain, meets_threshold


def test_thresholds_follow_each_metric_direction():
    assert meets_threshold("roc_auc", 0.91, 0.9) and not meets_threshold("roc_auc", 0.89, 0.9)
    assert meets_threshold("rmse", 59.0, 60.0) and not meets_threshold("rmse", 61.0, 60.0)
    assert not meets_threshold("roc_auc", float("nan"), 0.5)
    assert gain("rmse", 50.0, 55.0) == 5.0 and gain("accuracy", 0.8, 0.9) == pytest.approx(-0.1)


def test_first_model_skips_gain_conditions():
    result = evaluate_gate({"roc_auc": 0.9}, {"roc_auc": 0.0}, {"roc_auc": 0.95}, None)
    assert result.passed
    assert result.reasons == ["ok: roc_auc 0.9500 ≥ 0.9", "ok: roc_auc gain not checked, there is no champion yet"]


def test_gate_fails_on_threshold_or_on_too_little_gain():
    below = evaluate_gate({"r2": 0.5}, {}, {"r2": 0.4}, None)
    assert not below.passed and below.reasons[0].startswith("FAIL: r2")
    worse = evaluate_gate({}, {"rmse": -1.0}, {"rmse": 62.0}, {"rmse": 60.0})
    assert not worse.passed and "gain over champion -2.0000" in worse.reasons[0]
    tolerated = evaluate_gate({}, {"rmse": -1.0}, {"rmse": 60.5}, {"rmse": 60.0})
    assert tolerated.passed


def test_metrics_agree_with_scikit_learn():
    from sklearn.metrics import f1_score, log_loss, r2_score, roc_auc_score

    y = np.array([0, 1, 1, 0, 1])
    proba = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.1, 0.9], [0.2, 0.8]])
    pred = proba.argmax(axis=1)
    got = compute_metrics(["roc_auc", "accuracy", "f1", "log_loss"], y, pred, proba)
    assert got == pytest.approx(
        {
            "roc_auc": roc_auc_score(y, proba[:, 1]),
            "accuracy": 0.6,
            "f1": f1_score(y, pred),
            "log_loss": log_loss(y, proba),
        }
    )
    target, predicted = np.array([3.0, 5.0, 7.0]), np.array([2.5, 5.0, 8.0])
    assert compute_metrics(["r2", "mae"], target, predicted, None) == pytest.approx(
        {"r2": r2_score(target, predicted), "mae": 0.5}
    )
