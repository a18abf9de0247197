import numpy as np
import pytest

from mlops_assets.data.adaptation import adaptation_plan, effective_sample_size, fit_density_ratio
from mlops_assets.errors import DataError

DTYPES = {"x": "float", "noise": "float", "flag": "bool", "colour": "str"}


def columns(rng: np.random.Generator, n: int, mean: float = 0.0, std: float = 1.0) -> dict[str, np.ndarray]:
    """``x`` carries the shift; the other columns have the same distribution on both sides."""
    return {
        "x": rng.normal(mean, std, n),
        "noise": rng.normal(size=n),
        "flag": rng.random(n) < 0.3,
        "colour": rng.choice(["red", "blue", "green"], n),
    }


def normal_log_ratio(x: np.ndarray, mean: float, std: float) -> np.ndarray:
    """log N(x; mean, std^2) / N(x; 0, 1): the true log density ratio of the shifted ``x``."""
    return -0.5 * ((x - mean) / std) ** 2 - np.log(std) + 0.5 * x**2


def four_standard_errors(weights: np.ndarray, n_window: int, variance: float = 1.0) -> float:
    """Four standard errors of a weighted reference mean against a window mean of a value of this variance."""
    return 4 * np.sqrt(variance * (1 / effective_sample_size(weights) + 1 / n_window))


def test_weights_recover_a_known_mean_shift_density_ratio():
    rng = np.random.default_rng(0)
    reference, window = columns(rng, 5_000), columns(rng, 5_000, mean=0.8)
    weights = fit_density_ratio(reference, window, DTYPES).weights(reference)
    x = reference["x"]
    assert np.corrcoef(weights, np.exp(0.8 * x - 0.32))[0, 1] > 0.95
    tolerance = four_standard_errors(weights, 5_000)
    assert np.average(x, weights=weights) == pytest.approx(0.8, abs=tolerance)
    assert np.average(reference["noise"], weights=weights) == pytest.approx(0.0, abs=tolerance)


def test_the_prior_correction_makes_the_ratio_average_one_over_the_reference_for_unequal_sample_sizes():
    rng = np.random.default_rng(1)
    reference, window = columns(rng, 8_000), columns(rng, 2_000, mean=0.5)
    ratio = np.exp(fit_density_ratio(reference, window, DTYPES).log_ratio(reference))
    assert ratio.mean() == pytest.approx(1.0, abs=0.03)  # E_reference[p_window / p_reference] = 1
    true_ratio = np.exp(normal_log_ratio(reference["x"], 0.5, 1.0))
    assert np.median(ratio / true_ratio) == pytest.approx(1.0, abs=0.1)  # an odds left at n_window / n_reference: 0.25


def test_a_spread_change_is_recovered_through_the_squared_terms():
    rng = np.random.default_rng(2)
    reference, window = columns(rng, 5_000), columns(rng, 5_000, std=1.5)
    ratio = fit_density_ratio(reference, window, DTYPES)
    x = reference["x"]
    assert np.corrcoef(ratio.log_ratio(reference), normal_log_ratio(x, 0.0, 1.5))[0, 1] > 0.95
    weights = ratio.weights(reference)
    # the cap cuts the heaviest tail rows, so the weighted variance falls a little short of 2.25
    assert 1.8 < np.average(x**2, weights=weights) - np.average(x, weights=weights) ** 2 < 2.5


def test_without_a_shift_the_weights_stay_near_one():
    rng = np.random.default_rng(3)
    reference, window = columns(rng, 5_000), columns(rng, 5_000)
    plan = adaptation_plan(reference, window, DTYPES, min_effective_share=0.1, max_weight=20.0)
    assert plan.feasible and plan.reasons == []
    assert plan.effective_share > 0.98
    weights = plan.density_ratio.weights(reference)
    assert np.quantile(np.abs(weights - 1), 0.9) < 0.2  # the squared terms' noise spreads only the tails


def test_weights_are_capped_and_have_mean_one_over_any_rows():
    rng = np.random.default_rng(4)
    reference, window, holdout = columns(rng, 4_000), columns(rng, 4_000, mean=2.0), columns(rng, 1_000)
    ratio = fit_density_ratio(reference, window, DTYPES, max_weight=5.0)
    for rows in (reference, holdout):
        weights = ratio.weights(rows)
        assert weights.mean() == pytest.approx(1.0)
        assert weights.max() == pytest.approx(5.0) and (weights > 5.0 + 1e-9).sum() == 0
        uncapped = weights < 5.0 - 1e-9
        proportional = weights[uncapped] / np.exp(ratio.log_ratio(rows)[uncapped])
        assert proportional == pytest.approx(np.full(uncapped.sum(), proportional[0]))
        assert weights[~uncapped].min() >= weights[uncapped].max()  # the cap takes the largest ratios


def test_effective_sample_size_is_kishs_formula():
    assert effective_sample_size(np.ones(50)) == pytest.approx(50.0)
    assert effective_sample_size(np.array([1.0, 1.0, 2.0])) == pytest.approx(16 / 6)
    assert effective_sample_size(np.array([0.0, 0.0, 3.0])) == pytest.approx(1.0)


def test_an_unseen_category_makes_adaptation_infeasible_and_names_it():
    rng = np.random.default_rng(5)
    reference, window = columns(rng, 2_000), columns(rng, 1_000)
    reference["colour"] = rng.choice(["red", "blue"], 2_000)
    window["colour"] = np.where(np.arange(1_000) < 120, "violet", window["colour"])
    plan = adaptation_plan(reference, window, DTYPES, min_effective_share=0.1, max_weight=20.0)
    assert not plan.feasible and plan.density_ratio is None
    assert plan.reasons == [
        "category 'green' of column colour never occurs in the training data "
        f"({np.mean(window['colour'] == 'green'):.1%} of the window): weighting cannot create it",
        "category 'violet' of column colour never occurs in the training data (12.0% of the window): "
        "weighting cannot create it",
    ]


