"""The online tables return, for each entity, the values the as-of join gives at "now": the newest row, and
nothing once it is older than the TTL."""

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from mlops_assets.feature_views import (
    InMemoryOnlineStore,
    SQLiteOnlineStore,
    as_of_join,
    build_snapshot,
    is_expired,
)
from mlops_assets.spec.feature_view import FeatureView

START = pd.Timestamp("2025-01-01", tz="UTC")
VIEW = FeatureView(
    name="customers",
    entity="customer_id",
    timestamp="event_time",
    source={"path": "s3://bucket/customers/"},
    features=["age", "segment"],
    aggregations=[{"column": "spend", "function": "mean", "window": "3d"}],
    ttl="5d",
)


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path):
    if request.param == "memory":
        return InMemoryOnlineStore(VIEW.entity)
    return SQLiteOnlineStore(tmp_path / "online.db", VIEW.name, VIEW.entity)


def snapshot(seed):
    rng = np.random.default_rng(seed)
    n = 400
    source = pd.DataFrame(
        {
            "customer_id": rng.integers(0, 40, n),
            "event_time": START + pd.to_timedelta(rng.integers(0, 20, n), unit="D"),
            "age": rng.integers(18, 90, n),
            "segment": rng.choice(["a", "b"], n),
            "spend": rng.random(n),
        }
    )
    return build_snapshot(source, VIEW)


def test_the_online_table_gives_the_same_values_as_the_as_of_join_at_now(store):
    offline = snapshot(0)
    store.write(offline)
    now = START + pd.Timedelta(days=22)
    keys = list(range(45))  # 40..44 were never seen
    rows = store.get(keys)
    online = [None if row is None or is_expired(row, VIEW.timestamp, VIEW.ttl, now) else row for row in rows]
    examples = pd.DataFrame({"customer_id": keys, "event_time": now})
    joined = as_of_join(examples, offline.frame, entity=VIEW.entity, timestamp=VIEW.timestamp, ttl=VIEW.ttl)
    assert any(row is None for row in online) and any(row is not None for row in online)
    for row, (_, expected) in zip(online, joined.iterrows(), strict=True):
        if row is None:
            assert all(pd.isna(expected[name]) for name in VIEW.feature_names)
            continue
        for name in VIEW.feature_names:
            assert row[name] == pytest.approx(expected[name]) if name != "segment" else row[name] == expected[name]
        assert pd.Timestamp(row[VIEW.timestamp]) <= now


def test_a_new_write_replaces_every_row(store):
    store.write(snapshot(0))
    second = snapshot(1)
    store.write(second)
    newest = second.frame.groupby("customer_id").tail(1).set_index("customer_id")
    rows = store.get(list(newest.index))
    assert [row["age"] for row in rows] == newest["age"].tolist()


def test_an_empty_request_and_an_unwritten_store_answer_nothing(store):
    assert store.get([]) == []
    assert store.get([1]) == [None]


def test_a_value_is_expired_past_its_ttl_or_from_the_future():
    row = {"event_time": START}
    assert not is_expired(row, "event_time", timedelta(days=1), START + pd.Timedelta(days=1))
    assert is_expired(row, "event_time", timedelta(days=1), START + pd.Timedelta(days=1, seconds=1))
    assert is_expired(row, "event_time", timedelta(days=1), START - pd.Timedelta(seconds=1))
