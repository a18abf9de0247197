"""Feature views looked up at serving: a request carries each view's entity key, the endpoint adds the view's
features from its online table, in process, before the row checks (issue 22, docs/features.md "Serving").

Each view a spec references (``features.views``) is held as a dict from entity key to the entity's newest row
(its event time in seconds and its feature values), loaded from the online table the view's asset last wrote:
``feature_views/<view>/online/current.json`` in the artifact store names it. ``refresh`` re-reads that pointer
(a few bytes) and reloads a table only when the pointer names another snapshot; ``start`` does so every few
seconds on a thread of its own, off the requests' path, and ``/admin/reload`` does it at once. A table is
replaced whole, by one reference: a request sees the old rows or the new ones.

``add`` is the request's part: one dict lookup per row and view, and one list per feature. A row whose entity
has no online row, or whose newest value is older than the view's TTL at the request's time (or from after it),
gets no value: its features are null and the row gets a ``Violation`` on the key column, naming the view and
why, which the endpoint's row checks treat as any broken rule (``deployment.on_invalid``: 400 naming the row,
entity and view, or the row flagged in the log). A value is never filled in. Once added, the view features are
ordinary input columns: checked against the spec's rules, logged, and featurised by the model.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import pandas as pd

from mlops_assets.errors import PayloadError
from mlops_assets.naming import ViewPrefix, view_store_key
from mlops_assets.serving.row_checks import Cause, SchemaRejection, Violation

if TYPE_CHECKING:
    from mlops_assets.contracts import ArtifactStore
    from mlops_assets.spec import PipelineSpec
    from mlops_assets.spec.feature_view import FeatureView

log = logging.getLogger(__name__)

REFRESH_EVERY_S = 5.0  # how often ``start``'s thread reads each view's pointer


@dataclass(frozen=True)
class ServedView:
    """One view reference as the endpoint serves it: the request's key column and the features it adds."""

    name: str
    entity: str  # the key column of the view's online table
    key_column: str  # the request's column holding the key (the reference's ``entity_column``)
    timestamp: str  # the online table's event-time column
    features: tuple[str, ...]
    ttl_s: float

    @classmethod
    def of(cls, reference, view: FeatureView) -> ServedView:
        from mlops_assets.spec.feature_view import entity_column, referenced_features

        return cls(
            view.name,
            view.entity,
            entity_column(reference, view),
            view.timestamp,
            tuple(referenced_features(reference, view)),
            view.ttl.total_seconds(),
        )


class OnlineTable(NamedTuple):
    """A view's online rows in memory: entity key -> (event time in epoch seconds, feature values)."""

    content_hash: str
    rows: dict[Any, tuple[float, tuple]]

    @classmethod
    def of(cls, served: ServedView, frame: pd.DataFrame, content_hash: str) -> OnlineTable:
        """From an online table (or any snapshot: the last row of each entity is kept, as ``newest_rows``)."""
        frame = frame[~frame[served.entity].duplicated(keep="last")]
        times = pd.to_datetime(frame[served.timestamp], utc=True)
        seconds = (times - pd.Timestamp(0, tz="UTC")).dt.total_seconds().tolist()
        values = zip(*(_plain(frame[name].tolist()) for name in served.features), strict=True)
        keys = frame[served.entity].tolist()
        return cls(content_hash, dict(zip(keys, zip(seconds, values, strict=True), strict=True)))


def _plain(values: list) -> list:
    """NaN as None: a missing feature value is null in the request's columns, as a client would send it."""
    return [None if isinstance(v, float) and math.isnan(v) else v for v in values]


