"""The online table: the newest row per entity, looked up by key at serving time.

``OnlineStore`` is the contract the endpoint will read through; the in-memory and SQLite tables are the embedded
defaults, and PostgreSQL or Redis can stand behind the same two methods. A store keeps each entity's newest row
whatever its age and returns its event time with it: whether a stale value is refused or flagged is the
caller's decision (the spec's ``on_invalid``), which ``is_expired`` informs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

import pandas as pd

from mlops_assets.feature_views.snapshot import OfflineSnapshot

OnlineRow = dict[str, Any]  # the view's features and its timestamp column, by name


class OnlineStore(Protocol):
    """Where a view's newest rows are served from.

    ``write(snapshot)`` replaces the table with the newest row of each entity of the snapshot (the view's
    asset calls it when the view materializes). ``get(entity_keys)`` returns, for each key in order, that
    entity's row (features and event time), or ``None`` for an entity the snapshot did not hold. Keys compare
    as the snapshot's entity values do: an integer entity is looked up with integers.
    """

    def write(self, snapshot: OfflineSnapshot) -> None: ...

    def get(self, entity_keys: Sequence[Any]) -> list[OnlineRow | None]: ...


def newest_rows(frame: pd.DataFrame, entity: str) -> pd.DataFrame:
    """The last row of each entity of a snapshot frame (sorted by entity and time: the newest, ties in source
    order, as the as-of join picks)."""
    return frame[~frame[entity].duplicated(keep="last")].reset_index(drop=True)


def is_expired(row: OnlineRow, timestamp: str, ttl: timedelta, now: datetime) -> bool:
    """Whether ``row``'s value is older than ``ttl`` at ``now`` (or from after ``now``): the as-of join at
    ``now`` would not have given it."""
    event_time = pd.Timestamp(row[timestamp])
    now = pd.Timestamp(now)
    event_time = event_time.tz_localize("UTC") if event_time.tzinfo is None else event_time
    now = now.tz_localize("UTC") if now.tzinfo is None else now
    return not (now - ttl <= event_time <= now)
