"""Windows of the inference log: the newest rows, the rows ending at a count, the rows logged since a time, and
the served version's predictions in a window."""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlops_assets.contracts import ArtifactStore
from mlops_assets.data.locations import log_file_written_ns, log_files
from mlops_assets.naming import WINDOW_PREFIX

log = logging.getLogger(__name__)


PREDICTION = "prediction"


@dataclass(frozen=True)
class LogWindow:
    table: pa.Table
    end: str | None  # key of the newest file read: names the window, so one window triggers one retraining
    skipped: list[str] = field(default_factory=list)  # unreadable files, reported and left out


def newest_window(store: ArtifactStore, prefix: str, rows: int) -> LogWindow:
    """The last ``rows`` logged rows, reading files newest first until the window is full, so memory is
    bounded by the window plus one file, not by the log."""
    tables, total, skipped, end = [], 0, [], None
    for key in reversed(log_files(store, prefix)):
        try:
            table = store.read_table(key)
        except (OSError, pa.ArrowException) as exc:
            log.warning("skipping unreadable inference log file %s: %s", key, exc)
            skipped.append(key)
            continue
        end = end or key
        tables.append(table)
        total += table.num_rows
        if total >= rows:
            break
    if not tables:
        return LogWindow(pa.table({}), None, skipped)
    window = pa.concat_tables(reversed(tables), promote_options="permissive")
    return LogWindow(window.slice(max(0, window.num_rows - rows)), end, skipped)


def window_ending_at(store: ArtifactStore, prefix: str, end_row: int, rows: int) -> LogWindow:
    """The ``rows`` logged rows that end at row ``end_row`` of the log (counted over its readable files in
    write order, as the drift sensor counts them): each report reads the window it was asked for, however
    much traffic came since. Row counts come from footers; only the files of the window are read."""
    tables, skipped, seen = [], [], 0
    start_row = max(end_row - rows, 0)
    for key in log_files(store, prefix):
        if seen >= end_row:
            break
        try:
            count = store.row_count(key)
        except (OSError, pa.ArrowException):
            skipped.append(key)
            continue
        first, seen = seen, seen + count
        if seen <= start_row:
            continue
        table = store.read_table(key)
        tables.append(table.slice(max(start_row - first, 0), min(end_row, seen) - max(start_row, first)))
    if not tables:
        return LogWindow(pa.table({}), None, skipped)
    return LogWindow(
        pa.concat_tables(tables, promote_options="permissive"), f"{WINDOW_PREFIX}{start_row}-{end_row}", skipped
    )


def log_since(store: ArtifactStore, prefix: str, since: dt.datetime, until: dt.datetime | None = None) -> pa.Table:
    """Rows logged at or after ``since`` (and before ``until``). File names start with their write time in
    nanoseconds, and a file holds rows logged before it was written, so older files are never opened."""
    start_ms = int(since.timestamp() * 1000)
    end_ms = math.inf if until is None else int(until.timestamp() * 1000)
    tables = []
    for key in log_files(store, prefix):
        written_ns = log_file_written_ns(key)
        if written_ns is not None and written_ns // 1_000_000 < start_ms:
            continue
        table = store.read_table(key)
        timestamps = table.column("timestamp").cast(pa.int64())
        keep = pc.greater_equal(timestamps, start_ms)
        if until is not None:
            keep = pc.and_(keep, pc.less(timestamps, end_ms))
        tables.append(table.filter(keep))
    return pa.concat_tables(tables, promote_options="permissive") if tables else pa.table({})


def served_predictions(window: pa.Table, version: str, min_rows: int) -> tuple[np.ndarray | None, str]:
    """The window's predictions by the served version, and a note when they are too few to compare.

    Prediction drift is the served model's: rows another version answered (before a swap) say nothing
    about it, and would read as drift the moment a retrained model starts serving."""
    if PREDICTION not in window.column_names:
        return None, ""
    mine = pc.equal(window.column("model_version"), version) if "model_version" in window.column_names else None
    predictions = window.column(PREDICTION) if mine is None else window.column(PREDICTION).filter(mine)
    if len(predictions) < min_rows:
        return None, (
            f"The prediction is not compared: {len(predictions)} rows of the window were answered by v{version}, "
            f"a verdict needs {min_rows} (monitoring.min_rows)."
        )
    return predictions.to_numpy(zero_copy_only=False), ""
