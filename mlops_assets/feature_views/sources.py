"""Reading a view's source: files, a glob or an object-store URL (as a pipeline's source is read), or a SQL query
against a SQLite file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd

from mlops_assets.data.snapshot import read_files
from mlops_assets.errors import DataError
from mlops_assets.spec.feature_view import FeatureView


def read_view_source(view: FeatureView, base_dir: Path) -> pd.DataFrame:
    """The view's source rows; ``base_dir`` is the view file's folder, which relative paths resolve against."""
    if view.source.sql is not None:
        database = Path(base_dir) / view.source.database
        try:
            with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
                return pd.read_sql_query(view.source.sql, connection)
        except (sqlite3.Error, pd.errors.DatabaseError) as exc:
            raise DataError(f"feature view {view.name!r}: the query on {database} failed: {exc}") from exc
    frame, files, _ = read_files(view.source.path, Path(base_dir), required=view.source_columns)
    if not files:
        raise DataError(f"feature view {view.name!r}: no file matches {view.source.path!r} under {base_dir}")
    return frame