class ViewLookup:
    """The online tables of the views one endpoint serves, and the lookup that adds their features to requests.

    ``store`` is the artifact store the views' assets write to (``None``: tables are given with ``load``, as in
    tests); ``clock`` gives the request's time in epoch seconds (the TTL is judged against it).
    """

    def __init__(
        self,
        views: Sequence[ServedView],
        store: ArtifactStore | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.views = tuple(views)
        self.store = store
        self.clock = clock
        self.tables: dict[str, OnlineTable] = {}
        self.key_columns = {v.key_column: "int" for v in self.views}  # replaced by the spec's dtypes (``for_spec``)
        self.feature_columns = frozenset(f for v in self.views for f in v.features)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def for_spec(
        cls, spec: PipelineSpec, views: dict[str, FeatureView], store: ArtifactStore | None, **options: Any
    ) -> ViewLookup | None:
        """The lookup of ``spec``'s view references (``None`` for a spec without any)."""
        if not spec.features.views:
            return None
        lookup = cls([ServedView.of(ref, views[ref.view]) for ref in spec.features.views], store, **options)
        lookup.key_columns = {v.key_column: spec.schema_.columns[v.key_column].dtype for v in lookup.views}
        return lookup

    def load(self, view: str, frame: pd.DataFrame, content_hash: str) -> None:
        """Serve ``frame`` as ``view``'s online table from the next request on."""
        served = next(v for v in self.views if v.name == view)
        self.tables = {**self.tables, view: OnlineTable.of(served, frame, content_hash)}

    def refresh(self) -> list[str]:
        """Load each view's online table whose pointer (``online/current.json``) names a snapshot other than the
        one served; the views reloaded. A view whose pointer or table cannot be read keeps its table."""
        reloaded = []
        for served in self.views:
            try:
                key = view_store_key(served.name, ViewPrefix.online, "current.json")
                assert self.store is not None, "refresh reads the views' tables from an artifact store"
                if not self.store.exists(key):  # not materialized yet: every entity of it is missing
                    continue
                pointer = json.loads(self.store.read_bytes(key))
                held = self.tables.get(served.name)
                if held is not None and held.content_hash == pointer["content_hash"]:
                    continue
                frame = self.store.read_table(pointer["online_table"]).to_pandas()
                self.load(served.name, frame, pointer["content_hash"])
                reloaded.append(served.name)
                log.info("view %s: serving online table %s", served.name, pointer["content_hash"])
            except Exception:
                log.exception("view %s: could not refresh its online table; serving the one held", served.name)
        return reloaded

    def start(self, every_s: float = REFRESH_EVERY_S) -> ViewLookup:
        """Refresh now, then every ``every_s`` seconds on a daemon thread until ``stop``."""
        self.refresh()

        def poll() -> None:
            while not self._stop.wait(every_s):
                self.refresh()

        self._thread = threading.Thread(target=poll, name="view-refresh", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def add(self, columns: dict[str, list], now: float | None = None) -> list[Violation]:
        """Add each view's features to the request's ``columns`` (as sent), for its entity keys; the rows whose
        entity has no value valid at ``now`` (default: the clock's), as violations of the key column."""
        now = self.clock() if now is None else now
        problems: list[Violation] = []
        tables = self.tables
        for served in self.views:
            keys = columns.get(served.key_column)
            if keys is None:
                raise SchemaRejection(
                    f"missing column {served.key_column!r}: the entity key of feature view {served.name!r}",
                    [Cause(served.key_column, "missing from the request")],
                )
            sent = [name for name in served.features if name in columns]
            if sent:
                raise PayloadError(
                    f"the request carries {sent}, features of view {served.name!r}: the endpoint looks them up by "
                    f"{served.key_column!r}; drop them from the request"
                )
            table = tables.get(served.name)
            rows = table.rows if table is not None else {}
            oldest = now - served.ttl_s
            found: list[tuple | None] = []
            for i, key in enumerate(keys):
                row = rows.get(key)
                if row is None and key is not None:
                    row = rows.get(_as_key(key))
                if row is None:
                    found.append(None)
                    problems.append(Violation(i, served.key_column, _absent(served, table), key))
                elif not oldest <= row[0] <= now:
                    found.append(None)
                    problems.append(Violation(i, served.key_column, _stale(served, row[0]), key))
                else:
                    found.append(row[1])
            for j, name in enumerate(served.features):
                columns[name] = [None if values is None else values[j] for values in found]
        return problems


def _as_key(key: Any) -> Any:
    """A key sent as text or as a whole float (``"121"``, ``121.0``), as the integer the table holds."""
    try:
        number = float(key)
    except (TypeError, ValueError):
        return key
    return int(number) if number.is_integer() else number


def _absent(served: ServedView, table: OnlineTable | None) -> str:
    if table is None:
        return f"feature view {served.name!r}: no online table loaded yet (materialize the view), for entity"
    return f"feature view {served.name!r}: missing entity (not in the online table {table.content_hash[:12]}),"


def _stale(served: ServedView, event_s: float) -> str:
    event = pd.Timestamp(event_s, unit="s", tz="UTC").isoformat()
    ttl = pd.Timedelta(seconds=served.ttl_s)
    return f"feature view {served.name!r}: stale entity (its newest value, of {event}, is not within the TTL {ttl}),"
