"""Brute-force references the fast code is checked against: loops over rows, obviously right, slow."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd


def seen_row(features: pd.DataFrame, entity: str, timestamp: str, key, time, ttl: timedelta) -> int:
    """The position of the row an example (``key``, ``time``) may see: the newest of its entity at or before
    ``time`` and not older than ``time - ttl``, the last in source order among equals; -1 if none."""
    best, best_time = -1, None
    for position, (row_key, row_time) in enumerate(zip(features[entity], features[timestamp], strict=True)):
        if row_key != key or row_time > time or row_time < time - ttl:
            continue
        if best_time is None or row_time >= best_time:
            best, best_time = position, row_time
    return best


def window_value(frame: pd.DataFrame, entity: str, timestamp: str, column: str, function: str, window, i: int):
    """The aggregate of row ``i``: its entity's values over ``(time - window, time]``."""
    key, time = frame[entity].iloc[i], frame[timestamp].iloc[i]
    inside = (frame[entity] == key) & (frame[timestamp] <= time) & (frame[timestamp] > time - window)
    values = frame.loc[inside, column].dropna()
    if function == "count":
        return float(len(values))
    if function == "sum":
        return float(values.sum())
    return float(values.mean()) if len(values) else float("nan")
