import math

import numpy as np
import pytest

from mlops_assets.evaluation.fairness import (
    MISSING_GROUP,
    demographic_parity_difference,
    equalized_odds_difference,
    error_gap,
    fairness_figures,
    group_labels,
    slice_metrics,
)
from mlops_assets.evaluation.gate import fairness_gate

# group a: predicted positive 2 of 4, every positive found, no false positive;
# group b: predicted positive 3 of 4, one positive of two found, both negatives predicted positive
GROUPS = np.array(["a"] * 4 + ["b"] * 4)
Y_TRUE = np.array([1, 1, 0, 0, 1, 1, 0, 0])
Y_PRED = np.array([1, 1, 0, 0, 1, 0, 1, 1])


def test_demographic_parity_is_the_spread_of_selection_rates():
    assert demographic_parity_difference(Y_PRED, GROUPS, 1) == pytest.approx(0.75 - 0.5)


def test_equalized_odds_is_the_larger_of_the_tpr_and_fpr_gaps():
    # TPR: a 1.0, b 0.5 (gap 0.5); FPR: a 0.0, b 1.0 (gap 1.0)
    assert equalized_odds_difference(Y_TRUE, Y_PRED, GROUPS, 1) == pytest.approx(1.0)
    assert equalized_odds_difference(Y_TRUE, Y_PRED, GROUPS, 0) == pytest.approx(1.0)


def test_error_gap_is_the_spread_of_each_groups_mean_absolute_error():
    # a: errors 0 and 1 (MAE 0.5); b: errors 0 and 2 (MAE 1.0)
    assert error_gap([1, 2, 3, 4], [1, 3, 3, 6], ["a", "a", "b", "b"]) == pytest.approx(0.5)


def test_a_single_group_leaves_every_figure_undefined():
    assert math.isnan(demographic_parity_difference([1, 0], ["a", "a"], 1))
    assert math.isnan(equalized_odds_difference([1, 0], [1, 0], ["a", "a"], 1))
    assert math.isnan(error_gap([1.0, 2.0], [1.0, 2.0], ["a", "a"]))


def test_a_rate_a_group_cannot_have_is_left_out_of_its_gap():
    # group b has no positive row: its TPR is undefined, the FPR gap decides
    groups, y_true, y_pred = ["a", "a", "b", "b"], [1, 0, 0, 0], [1, 1, 0, 1]
    assert equalized_odds_difference(y_true, y_pred, groups, 1) == pytest.approx(0.5)


def test_missing_sensitive_values_form_a_group_of_their_own():
    assert group_labels(["x", None, float("nan"), 1]).tolist() == ["x", MISSING_GROUP, MISSING_GROUP, "1"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_figures_agree_with_fairlearn(seed):
    fairlearn = pytest.importorskip("fairlearn.metrics")
    rng = np.random.default_rng(seed)
    groups = rng.choice(["p", "q", "r"], 300)
    y_true = rng.integers(0, 2, 300)
    y_pred = np.where(rng.random(300) < 0.7, y_true, 1 - y_true)
    y_pred[groups == "q"] = np.where(rng.random((groups == "q").sum()) < 0.3, 1, y_pred[groups == "q"])
    assert demographic_parity_difference(y_pred, groups, 1) == pytest.approx(
        fairlearn.demographic_parity_difference(y_true, y_pred, sensitive_features=groups)
    )
    assert equalized_odds_difference(y_true, y_pred, groups, 1) == pytest.approx(
        fairlearn.equalized_odds_difference(y_true, y_pred, sensitive_features=groups)
    )


def test_a_binary_task_is_judged_on_its_positive_class():
    figures = fairness_figures("binary", "sex", Y_TRUE, Y_PRED, GROUPS, ["benign", "malignant"])
    parity, odds = figures
    assert (parity.name, parity.column, parity.target_class) == ("demographic_parity_difference", "sex", "malignant")
    assert parity.value == pytest.approx(0.25)
    assert parity.by_group == {"a": {"rows": 4, "selection_rate": 0.5}, "b": {"rows": 4, "selection_rate": 0.75}}
    assert odds.value == pytest.approx(1.0) and odds.by_group["b"] == {"rows": 4, "tpr": 0.5, "fpr": 1.0}


def test_a_multiclass_task_reports_its_worst_class_against_the_rest():
    groups = np.array(["a"] * 3 + ["b"] * 3)
    y_true = np.array([0, 1, 2, 0, 1, 2])
    y_pred = np.array([2, 2, 2, 2, 0, 1])  # selection of z: 1 in a, 1/3 in b; of x and y: 0 in a, 1/3 in b
    parity, _ = fairness_figures("multiclass", "site", y_true, y_pred, groups, ["x", "y", "z"])
    assert parity.target_class == "z" and parity.value == pytest.approx(2 / 3)


def test_a_regression_task_reports_the_error_gap():
    (figure,) = fairness_figures(
        "regression", "sex", [1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 3.0, 6.0], ["a", "a", "b", "b"], None
    )
    assert figure.name == "error_gap" and figure.value == pytest.approx(0.5)
    assert figure.by_group == {"a": {"rows": 2, "mae": 0.5}, "b": {"rows": 2, "mae": 1.0}}


def test_slice_metrics_are_the_task_metrics_on_each_groups_rows():
    proba = np.eye(2)[Y_PRED]
    got = slice_metrics(["accuracy", "roc_auc"], Y_TRUE, Y_PRED, proba, GROUPS)
    assert got["a"] == {"rows": 4, "accuracy": 1.0, "roc_auc": 1.0}
    assert got["b"]["accuracy"] == pytest.approx(0.25)
    one_class = slice_metrics(["roc_auc"], np.array([1, 1]), np.array([1, 1]), np.eye(2)[[1, 1]], ["a", "a"])
    assert math.isnan(one_class["a"]["roc_auc"])


def test_the_gate_fails_a_figure_over_its_limit_naming_the_groups_and_the_limit():
    figures = fairness_figures("binary", "sex", Y_TRUE, Y_PRED, GROUPS, ["benign", "malignant"])
    result = fairness_gate(figures, {"demographic_parity_difference": 0.1})
    assert not result.passed and len(result.reasons) == 1
    reason = result.reasons[0]
    assert reason.startswith("fixed holdout: FAIL: demographic_parity_difference on 'sex' 0.2500 ≤ 0.1")
    assert "a: selection_rate 0.500 of 4 rows, b: selection_rate 0.750 of 4 rows" in reason
    assert fairness_gate(figures, {"demographic_parity_difference": 0.3, "equalized_odds_difference": 1.0}).passed


def test_the_gate_fails_an_undefined_figure():
    figures = fairness_figures("regression", "sex", [1.0, 2.0], [1.0, 2.0], ["a", "a"], None)
    result = fairness_gate(figures, {"error_gap": 5.0})
    assert not result.passed and "error_gap on 'sex' nan" in result.reasons[0]
