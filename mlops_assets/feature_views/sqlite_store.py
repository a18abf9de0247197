"""The SQLite online table: the newest row per entity in one table keyed by the entity, for an endpoint whose
views outlive its process or are shared by its workers."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops_assets.feature_views.online import OnlineRow, newest_rows
from mlops_assets.feature_views.snapshot import OfflineSnapshot


class SQLiteOnlineStore:
    """``OnlineStore`` in a SQLite file (or ``:memory:``). A write fills a new table and renames it over the old
    one in one transaction, so a reader sees the old rows or the new ones, never a mix."""

    def __init__(self, path: str | Path, view: str, entity: str):
        self.entity = entity
        self.table = f"view_{view}"
        self._connection = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._columns: list[str] = []
        self._select = ""

    def write(self, snapshot: OfflineSnapshot) -> None:
        newest = newest_rows(snapshot.frame, self.entity)
        columns = [c for c in newest.columns if c != self.entity]
        for column in columns:  # SQLite has no datetime: times travel as ISO 8601 text
            if isinstance(newest[column].dtype, pd.DatetimeTZDtype) or newest[column].dtype.kind == "M":
                newest[column] = newest[column].map(pd.Timestamp.isoformat)
        quoted = ", ".join(_quote(c) for c in columns)
        staging = _quote(self.table + "_new")
        cursor = self._connection.cursor()
        cursor.execute("BEGIN")
        cursor.execute(f"DROP TABLE IF EXISTS {staging}")
        cursor.execute(f"CREATE TABLE {staging} ({_quote(self.entity)} PRIMARY KEY, {quoted}) WITHOUT ROWID")
        placeholders = ", ".join("?" * (len(columns) + 1))
        cursor.executemany(
            f"INSERT INTO {staging} VALUES ({placeholders})",
            newest.astype(object).where(newest.notna()).itertuples(index=False, name=None),
        )
        cursor.execute(f"DROP TABLE IF EXISTS {_quote(self.table)}")
        cursor.execute(f"ALTER TABLE {staging} RENAME TO {_quote(self.table)}")
        cursor.execute("COMMIT")
        self._columns = columns
        self._select = (
            f"SELECT {_quote(self.entity)}, {quoted} FROM {_quote(self.table)} WHERE {_quote(self.entity)} IN "
        )

    def get(self, entity_keys: Sequence[Any]) -> list[OnlineRow | None]:
        if not self._columns or not entity_keys:
            return [None] * len(entity_keys)
        entity_keys = [k.item() if isinstance(k, np.generic) else k for k in entity_keys]  # sqlite3 binds int
        query = self._select + "(" + ", ".join("?" * len(entity_keys)) + ")"
        found = {
            row[0]: dict(zip(self._columns, row[1:], strict=True))
            for row in self._connection.execute(query, list(entity_keys))
        }
        return [found.get(key) for key in entity_keys]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
