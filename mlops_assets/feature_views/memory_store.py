"""The in-memory online table: a dict from entity key to its newest row, for an endpoint that holds its views in
process (and for tests)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlops_assets.feature_views.online import OnlineRow, newest_rows
from mlops_assets.feature_views.snapshot import OfflineSnapshot


class InMemoryOnlineStore:
    """``OnlineStore`` in a dict. Rows are built once at write time, so a lookup is one dict access per key."""

    def __init__(self, entity: str):
        self.entity = entity
        self._rows: dict[Any, OnlineRow] = {}

    def write(self, snapshot: OfflineSnapshot) -> None:
        newest = newest_rows(snapshot.frame, self.entity)
        keys = newest[self.entity].tolist()
        records = newest.drop(columns=[self.entity]).to_dict(orient="records")
        self._rows = dict(zip(keys, records, strict=True))  # swapped whole: a reader never sees half a write

    def get(self, entity_keys: Sequence[Any]) -> list[OnlineRow | None]:
        rows = self._rows
        return [rows.get(key) for key in entity_keys]
