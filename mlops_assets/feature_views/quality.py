"""What a view's asset checks measure, as plain values: how old its newest row is against the TTL, the largest
share of missing values of a feature, and whether every source row is accounted for.

Kept apart from Dagster so the verdicts are tested on frames, and so the models that use a view can read the
same verdict (a view older than its TTL leaves every example and request of theirs without its values).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

from mlops_assets.feature_views.snapshot import OfflineSnapshot
from mlops_assets.spec.feature_view import FeatureView


@dataclass(frozen=True)
class Freshness:
    newest_event: str | None  # ISO 8601, UTC; None for an empty snapshot
    age: timedelta | None
    ttl: timedelta

    @property
    def passed(self) -> bool:
        return self.age is not None and self.age <= self.ttl


@dataclass(frozen=True)
class NullShares:
    by_feature: dict[str, float]
    threshold: float

    @property
    def worst(self) -> float:
        return max(self.by_feature.values(), default=0.0)

    @property
    def passed(self) -> bool:
        return self.worst <= self.threshold


@dataclass(frozen=True)
class RowsConserved:
    source_rows: int
    snapshot_rows: int
    set_aside: dict[str, int]

    @property
    def passed(self) -> bool:
        return self.source_rows == self.snapshot_rows + sum(self.set_aside.values())


def freshness(snapshot: OfflineSnapshot, view: FeatureView, now: datetime) -> Freshness:
    """The age of the snapshot's newest event at ``now``: past the TTL, no example or request gets a value."""
    times = snapshot.frame[view.timestamp]
    if times.empty:
        return Freshness(None, None, view.ttl)
    newest = times.max()
    return Freshness(newest.isoformat(), pd.Timestamp(now).tz_convert("UTC") - newest, view.ttl)


def null_shares(snapshot: OfflineSnapshot, view: FeatureView, threshold: float) -> NullShares:
    """The share of missing values per feature (a windowed mean of an entity without values is missing)."""
    frame = snapshot.frame
    shares = {name: float(frame[name].isna().mean()) if len(frame) else 0.0 for name in view.feature_names}
    return NullShares(shares, threshold)


def rows_conserved(snapshot: OfflineSnapshot) -> RowsConserved:
    """Every source row is in the snapshot or set aside with a reason."""
    return RowsConserved(snapshot.source_rows, len(snapshot.frame), dict(snapshot.set_aside))
