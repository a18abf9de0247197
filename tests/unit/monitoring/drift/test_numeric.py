"""The numeric statistics of many columns at once (KS, Wasserstein, PSI), equal to scipy's column by column."""

import numpy as np
import pytest
from scipy import stats

from mlops_assets.monitoring.drift.divergence import psi
from mlops_assets.monitoring.drift.numeric import EXACT_KS_MAX_ROWS, numeric_drift
from tests.unit.monitoring.drift.oracles import binned_shares, quantile_edges


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
