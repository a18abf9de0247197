"""The drift verdict: which features drift, the missing-share test, the multiple-test correction, overrides."""

import json

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from mlops_assets.monitoring.drift.divergence import psi
from mlops_assets.monitoring.drift.verdict import adjust_p_values, compute_drift, missing_shift
from mlops_assets.spec.drift import DriftConfig
from tests.unit.monitoring.drift.oracles import binned_shares, quantile_edges

CONFIG = DriftConfig()


def test_shifted_columns_drift_and_others_do_not():
    rng = np.random.default_rng(43)
    n = 5_000
    reference = {f"x{i}": rng.normal(size=n) for i in range(6)}
    current = {f"x{i}": rng.normal(size=n) for i in range(6)}
    current["x0"] = current["x0"] + 1.0
    current["x1"] = current["x1"] * 2.5
    report = compute_drift(reference, current, dict.fromkeys(reference, "float"), CONFIG)
    assert report.drifted_features == ["x0", "x1"]


def test_a_tiny_shift_at_a_large_window_is_significant_but_not_drift():
    rng = np.random.default_rng(44)
    n = 200_000
    reference = {"x": rng.normal(size=n)}
    current = {"x": rng.normal(size=n) + 0.03}
    feature = compute_drift(reference, current, {"x": "float"}, CONFIG).features[0]
    assert feature.p_adjusted < 1e-6  # the test alone would call this drift
    assert feature.psi < 0.01 and feature.wasserstein < 0.05 and not feature.drifted


def test_a_small_window_needs_the_test_to_confirm_the_psi():
    """Windows of 60 rows from the reference's own distribution: the PSI alone flags most of them; drift
    also needs the test, so it is called in about ``alpha`` of them."""
    rng = np.random.default_rng(45)
    flagged_by_psi_alone = drifted = 0
    for _ in range(400):
        reference, current = {"x": rng.normal(size=120)}, {"x": rng.normal(size=60)}
        feature = compute_drift(reference, current, {"x": "float"}, CONFIG).features[0]
        flagged_by_psi_alone += feature.psi > CONFIG.psi_threshold
        drifted += feature.drifted
    assert flagged_by_psi_alone / 400 > 0.4
    assert drifted / 400 <= CONFIG.alpha + 0.02


def test_a_column_missing_from_traffic_is_schema_drift():
    report = compute_drift(
        {"x": np.ones(10), "y": np.ones(10)}, {"x": np.ones(10)}, {"x": "float", "y": "float"}, CONFIG
    )
    assert report.drifted_features == ["y"] and report.features[1].kind == "missing"
    assert report.features[1].reason == "absent"
    assert "drift in y" in report.to_markdown() and "| yes: absent |" in report.to_markdown()


@pytest.mark.parametrize("dtype", ["float", "str"])
def test_a_column_with_no_value_in_the_window_is_schema_drift(dtype):
    """No value left means no test can run: the verdict must not wait for one, or a broken column is
    never drift."""
    rng = np.random.default_rng(50)
    categories = np.array(["a", "b"], dtype=object)
    values = rng.normal(size=2_000) if dtype == "float" else categories[rng.integers(0, 2, 2_000)]
    empty = np.full(5, np.nan) if dtype == "float" else np.full(5, None, dtype=object)
    report = compute_drift({"x": values}, {"x": empty}, {"x": dtype}, CONFIG)
    feature = report.features[0]
    assert feature.drifted and feature.reason == "no values" and feature.missing_share == 1
    assert "| yes: no values |" in report.to_markdown()
    as_json = json.loads(json.dumps(report.to_dict()))
    assert as_json["features"][0]["reason"] == "no values" and as_json["drifted_features"] == ["x"]
    never_filled = compute_drift({"x": empty}, {"x": empty}, {"x": dtype}, CONFIG)
    assert not never_filled.drifted and never_filled.features[0].reason is None


