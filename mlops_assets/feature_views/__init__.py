"""Feature views: features defined once per entity and event time, joined point-in-time for training and looked
up online at serving (issue 22).

The computations are pure (frames in, frames out); the view's Dagster asset reads the source, calls them and
writes the results. The package's names are its public API.
"""

from mlops_assets.feature_views.memory_store import InMemoryOnlineStore
from mlops_assets.feature_views.online import OnlineRow, OnlineStore, is_expired, newest_rows
from mlops_assets.feature_views.point_in_time import FeatureIndex, as_of_join
from mlops_assets.feature_views.snapshot import OfflineSnapshot, build_snapshot
from mlops_assets.feature_views.sources import read_view_source
from mlops_assets.feature_views.sqlite_store import SQLiteOnlineStore
from mlops_assets.feature_views.windows import window_aggregates

__all__ = [
    "FeatureIndex",
    "InMemoryOnlineStore",
    "OfflineSnapshot",
    "OnlineRow",
    "OnlineStore",
    "SQLiteOnlineStore",
    "as_of_join",
    "build_snapshot",
    "is_expired",
    "newest_rows",
    "read_view_source",
    "window_aggregates",
]
