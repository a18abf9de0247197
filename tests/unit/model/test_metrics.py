import numpy as np
import pytest
from sklearn import metrics as sk

from mlops_assets.model.metrics import METRICS, compute_metrics
from mlops_assets.spec.vocabulary import ESTIMABLE, METRIC_TASKS, default_metrics
from tests.unit.evaluation.test_confidence import CASES

# scikit-learn's own weighted metric, called directly: the reference the weighted metrics must meet
SKLEARN = {
    "accuracy": lambda y, pred, score, w: sk.accuracy_score(y, pred, sample_weight=w),
    "roc_auc": lambda y, pred, score, w: sk.roc_auc_score(y, score[:, 1], sample_weight=w),
    "f1": lambda y, pred, score, w: sk.f1_score(y, pred, sample_weight=w),
    "log_loss": lambda y, pred, score, w: sk.log_loss(y, score, sample_weight=w),
    "f1_macro": lambda y, pred, score, w: sk.f1_score(y, pred, average="macro", sample_weight=w),
    "rmse": lambda y, pred, score, w: sk.root_mean_squared_error(y, pred, sample_weight=w),
    "mae": lambda y, pred, score, w: sk.mean_absolute_error(y, pred, sample_weight=w),
    "r2": lambda y, pred, score, w: sk.r2_score(y, pred, sample_weight=w),
}


@pytest.mark.parametrize("name", CASES)
def test_weighted_metrics_equal_scikit_learn_with_random_positive_weights(name):
    rng = np.random.default_rng(21)
    y, pred, score = CASES[name](300, seed=300)
    weights = rng.uniform(0.1, 5.0, len(y))
    expected = SKLEARN[name](y, pred, score, weights)
    assert METRICS[name].compute(y, pred, score, weights) == pytest.approx(expected, rel=1e-12)
    assert METRICS[name].compute(y, pred, score, weights) != pytest.approx(SKLEARN[name](y, pred, score, None))


@pytest.mark.parametrize("name", CASES)
def test_integer_weights_equal_repeating_the_rows(name):
    rng = np.random.default_rng(22)
    y, pred, score = CASES[name](200, seed=200)
    counts = rng.integers(0, 4, len(y))
    repeated = np.repeat(np.arange(len(y)), counts)
    on_repeated = METRICS[name].compute(y[repeated], pred[repeated], None if score is None else score[repeated])
    assert METRICS[name].compute(y, pred, score, counts) == pytest.approx(on_repeated, rel=1e-12)


@pytest.mark.parametrize("name", CASES)
def test_without_weights_every_metric_is_what_it_was_before_weights(name):
    y, pred, score = CASES[name](250, seed=250)
    before = {  # the formulas the metrics used before they took weights
        "accuracy": lambda: float(np.mean(y == pred)),
        "roc_auc": lambda: float(sk.roc_auc_score(y, score[:, 1])),
        "f1": lambda: float(sk.f1_score(y, pred, average="binary")),
        "log_loss": lambda: float(sk.log_loss(y, score, labels=np.arange(score.shape[1]))),
        "f1_macro": lambda: float(sk.f1_score(y, pred, average="macro")),
        "rmse": lambda: float(np.sqrt(np.mean((y - pred) ** 2))),
        "mae": lambda: float(np.mean(np.abs(y - pred))),
        "r2": lambda: float(1 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2)),
    }[name]()
    assert METRICS[name].compute(y, pred, score) == before  # bit for bit, positional call as the callers make it
    assert METRICS[name].compute(y, pred, score, None) == before


def test_compute_metrics_passes_the_weights_to_every_metric():
    rng = np.random.default_rng(24)
    y, pred, score = CASES["roc_auc"](200, seed=24)
    weights = rng.uniform(0.5, 2.0, 200)
    names = ["roc_auc", "accuracy", "f1", "log_loss"]
    weighted = compute_metrics(names, y, pred, score, sample_weight=weights)
    assert weighted == {name: METRICS[name].compute(y, pred, score, weights) for name in names}
    assert compute_metrics(names, y, pred, score) == {name: METRICS[name].compute(y, pred, score) for name in names}


def test_roc_auc_is_undefined_when_only_one_class_has_weight():
    y, score = np.array([0, 1, 1, 0]), np.tile([0.3, 0.7], (4, 1))
    assert np.isnan(METRICS["roc_auc"].compute(y, None, score, np.array([0.0, 1.0, 2.0, 0.0])))
    assert not np.isnan(METRICS["roc_auc"].compute(y, None, score, np.array([1.0, 1.0, 2.0, 0.0])))


def test_the_spec_names_exactly_the_metrics_computed_here():
    """The spec validates against ``spec.vocabulary``; every name it accepts is computed, for the same tasks."""
    assert list(METRICS) == list(METRIC_TASKS)
    assert all(METRICS[name].tasks == tasks for name, tasks in METRIC_TASKS.items())
    assert all(m in METRICS for task in ("binary", "multiclass", "regression") for m in default_metrics(task))
    assert set(ESTIMABLE) <= set(METRICS)
