import json

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from mlops_assets.monitoring.drift.categorical import category_counts, category_shares, category_text
from mlops_assets.monitoring.drift.divergence import binned_shares, js_distance, psi, quantile_edges
from mlops_assets.monitoring.drift.numeric import EXACT_KS_MAX_ROWS, numeric_drift
from mlops_assets.monitoring.drift.verdict import DriftConfig, adjust_p_values, compute_drift, missing_shift

CONFIG = DriftConfig()


def test_psi_matches_its_definition():
    expected = np.array([0.25, 0.25, 0.5])
    actual = np.array([0.5, 0.25, 0.25])
    by_hand = (0.5 - 0.25) * np.log(0.5 / 0.25) + 0 + (0.25 - 0.5) * np.log(0.25 / 0.5)
    assert psi(expected, actual) == pytest.approx(by_hand)
    assert psi(expected, expected) == 0.0


def test_bins_are_fixed_on_the_reference():
    rng = np.random.default_rng(42)
    reference = rng.normal(size=10_000)
    edges = quantile_edges(reference, 10)
    ref_shares, cur_shares = binned_shares(reference, reference + 10, edges)
    assert len(edges) == 9
    assert ref_shares[:-1] == pytest.approx(np.full(10, 0.1), abs=1e-3)
    assert cur_shares[-2] == 1.0  # everything lands in the top reference bin


def test_missing_values_have_their_own_bin():
    reference = np.array([1.0, 2.0, 3.0, 4.0])
    _, current = binned_shares(reference, np.array([1.0, np.nan, np.nan, 4.0]), quantile_edges(reference, 2))
    assert current[-1] == 0.5


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


def test_categories_count_unseen_values():
    _, cur, names = category_shares(["a", "a", "b", "b"], ["a", "c", "c", "c"])
    assert names == ["a", "b", "<unseen>"]
    assert cur.tolist() == [0.25, 0.0, 0.75]
    report = compute_drift({"k": ["a", "b"] * 200}, {"k": ["c"] * 300 + ["a"] * 100}, {"k": "str"}, CONFIG)
    assert report.drifted and report.features[0].unseen_share == 0.75


def test_missing_categories_get_their_own_bucket():
    ref, cur, names = category_counts(np.array(["b", None, "a", "a"], dtype=object), ["a", None, np.nan, "z"])
    assert names == ["a", "b", "<unseen>", "<missing>"]
    assert ref.tolist() == [2, 1, 0, 1] and cur.tolist() == [1, 0, 1, 2]


def test_a_column_missing_from_traffic_is_schema_drift():
    report = compute_drift(
        {"x": np.ones(10), "y": np.ones(10)}, {"x": np.ones(10)}, {"x": "float", "y": "float"}, CONFIG
    )
    assert report.drifted_features == ["y"] and report.features[1].kind == "missing"
    assert report.features[1].reason == "absent"
    assert "drift in y" in report.to_markdown() and "| yes: absent |" in report.to_markdown()


def _as_logged(values) -> np.ndarray:
    """What the inference log stores for a classifier's predictions: Arrow's cast to string."""
    return pa.array(values).cast(pa.string()).to_numpy(zero_copy_only=False)


def test_categories_are_compared_as_the_text_arrow_casts_them_to():
    """The log's form for every type; a missing value stays missing, never the text "nan" or "None"."""
    assert category_text(np.array([0, 1, 12])).to_pylist() == ["0", "1", "12"]
    assert category_text(np.array([1.0, 1.5, np.nan])).to_pylist() == ["1", "1.5", None]
    assert category_text(np.array([True, False])).to_pylist() == ["true", "false"]
    assert category_text(np.array(["a", None, np.nan], dtype=object)).to_pylist() == ["a", None, None]
    assert category_text(np.array([1, "a", 1.5, None], dtype=object)).to_pylist() == ["1", "a", "1.5", None]
    ref, cur, names = category_counts(np.array([1.0, np.nan, 2.0]), np.array(["1", None, "2", "2"], dtype=object))
    assert names == ["1", "2", "<unseen>", "<missing>"]
    assert ref.tolist() == [1, 1, 0, 1] and cur.tolist() == [1, 2, 0, 1]


CATEGORIES = {
    "int": np.array([0, 1, 2]),
    "float": np.array([0.5, 1.0, 2.25]),
    "bool": np.array([True, False]),
    "str": np.array(["b", "a", "c"], dtype=object),
}
AS_SENT = {
    "raw reference, logged window": (np.asarray, _as_logged),
    "logged reference, raw window": (_as_logged, np.asarray),
    "both raw": (np.asarray, np.asarray),
}