def test_a_jump_in_the_missing_share_of_a_numeric_column_drifts():
    """The KS test sees only present values, which have not moved here: the missing share is tested on its
    own, and its test joins the correction (two tests for one feature)."""
    rng = np.random.default_rng(51)
    current = rng.normal(size=2_000)
    current[rng.random(2_000) < 0.6] = np.nan
    report = compute_drift({"x": rng.normal(size=5_000)}, {"x": current}, {"x": "float"}, CONFIG)
    feature = report.features[0]
    assert feature.drifted and feature.reason == "missing share" and feature.p_adjusted > CONFIG.alpha
    assert feature.reference_missing_share == 0 and feature.missing_share == pytest.approx(0.6, abs=0.03)
    assert feature.missing_js > feature.thresholds["missing_js"] == CONFIG.js_threshold
    assert feature.missing_p_adjusted == pytest.approx(min(2 * feature.missing_p_value, 1))
    assert feature.p_adjusted == pytest.approx(min(2 * feature.p_value, 1))
    assert "0 → 0.6" in report.to_markdown()


def test_a_jump_in_the_missing_share_of_a_categorical_column_drifts():
    """Categories count a missing value as one more category, so the usual test sees the jump."""
    rng = np.random.default_rng(52)
    names = np.array(["a", "b", "c"], dtype=object)
    current = names[rng.integers(0, 3, 2_000)]
    current[rng.random(2_000) < 0.6] = None
    feature = compute_drift({"k": names[rng.integers(0, 3, 5_000)]}, {"k": current}, {"k": "str"}, CONFIG).features[0]
    assert feature.drifted and feature.reason == "distribution" and feature.unseen_share == 0
    assert feature.reference_missing_share == 0 and feature.missing_share == pytest.approx(0.6, abs=0.03)


