"""PSI, the reference's quantile bins and the Jensen-Shannon distance, by hand and against scipy."""

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

from mlops_assets.monitoring.drift.divergence import js_distance, psi
from tests.unit.monitoring.drift.oracles import binned_shares, quantile_edges


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


def test_js_distance_is_scipys_in_base_2():
    rng = np.random.default_rng(46)
    for _ in range(20):
        p, q = rng.dirichlet(np.ones(6)), rng.dirichlet(np.ones(6))
        q[2] = 0.0
        assert js_distance(p, q / q.sum()) == pytest.approx(jensenshannon(p, q / q.sum(), base=2), rel=1e-12)
    assert js_distance(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1.0)
