"""A view's offline snapshot: every row with its features computed, in (entity, time) order, named by a hash of
its content.

The hash is the snapshot's name and its Dagster data version, as for a pipeline's raw data
(``data.snapshot.content_hash``): the same rows give the same hash, so an unchanged source starts no new work,
and a model version that records the hash can be rebuilt from the same rows. Rows without an entity or a
readable event time cannot be placed in time; they are set aside and counted by reason, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mlops_assets.data.snapshot import content_hash
from mlops_assets.errors import DataError
from mlops_assets.feature_views.point_in_time import FeatureIndex
from mlops_assets.feature_views.windows import window_aggregates
from mlops_assets.model.expressions import Expression
from mlops_assets.spec.feature_view import FeatureView


@dataclass(frozen=True)
class OfflineSnapshot:
    """The view's rows (entity, event time in UTC, features), sorted by (entity, time), and their hash."""

    view: str
    frame: pd.DataFrame
    content_hash: str
    source_rows: int
    set_aside: dict[str, int] = field(default_factory=dict)


def build_snapshot(source: pd.DataFrame, view: FeatureView) -> OfflineSnapshot:
    """The snapshot of ``view`` over the rows read from its source."""
    expressions = {name: Expression.parse(text) for name, text in view.derived.items()}
    needed = set(view.source_columns)
    missing = needed - set(source.columns)
    if missing:
        raise DataError(f"feature view {view.name!r}: the source has no column(s) {sorted(missing)}")
    times = pd.to_datetime(source[view.timestamp], utc=True, errors="coerce")
    no_entity = source[view.entity].isna().to_numpy()
    no_time = times.isna().to_numpy() & ~no_entity
    kept = ~(no_entity | no_time)
    rows = source.loc[kept, sorted(needed)].reset_index(drop=True).assign(**{view.timestamp: times[kept].array})
    rows[view.entity] = _integral(rows[view.entity])
    columns = {name: rows[name].to_numpy() for name in view.features}
    inputs = set().union(*(e.columns for e in expressions.values()))
    numeric = {name: pd.to_numeric(rows[name], errors="coerce").to_numpy(np.float64) for name in inputs}
    columns |= {name: expression.evaluate(numeric) for name, expression in expressions.items()}
    columns |= window_aggregates(rows, view.entity, view.timestamp, view.aggregations)
    frame = pd.DataFrame({view.entity: rows[view.entity], view.timestamp: rows[view.timestamp]} | columns)
    order = FeatureIndex.build(frame[view.entity], frame[view.timestamp]).order
    frame = frame[[view.entity, view.timestamp, *view.feature_names]].take(order).reset_index(drop=True)
    set_aside = {"missing entity": int(no_entity.sum()), "missing or unreadable event time": int(no_time.sum())}
    return OfflineSnapshot(
        view=view.name,
        frame=frame,
        content_hash=content_hash(frame),
        source_rows=len(source),
        set_aside={reason: count for reason, count in set_aside.items() if count},
    )


def _integral(keys: pd.Series) -> pd.Series:
    """Integer keys that became floats because some rows had none are integers again once those rows are gone."""
    if keys.dtype.kind == "f" and len(keys) and np.all(np.mod(keys.to_numpy(), 1) == 0):
        return keys.astype(np.int64)
    return keys
