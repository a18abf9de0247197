"""The skew check's view part: the features an endpoint looked up and logged, against the as-of join of the view's
offline snapshot at each row's logged time, per feature."""

import pandas as pd
import pyarrow as pa

from mlops_assets.feature_views.training import JoinedView
from mlops_assets.monitoring.skew import compare_views
from mlops_assets.spec.data import ViewReference
from mlops_assets.spec.feature_view import load_feature_views
from tests.conftest import REPO

VIEW = load_feature_views(REPO / "examples" / "feature_store" / "feature_views")["customer"]  # ttl 120d
REFERENCE = ViewReference(view="customer", features=["plan_price"], entity_column="customer_id")
SNAPSHOT = pd.DataFrame(
    {
        "customer_id": [1, 1, 2],
        "updated_at": pd.to_datetime(["2025-01-01T00:00", "2025-03-01T00:00", "2025-01-01T00:00"], utc=True),
        "plan_price": [10.0, 20.0, 30.0],
        "spend_90d": [0.0, 0.0, 0.0],
    }
)
JOINED = JoinedView(VIEW, REFERENCE, SNAPSHOT, "h")


def logged(prices: list) -> pa.Table:
    """Three served rows: customer 1 in February (10 then), in March (20), customer 2 in June (stale: none)."""
    times = pd.to_datetime(["2025-02-01T00:00", "2025-03-02T00:00", "2025-06-01T00:00"], utc=True)
    return pa.table(
        {
            "request_id": ["a", "b", "c"],
            "timestamp": pa.array(times, pa.timestamp("ms", tz="UTC")),
            "customer_id": [1, 1, 2],
            "plan_price": pa.array(prices, pa.float64()),
        }
    )


def test_values_looked_up_as_the_offline_view_had_them_then_pass():
    mismatches, largest = compare_views("1", logged([10.0, 20.0, None]), [JOINED], 1e-9)
    assert mismatches == [] and largest == 0.0


def test_a_value_that_differs_from_the_offline_view_fails_naming_the_view_feature():
    mismatches, _ = compare_views("1", logged([10.0, 10.0, 30.0]), [JOINED], 1e-9)
    assert [(m.name, m.rows) for m in mismatches] == [("customer.plan_price", 2)]
    assert "request b: looked up 10.0" in mismatches[0].example and "20.0" in mismatches[0].example
