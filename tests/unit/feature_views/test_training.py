"""A spec's examples joined with the views it references: each view's chosen features as of the example's own
key and time columns, checked against the brute-force oracle; columns that would clash or are absent are
refused, naming the view."""

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from mlops_assets.errors import DataError
from mlops_assets.feature_views.training import JoinedView, ViewJoin, join_views
from mlops_assets.spec.data import ViewReference
from mlops_assets.spec.feature_view import FeatureView
from tests.unit.feature_views.oracle import seen_row

START = pd.Timestamp("2025-01-01", tz="UTC")


def view(name: str, ttl_days: int, features=("price", "spend")) -> FeatureView:
    return FeatureView.model_construct(
        name=name,
        entity="customer_id",
        timestamp="updated_at",
        features=list(features),
        derived={},
        aggregations=[],
        ttl=timedelta(days=ttl_days),
    )


def snapshot(rng, rows: int) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "customer_id": rng.integers(0, 6, rows),
            "updated_at": START + pd.to_timedelta(rng.integers(0, 90, rows), unit="D"),
            "price": rng.normal(size=rows),
            "spend": rng.normal(size=rows),
        }
    )
    return frame.sort_values(["customer_id", "updated_at"], kind="stable").reset_index(drop=True)


@pytest.mark.parametrize("seed", [0, 1])
def test_each_example_gets_the_oracles_row_of_every_view_it_references(seed):
    rng = np.random.default_rng(seed)
    examples = pd.DataFrame(
        {
            "customer": rng.integers(0, 7, 200),  # customer 6 has no feature rows
            "at": [str(t) for t in START + pd.to_timedelta(rng.integers(-5, 100, 200), unit="D")],
        }
    )
    plans, usage = view("plans", 20), view("usage", 7, features=("sessions", "calls"))
    joined_views = (
        JoinedView(
            plans,
            ViewReference(view="plans", features=["price"], entity_column="customer", time_column="at"),
            snapshot(rng, 150),
            "h1",
        ),
        JoinedView(
            usage,
            ViewReference(view="usage", entity_column="customer", time_column="at"),
            snapshot(rng, 150).rename(columns={"price": "sessions", "spend": "calls"}),
            "h2",
        ),
    )
    joined = ViewJoin(joined_views)(examples)
    assert ViewJoin(joined_views).hashes == {"plans": "h1", "usage": "h2"}
    assert list(joined.columns) == ["customer", "at", "price", "sessions", "calls"]
    for joined_view in joined_views:
        features, ttl = joined_view.snapshot, joined_view.view.ttl
        columns = [c for c in joined.columns if c in features.columns and c not in ("customer_id", "updated_at")]
        for i, example in examples.iterrows():
            row = seen_row(features, "customer_id", "updated_at", example["customer"], pd.Timestamp(example["at"]), ttl)
            for column in columns:
                expected = np.nan if row < 0 else features[column].iloc[row]
                assert np.isclose(joined[column].iloc[i], expected, equal_nan=True)


def test_a_view_feature_the_examples_already_carry_is_refused():
    examples = pd.DataFrame({"customer_id": [1], "updated_at": ["2025-01-02"], "price": [3.0]})
    joined = JoinedView(view("plans", 10), ViewReference(view="plans"), snapshot(np.random.default_rng(0), 5), "h")
    with pytest.raises(DataError, match=r"already carry \['price'\], features of view 'plans'"):
        join_views(examples, [joined])


def test_examples_without_the_key_columns_are_refused():
    examples = pd.DataFrame({"customer_id": [1]})
    joined = JoinedView(view("plans", 10), ViewReference(view="plans"), snapshot(np.random.default_rng(0), 5), "h")
    with pytest.raises(DataError, match=r"lack \['updated_at'\], the key columns of view 'plans'"):
        join_views(examples, [joined])
