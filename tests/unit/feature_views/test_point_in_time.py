"""The as-of join gives each example the newest feature row of its entity at or before its time and within the
TTL, never a later one: checked against a brute-force oracle on random data with tied timestamps."""

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from mlops_assets.feature_views import FeatureIndex, as_of_join
from tests.unit.feature_views.oracle import seen_row

START = pd.Timestamp("2025-01-01", tz="UTC")


def random_rows(rng, n, entities, times):
    return pd.DataFrame({"customer": rng.choice(entities, n), "event_time": rng.choice(times, n)})


CASES = {
    # integer keys and whole-minute times: keys and minutes are their own codes and ordinals
    "int keys, minutes": (np.arange(8), START + pd.to_timedelta(np.arange(0, 40) * 60, unit="s")),
    # string keys are factorized; nanosecond times over centuries overflow the direct key and are ranked
    "str keys, ranked ns": (
        np.array([f"c{i}" for i in range(8)]),
        pd.DatetimeIndex(START + pd.to_timedelta(np.arange(0, 40) * 79_000_000_000_000_003, unit="ns")),
    ),
    # integer keys spread wide enough that the direct key would overflow
    "wide int keys": (np.arange(8) * 10**15, START + pd.to_timedelta(np.arange(0, 40), unit="D")),
    # integer keys too far apart even for ranked times are factorized
    "huge int keys": (np.arange(8) * 10**17, START + pd.to_timedelta(np.arange(0, 40) * 7, unit="ns")),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_example_sees_a_value_from_after_its_time_or_outside_the_ttl(case, seed):
    entities, times = CASES[case]
    rng = np.random.default_rng(seed)
    features = random_rows(rng, 120, entities[:-1], times[::3]).assign(value=np.arange(120.0))
    assert features.duplicated(["customer", "event_time"]).any()  # ties: the last in source order wins
    examples = random_rows(rng, 200, entities, times)  # the last entity has no features
    examples.index = rng.permutation(200) + 1000  # the examples' own index and order are kept
    ttl = (times[1] - times[0]) * 7
    joined = as_of_join(examples, features, entity="customer", timestamp="event_time", ttl=ttl)
    expected = [
        seen_row(features, "customer", "event_time", key, time, ttl)
        for key, time in zip(examples["customer"], examples["event_time"], strict=True)
    ]
    got = joined["value"].to_numpy()
    assert list(joined.index) == list(examples.index)
    assert [int(v) if v == v else -1 for v in got] == expected
    assert np.isnan(got).any() and not np.isnan(got).all()  # both outcomes occur


def test_a_row_at_exactly_the_example_time_is_seen_and_one_a_nanosecond_later_is_not():
    features = pd.DataFrame(
        {"k": [1, 1], "t": [START, START + pd.Timedelta(1, "ns")], "f": [10.0, 20.0]},
    )
    examples = pd.DataFrame({"k": [1, 1], "t": [START, START + pd.Timedelta(2, "ns")]})
    joined = as_of_join(examples, features, entity="k", timestamp="t", ttl=timedelta(seconds=1))
    assert joined["f"].tolist() == [10.0, 20.0]


def test_a_row_exactly_one_ttl_old_is_seen_and_one_older_is_not():
    features = pd.DataFrame({"k": [1], "t": [START], "f": [1.0]})
    times = [START + pd.Timedelta(days=1), START + pd.Timedelta(days=1, nanoseconds=1)]
    examples = pd.DataFrame({"k": [1, 1], "t": times})
    joined = as_of_join(examples, features, entity="k", timestamp="t", ttl=timedelta(days=1))
    assert joined["f"].tolist()[0] == 1.0 and np.isnan(joined["f"].tolist()[1])


def test_non_float_features_come_back_missing_where_no_row_is_seen():
    features = pd.DataFrame({"k": ["a"], "t": [START], "n": [3], "s": ["x"], "b": [True]})
    examples = pd.DataFrame({"k": ["a", "b"], "t": [START, START]})
    joined = as_of_join(examples, features, entity="k", timestamp="t", ttl=timedelta(days=1))
    assert joined["n"].tolist()[0] == 3 and pd.isna(joined["n"].tolist()[1])
    assert joined["s"].tolist()[0] == "x" and pd.isna(joined["s"].tolist()[1])
    assert joined["b"].tolist()[0] is True or joined["b"].tolist()[0] == True  # noqa: E712
    assert pd.isna(joined["b"].tolist()[1])


def test_examples_may_name_their_entity_and_time_columns_and_naive_times_are_utc():
    features = pd.DataFrame({"k": [1], "t": [START], "f": [5.0]})
    examples = pd.DataFrame({"customer": [1], "when": [START.tz_localize(None) + pd.Timedelta(hours=1)]})
    index = FeatureIndex.build(features["k"], features["t"])
    joined = as_of_join(
        examples,
        features,
        entity="k",
        timestamp="t",
        ttl=timedelta(days=1),
        example_entity="customer",
        example_timestamp="when",
        index=index,
    )
    assert joined["f"].tolist() == [5.0]


def test_float_or_text_example_keys_match_integer_entities_only_by_value():
    features = pd.DataFrame({"k": [1, 2], "t": [START, START], "f": [1.0, 2.0]})
    examples = pd.DataFrame({"k": pd.Series([2.0, "1", None, 7], dtype=object), "t": [START] * 4})
    joined = as_of_join(examples, features, entity="k", timestamp="t", ttl=timedelta(days=1))
    assert joined["f"].tolist()[0] == 2.0 and np.isnan(joined["f"].to_numpy()[1:]).all()


def test_no_feature_rows_means_no_example_sees_a_value():
    features = pd.DataFrame({"k": pd.Series([], dtype="int64"), "t": pd.Series([], dtype="datetime64[ns, UTC]")})
    joined = as_of_join(
        pd.DataFrame({"k": [1], "t": [START]}), features.assign(f=[]), entity="k", timestamp="t", ttl=timedelta(1)
    )
    assert joined["f"].isna().all()


def test_features_already_in_entity_and_time_order_join_as_the_same_rows_shuffled_do():
    rng = np.random.default_rng(5)
    features = random_rows(rng, 200, np.arange(6), START + pd.to_timedelta(np.arange(30), unit="h"))
    features["value"] = np.arange(200.0)
    in_order = features.sort_values(["customer", "event_time"], kind="stable").reset_index(drop=True)
    examples = random_rows(rng, 100, np.arange(7), START + pd.to_timedelta(np.arange(30), unit="h"))
    kwargs = {"entity": "customer", "timestamp": "event_time", "ttl": timedelta(hours=5)}
    shuffled = as_of_join(examples, features, **kwargs)["value"]
    assert shuffled.equals(as_of_join(examples, in_order, **kwargs)["value"])