def test_an_equal_missing_share_never_flags():
    """Equal shares make the missingness effect size zero whatever the window size, so only a shift of the
    present values can make such a column drift."""
    rng = np.random.default_rng(53)
    reference = rng.normal(size=10_000)
    reference[:3_000] = np.nan
    for n in (20, 200, 2_000, 20_000):
        current = rng.normal(size=n) + (1.0 if n == 20_000 else 0.0)
        current[: n * 3 // 10] = np.nan
        feature = compute_drift({"x": reference}, {"x": current}, {"x": "float"}, CONFIG).features[0]
        assert feature.missing_js == pytest.approx(0, abs=1e-7) and feature.missing_p_value == pytest.approx(1)
        assert feature.reason == ("distribution" if n == 20_000 else None)


def test_the_missing_share_test_is_scipys_chi_squared_and_js_distance():
    js, p_value = missing_shift(0.1, 4_000, 0.25, 1_000).values()
    counts = np.array([[400, 3_600], [250, 750]])
    assert p_value == pytest.approx(stats.chi2_contingency(counts).pvalue, rel=1e-12)
    assert js == pytest.approx(jensenshannon([0.1, 0.9], [0.25, 0.75], base=2), rel=1e-12)
    assert np.isnan(missing_shift(0.0, 100, 0.0, 50)["missing_p_value"])  # nothing missing: nothing to test
    assert np.isnan(missing_shift(0.0, 100, 1.0, 0)["missing_p_value"])  # an empty window


def test_a_constant_reference_makes_any_change_infinitely_large_and_json_still_works():
    report = compute_drift({"x": np.ones(500)}, {"x": np.full(500, 2.0)}, {"x": "float"}, CONFIG)
    assert report.features[0].wasserstein == np.inf and report.drifted
    as_json = json.loads(json.dumps(report.to_dict()))
    assert as_json["features"][0]["wasserstein"] == "inf" and as_json["drifted_features"] == ["x"]


def test_benjamini_hochberg_by_hand():
    p = np.array([0.041, 0.001, 0.205, 0.039, 0.008, 0.06, 0.042, 0.074])
    # sorted: 0.001 0.008 0.039 0.041 0.042 0.06 0.074 0.205; 8 p_(i) / i, then the minimum from the right
    by_rank = [0.008, 0.032, 0.0672, 0.0672, 0.0672, 0.08, 0.0845714, 0.205]
    expected = dict(zip(np.sort(p), by_rank, strict=True))
    assert adjust_p_values(p, "bh") == pytest.approx([expected[v] for v in p], rel=1e-6)
    assert adjust_p_values(p, "bonferroni") == pytest.approx(np.minimum(p * 8, 1))
    with_gap = adjust_p_values(np.array([0.01, np.nan, 0.02]), "bh")
    assert np.isnan(with_gap[1]) and with_gap[[0, 2]] == pytest.approx([0.02, 0.02])
    with pytest.raises(ValueError, match="bonferroni"):
        adjust_p_values(p, "holm")


def test_correction_is_applied_over_all_tested_features():
    rng = np.random.default_rng(47)
    reference = {f"x{i}": rng.normal(size=2_000) for i in range(4)}
    current = {f"x{i}": rng.normal(size=2_000) + 0.05 * i for i in range(4)}
    dtypes = dict.fromkeys(reference, "float")
    bonferroni = compute_drift(reference, current, dtypes, CONFIG)
    bh = compute_drift(reference, current, dtypes, DriftConfig(correction="bh"))
    raw = np.array([f.p_value for f in bonferroni.features])
    assert [f.p_adjusted for f in bonferroni.features] == pytest.approx(np.minimum(raw * 4, 1))
    assert [f.p_adjusted for f in bh.features] == pytest.approx(adjust_p_values(raw, "bh"))
    assert "p (bh)" in bh.to_markdown()


def test_a_per_feature_override_changes_the_verdict():
    rng = np.random.default_rng(48)
    reference = {"x": rng.normal(size=20_000), "y": rng.normal(size=20_000)}
    current = {"x": rng.normal(size=20_000) + 0.07, "y": rng.normal(size=20_000) + 1.0}
    dtypes = {"x": "float", "y": "float"}
    assert compute_drift(reference, current, dtypes, CONFIG).drifted_features == ["y"]
    strict_x = DriftConfig(overrides={"x": {"wasserstein": 0.05}, "y": {"psi": 5.0, "wasserstein": 5.0}})
    report = compute_drift(reference, current, dtypes, strict_x)
    assert report.drifted_features == ["x"]
    assert report.features[0].thresholds == {"psi": 0.2, "wasserstein": 0.05}


def test_ten_drifted_columns_out_of_55_at_200k_rows_are_exactly_those_flagged():
    n, rng = 200_000, np.random.default_rng(3)
    reference = {f"n{i}": rng.normal(i, 1 + i % 3, size=n) for i in range(50)}
    current = {f"n{i}": rng.normal(i, 1 + i % 3, size=n) for i in range(50)}
    for i in range(8):
        current[f"n{i}"] = current[f"n{i}"] + (0.3 if i % 2 else 0.0) * (1 + i % 3)
        current[f"n{i}"] *= 1.0 if i % 2 else 1.4
    names = np.array([f"v{i}" for i in range(8)], dtype=object)
    even, skewed = np.full(8, 1 / 8), np.array([0.3, 0.2, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05])
    for i in range(5):
        reference[f"c{i}"] = names[rng.choice(8, size=n, p=even)]
        current[f"c{i}"] = names[rng.choice(8, size=n, p=skewed if i < 2 else even)]
    dtypes = {c: "str" if c.startswith("c") else "float" for c in reference}
    report = compute_drift(reference, current, dtypes, CONFIG)
    assert report.drifted_features == [f"n{i}" for i in range(8)] + ["c0", "c1"]


def test_nullable_and_infinite_numbers_count_as_missing():
    reference = {"x": np.array([1, None, 3, 4] * 100, dtype=object)}
    current = {"x": np.array([1.0, np.inf, -np.inf, 4.0] * 100)}
    feature = compute_drift(reference, current, {"x": "int"}, CONFIG).features[0]
    assert feature.missing_share == 0.5 and feature.kind == "numeric"
    expected = psi(
        *binned_shares(np.tile([1.0, np.nan, 3, 4], 100), current["x"], quantile_edges(np.tile([1.0, 3, 4], 100), 10))
    )
    assert feature.psi == pytest.approx(expected)


@pytest.mark.parametrize(("shift_sd", "drifted"), [(0.02, False), (0.05, False), (0.15, False), (0.35, True)])
def test_the_default_thresholds_leave_a_negligible_shift_alone(shift_sd, drifted):
    """A gradual drift of log-income by 0.02, 0.05, 0.15, 0.35 sd, in windows of 10,000 rows: with a tenth of a
    standard deviation as the Wasserstein threshold, 0.15 sd drifted (and so did 0.05 sd against a reference that
    an adaptation had moved), and every such window retrained a model that was no better."""
    rng = np.random.default_rng(7)
    reference = {"income": rng.lognormal(10.5, 0.4, 16_000)}
    current = {"income": rng.lognormal(10.5 + 0.4 * shift_sd, 0.4, 10_000)}
    (feature,) = compute_drift(reference, current, {"income": "float"}, DriftConfig()).features
    assert feature.drifted is drifted, (feature.psi, feature.wasserstein)
