"""Categories as the log stores them: counted, shared out, unseen and missing values in buckets of their own."""

import numpy as np
import pyarrow as pa
import pytest

from mlops_assets.monitoring.drift.categorical import category_counts, category_shares, category_text
from mlops_assets.monitoring.drift.verdict import compute_drift
from mlops_assets.spec.drift import DriftConfig

CONFIG = DriftConfig()


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
