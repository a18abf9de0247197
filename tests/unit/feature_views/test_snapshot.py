"""A view's snapshot computes its features, sets aside rows it cannot place in time, and is named by its content."""

import sqlite3

import numpy as np
import pandas as pd
import pytest

from mlops_assets.errors import DataError
from mlops_assets.feature_views import build_snapshot, read_view_source
from mlops_assets.spec.feature_view import FeatureView

VIEW = {
    "name": "customers",
    "entity": "customer_id",
    "timestamp": "event_time",
    "source": {"path": "customers.csv"},
    "features": ["age"],
    "derived": {"spend_per_order": "spend / orders"},
    "aggregations": [{"column": "spend", "function": "sum", "window": "2d"}],
    "ttl": "7d",
}
SOURCE = pd.DataFrame(
    {
        "customer_id": [2, 1, 1, None, 1],
        "event_time": ["2025-01-03", "2025-01-01", "2025-01-02", "2025-01-01", "not a time"],
        "age": [40, 30, 31, 50, 32],
        "spend": [5.0, 1.0, 2.0, 9.0, 4.0],
        "orders": [1, 2, 4, 1, 1],
    }
)


def test_the_snapshot_holds_the_features_in_entity_and_time_order_and_counts_what_it_set_aside():
    snapshot = build_snapshot(SOURCE, FeatureView(**VIEW))
    frame = snapshot.frame
    assert list(frame.columns) == ["customer_id", "event_time", "age", "spend_per_order", "spend_sum_2d"]
    assert frame["customer_id"].tolist() == [1, 1, 2]
    assert frame["spend_per_order"].tolist() == [0.5, 0.5, 5.0]
    assert frame["spend_sum_2d"].tolist() == [1.0, 3.0, 5.0]
    assert str(frame["event_time"].dt.tz) == "UTC"
    assert snapshot.set_aside == {"missing entity": 1, "missing or unreadable event time": 1}
    assert snapshot.source_rows == 5


def test_the_same_rows_in_another_order_give_the_same_hash_and_another_value_another_hash():
    view = FeatureView(**VIEW)
    first = build_snapshot(SOURCE, view).content_hash
    assert build_snapshot(SOURCE.sample(frac=1, random_state=3), view).content_hash == first
    assert build_snapshot(SOURCE.assign(age=SOURCE["age"] + 1), view).content_hash != first


def test_a_source_without_a_declared_column_is_an_error_naming_the_view_and_the_columns():
    with pytest.raises(DataError, match=r"feature view 'customers': the source has no column\(s\) \['orders'\]"):
        build_snapshot(SOURCE.drop(columns=["orders"]), FeatureView(**VIEW))


def test_a_view_reads_files_or_a_sqlite_query(tmp_path):
    SOURCE.to_csv(tmp_path / "customers.csv", index=False)
    view = FeatureView.model_validate(VIEW, context={"base_dir": tmp_path})
    assert len(read_view_source(view, tmp_path)) == 5
    with sqlite3.connect(tmp_path / "shop.db") as connection:
        SOURCE.to_sql("customers", connection, index=False)
    query = {"sql": "SELECT * FROM customers WHERE age < 50", "database": "shop.db"}
    view = FeatureView.model_validate(VIEW | {"source": query}, context={"base_dir": tmp_path})
    read = read_view_source(view, tmp_path)
    assert len(read) == 4 and np.isclose(read["spend"].sum(), 12.0)