def test_an_unseen_category_under_the_tolerance_is_ignored():
    rng = np.random.default_rng(6)
    reference, window = columns(rng, 2_000), columns(rng, 1_000)
    window["colour"][:5] = "violet"  # 0.5% of the window
    assert adaptation_plan(reference, window, DTYPES, min_effective_share=0.1, max_weight=20.0).feasible


def test_a_column_absent_or_all_null_in_the_window_makes_adaptation_infeasible():
    rng = np.random.default_rng(7)
    reference, window = columns(rng, 2_000), columns(rng, 1_000)
    del window["noise"]
    window["x"] = np.full(1_000, np.nan)
    window["colour"] = np.full(1_000, None, dtype=object)
    plan = adaptation_plan(reference, window, DTYPES, min_effective_share=0.1, max_weight=20.0)
    assert not plan.feasible
    assert plan.reasons == [
        "column x is missing (all null) in the window",
        "column noise is absent from the window",
        "column colour is missing (all null) in the window",
    ]


def test_nulls_the_training_data_never_had_make_adaptation_infeasible():
    rng = np.random.default_rng(8)
    reference, window = columns(rng, 2_000), columns(rng, 1_000)
    window["noise"][:150] = np.nan
    plan = adaptation_plan(reference, window, DTYPES, min_effective_share=0.1, max_weight=20.0)
    assert plan.reasons == [
        "nulls of column noise never occur in the training data (15.0% of the window): weighting cannot create them"
    ]


def test_nulls_the_training_data_also_has_are_weighted_like_any_value():
    rng = np.random.default_rng(9)
    reference, window = columns(rng, 4_000), columns(rng, 4_000)
    reference["noise"][rng.random(4_000) < 0.1] = np.nan
    window["noise"][rng.random(4_000) < 0.3] = np.nan
    plan = adaptation_plan(reference, window, DTYPES, min_effective_share=0.1, max_weight=20.0)
    assert plan.feasible
    weights = plan.density_ratio.weights(reference)
    tolerance = four_standard_errors(weights, 4_000, variance=0.3 * 0.7)
    assert np.average(np.isnan(reference["noise"]), weights=weights) == pytest.approx(0.3, abs=tolerance)


def test_a_huge_shift_leaves_too_few_effective_rows():
    rng = np.random.default_rng(10)
    reference, window = columns(rng, 4_000), columns(rng, 1_000, mean=4.0)
    plan = adaptation_plan(reference, window, DTYPES, min_effective_share=0.1, max_weight=20.0)
    assert not plan.feasible and plan.density_ratio is not None
    ess = effective_sample_size(plan.density_ratio.weights(reference))
    assert plan.effective_sample_size == pytest.approx(ess) and plan.effective_share == pytest.approx(ess / 4_000)
    assert 1 / 20 <= plan.effective_share < 0.1  # the cap keeps the share at or above 1 / max_weight
    assert plan.reasons == [
        f"effective sample size {ess:,.0f} of 4,000 training rows ({ess / 4_000:.1%}) is under "
        "training.adaptation.min_effective_share 10%"
    ]


def test_a_shift_among_known_categories_is_reweighted_toward_the_window_shares():
    rng = np.random.default_rng(11)
    reference, window = columns(rng, 6_000), columns(rng, 3_000)
    reference["colour"] = rng.choice(["red", "blue", "green"], 6_000, p=[0.5, 0.3, 0.2])
    window["colour"] = rng.choice(["red", "blue", "green"], 3_000, p=[0.2, 0.3, 0.5])
    plan = adaptation_plan(reference, window, DTYPES, min_effective_share=0.1, max_weight=20.0)
    assert plan.feasible
    weights = plan.density_ratio.weights(reference)
    for colour in ("red", "blue", "green"):
        share = np.mean(window["colour"] == colour)
        tolerance = four_standard_errors(weights, 3_000, variance=share * (1 - share))
        assert np.average(reference["colour"] == colour, weights=weights) == pytest.approx(share, abs=tolerance)


def test_the_same_inputs_and_seed_give_the_same_weights():
    rng = np.random.default_rng(12)
    reference, window = columns(rng, 3_000), columns(rng, 3_000, mean=0.5)

    def weights(seed: int) -> np.ndarray:
        return fit_density_ratio(reference, window, DTYPES, seed=seed, max_rows=1_000).weights(reference)

    assert np.array_equal(weights(0), weights(0))
    assert not np.array_equal(weights(0), weights(1))  # the seed picks the subsample


def test_a_cap_that_cannot_keep_mean_one_is_rejected():
    rng = np.random.default_rng(13)
    reference, window = columns(rng, 100), columns(rng, 100)
    with pytest.raises(ValueError, match=r"max_weight 1\.0 must exceed 1"):
        fit_density_ratio(reference, window, DTYPES, max_weight=1.0)


def test_a_reference_without_an_input_column_is_a_data_error():
    rng = np.random.default_rng(14)
    reference, window = columns(rng, 100), columns(rng, 100)
    del reference["flag"]
    with pytest.raises(DataError, match=r"the reference lacks input columns \['flag'\]"):
        adaptation_plan(reference, window, DTYPES, min_effective_share=0.1, max_weight=20.0)