@pytest.mark.parametrize("pairing", AS_SENT)
@pytest.mark.parametrize("kind", CATEGORIES)
def test_a_category_meets_itself_whatever_type_carries_it(kind, pairing):
    """A model of an int (or bool, float) target predicts ints while the log stores their text: the same
    classes must count as the same categories, so an unchanged model does not drift and a real shift does."""
    rng, values = np.random.default_rng(49), CATEGORIES[kind]
    as_reference, as_current = AS_SENT[pairing]
    reference = values[rng.integers(0, len(values), 3_000)]
    same = rng.permutation(reference)
    ref_counts, cur_counts, names = category_counts(as_reference(reference), as_current(same))
    assert names == [*sorted(category_text(values).to_pylist()), "<unseen>"]
    assert cur_counts.tolist() == ref_counts.tolist() and ref_counts.sum() == 3_000
    ref_shares, cur_shares, _ = category_shares(as_reference(reference), as_current(same))
    assert cur_shares.tolist() == ref_shares.tolist()
    unchanged = compute_drift({"k": as_reference(reference)}, {"k": as_current(same)}, {"k": "str"}, CONFIG)
    feature = unchanged.features[0]
    assert feature.psi == 0 and feature.js == 0 and feature.p_value == pytest.approx(1.0)
    assert feature.unseen_share == 0 and not feature.drifted
    window = values[rng.integers(0, len(values), 1_000)]
    sampled = compute_drift({"k": as_reference(reference)}, {"k": as_current(window)}, {"k": "str"}, CONFIG)
    assert sampled.features[0].unseen_share == 0 and not sampled.drifted
    skewed = np.where(rng.random(1_000) < 0.7, values[0], window)
    shifted = compute_drift({"k": as_reference(reference)}, {"k": as_current(skewed)}, {"k": "str"}, CONFIG)
    assert shifted.features[0].unseen_share == 0 and shifted.features[0].reason == "distribution"
    assert shifted.features[0].js > CONFIG.js_threshold and shifted.features[0].p_adjusted < CONFIG.alpha


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


def _blocks(n_ref: int, n_cur: int) -> tuple[np.ndarray, np.ndarray]:
    """Columns that stress the statistics: shifts, ties, a few distinct values, missing values, heavy tails."""
    rng = np.random.default_rng(n_ref + n_cur)
    ref, cur = rng.normal(size=(6, n_ref)), rng.normal(size=(6, n_cur))
    cur[1] = cur[1] * 1.5 + 0.3
    ref[2], cur[2] = np.round(ref[2] * 3), np.round(cur[2] * 3 + 0.5)
    ref[3], cur[3] = rng.integers(0, 3, n_ref), rng.integers(0, 4, n_cur)
    ref[4][rng.random(n_ref) < 0.1], cur[4][rng.random(n_cur) < 0.3] = np.nan, np.nan
    cur[5] = rng.standard_cauchy(n_cur)
    return ref, cur


SIZES = [(40, 70), (500, 500), (3_000, 1_000), (EXACT_KS_MAX_ROWS, 20), (20_000, 15_000), (150_000, 90_000)]


@pytest.mark.parametrize(("n_ref", "n_cur"), SIZES)
def test_ks_statistic_and_p_value_are_scipys(n_ref, n_cur):
    ref, cur = _blocks(n_ref, n_cur)
    result = numeric_drift(ref, cur, 10)
    for j in range(len(ref)):
        expected = stats.ks_2samp(ref[j][~np.isnan(ref[j])], cur[j][~np.isnan(cur[j])])
        assert result["statistic"][j] == expected.statistic
        n = round(np.sum(~np.isnan(ref[j])) * n_cur / (np.sum(~np.isnan(ref[j])) + n_cur))
        if max(n_ref, n_cur) > EXACT_KS_MAX_ROWS and 2.2 <= n * expected.statistic**2 < 370:
            # scipy sums an n-term series here; we use the limiting distribution (see ks_p_values)
            assert result["p_value"][j] == pytest.approx(expected.pvalue, rel=0.03) or expected.pvalue < 1e-9
        else:
            assert result["p_value"][j] == pytest.approx(expected.pvalue, rel=1e-12, abs=0)


def test_the_limiting_p_value_stays_close_where_scipy_sums_a_series():
    rng = np.random.default_rng(7)
    ref, cur = rng.normal(size=(1, 40_000)), rng.normal(size=(1, 40_000)) + 0.03
    result = numeric_drift(ref, cur, 10)
    expected = stats.ks_2samp(ref[0], cur[0])
    assert 2.2 <= 20_000 * expected.statistic**2 < 370 and 1e-9 < expected.pvalue < 0.025
    assert result["p_value"][0] == pytest.approx(expected.pvalue, rel=0.03)


@pytest.mark.parametrize(("n_ref", "n_cur"), SIZES)
def test_wasserstein_is_scipys_over_the_reference_std(n_ref, n_cur):
    ref, cur = _blocks(n_ref, n_cur)
    result = numeric_drift(ref, cur, 10)
    for j in range(len(ref)):
        r, c = ref[j][~np.isnan(ref[j])], cur[j][~np.isnan(cur[j])]
        assert result["wasserstein"][j] == pytest.approx(stats.wasserstein_distance(r, c) / np.std(r), rel=1e-9)


@pytest.mark.parametrize(("n_ref", "n_cur"), SIZES)
def test_psi_uses_the_reference_quantile_bins(n_ref, n_cur):
    ref, cur = _blocks(n_ref, n_cur)
    result = numeric_drift(ref, cur, 10)
    for j in range(len(ref)):
        expected = psi(*binned_shares(ref[j], cur[j], quantile_edges(ref[j], 10)))
        assert result["psi"][j] == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_a_constant_reference_makes_any_change_infinitely_large_and_json_still_works():
    report = compute_drift({"x": np.ones(500)}, {"x": np.full(500, 2.0)}, {"x": "float"}, CONFIG)
    assert report.features[0].wasserstein == np.inf and report.drifted
    as_json = json.loads(json.dumps(report.to_dict()))
    assert as_json["features"][0]["wasserstein"] == "inf" and as_json["drifted_features"] == ["x"]


def test_js_distance_is_scipys_in_base_2():
    rng = np.random.default_rng(46)
    for _ in range(20):
        p, q = rng.dirichlet(np.ones(6)), rng.dirichlet(np.ones(6))
        q[2] = 0.0
        assert js_distance(p, q / q.sum()) == pytest.approx(jensenshannon(p, q / q.sum(), base=2), rel=1e-12)
    assert js_distance(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1.0)


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
