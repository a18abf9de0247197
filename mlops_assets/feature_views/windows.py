"""Windowed aggregations per entity: for each row, the count, sum or mean of its entity's values over
``(time - window, time]``.

Computed on the view's own rows, so that each row carries the aggregate as it stood at its event time; the as-of
join then hands an example the aggregate of the newest row at or before it, and no example sees a value from its
future. Rows at the same time as a row count in its window (they were known at that time), later rows never do.

Rows are sorted by (entity, time) once; with cumulative sums over that order, a window is the difference of two
positions found by binary search: linear in rows plus a log factor, whatever the window's length.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

from mlops_assets.feature_views.point_in_time import FeatureIndex
from mlops_assets.spec.feature_view import Aggregation


def window_aggregates(
    frame: pd.DataFrame, entity: str, timestamp: str, aggregations: list[Aggregation]
) -> dict[str, np.ndarray]:
    """Each aggregation's values (float64) per row of ``frame``, in its order, keyed by feature name."""
    if not aggregations or frame.empty:
        return {a.feature_name: np.full(len(frame), np.nan) for a in aggregations}
    index = FeatureIndex.build(frame[entity], frame[timestamp])
    ends = np.searchsorted(index.keys, index.keys, side="right")  # rows at the same time count
    starts = {window: _window_starts(index, window) for window in {a.window for a in aggregations}}
    result = {}
    for aggregation in aggregations:
        values = pd.to_numeric(frame[aggregation.column], errors="coerce").to_numpy(dtype=np.float64)[index.order]
        present = ~np.isnan(values)
        counts = _prefix(present.astype(np.float64))
        start = starts[aggregation.window]
        count = counts[ends] - counts[start]
        if aggregation.function == "count":
            value = count
        else:
            total = _prefix(np.where(present, values, 0.0))
            value = total[ends] - total[start]
            if aggregation.function == "mean":
                with np.errstate(invalid="ignore", divide="ignore"):
                    value = np.where(count > 0, value / np.maximum(count, 1), np.nan)
        value[index.codes < 0] = np.nan  # rows without an entity belong to no window
        in_frame_order = np.empty_like(value)
        in_frame_order[index.order] = value
        result[aggregation.feature_name] = in_frame_order
    return result


def _window_starts(index: FeatureIndex, window: timedelta) -> np.ndarray:
    """Per sorted row, the first row of its entity whose time is after ``time - window``."""
    before = index.times - pd.Timedelta(window).value
    keys = index.codes * (index.clock.span + 1) + index.clock.at_or_before(before)
    return np.searchsorted(index.keys, keys, side="right")


def _prefix(values: np.ndarray) -> np.ndarray:
    """Cumulative sums with a leading zero: the sum of rows ``[a, b)`` is ``prefix[b] - prefix[a]``."""
    return np.concatenate(([0.0], np.cumsum(values)))
