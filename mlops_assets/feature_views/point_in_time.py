"""The point-in-time (as-of) join: each example gets the newest feature row of its entity at or before its own
time and within the view's TTL, never a later one, so a training set sees only what was known when the example
happened.

The join is one sort and one binary search, in numpy, rather than ``pandas.merge_asof``: that one sorts both
sides by time and walks them with a hash table per entity, several times slower on millions of rows. Feature
rows get one monotone integer key, ``entity code * span + time ordinal``, and are sorted by it; an example's key
uses the ordinal of the newest feature time at or before its own time, so ``searchsorted(side="right") - 1``
lands on the newest row of its entity at or before it, or on another entity's row, which is rejected. The TTL
is checked on the row found: any other row of the entity at or before the example is older still. Of several
rows with the same entity and time, the last in source order wins (the sort is stable).

Codes and ordinals are kept small without a hash table or a dedupe where the data allow it: integer entity keys
are their own codes (offset by the smallest), and times that are whole seconds (or minutes, days...) count in
that unit. Where the key would not fit in 63 bits, entities are factorized and times ranked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pandas as pd

_UNITS_NS = [86_400 * 10**9, 3_600 * 10**9, 60 * 10**9, 10**9, 10**6, 10**3, 1]
_KEY_LIMIT = 2**62


@dataclass(frozen=True)
class _Entities:
    """Entity values to codes: an integer offset, or a factorized index."""

    offset: int | None
    index: pd.Index | None
    count: int

    @classmethod
    def of(cls, keys: np.ndarray, factorize: bool = False) -> tuple[_Entities, np.ndarray]:
        if keys.dtype.kind in "iu" and len(keys) and not factorize:
            low, high = int(keys.min()), int(keys.max())
            return cls(low, None, high - low + 1), keys.astype(np.int64) - low
        codes, uniques = pd.factorize(keys, sort=True, use_na_sentinel=True)  # codes in value order
        return cls(None, pd.Index(uniques), len(uniques)), codes.astype(np.int64)

    def codes(self, keys: np.ndarray) -> np.ndarray:
        """Codes of other keys (examples, requests); -1 for an entity the features never saw."""
        if self.offset is None:
            return self.index.get_indexer(keys).astype(np.int64)
        if keys.dtype.kind not in "iu":  # integral floats (ints that met a missing value) match; text never does
            numbers = pd.to_numeric(pd.Series(keys, dtype=object).where(_is_number(keys)), errors="coerce")
            integral = (numbers % 1 == 0).to_numpy()
            codes = np.where(integral, numbers.fillna(-1).to_numpy(np.float64), -1).astype(np.int64) - self.offset
            return np.where(integral & (codes >= 0) & (codes < self.count), codes, -1)
        codes = keys.astype(np.int64) - self.offset
        return np.where((codes >= 0) & (codes < self.count), codes, -1)


@dataclass(frozen=True)
class _Clock:
    """Times to small ordinals that keep their order: whole units since the first time, or ranks."""

    base: int
    unit: int
    distinct: np.ndarray | None  # sorted distinct times when ranking
    span: int  # ordinals run over 0..span-1

    @classmethod
    def of(cls, times: np.ndarray, entity_count: int) -> tuple[_Clock, np.ndarray]:
        base = int(times.min()) if len(times) else 0
        relative = times - base
        unit = next(u for u in _UNITS_NS if not (relative % u).any())
        span = int(relative.max()) // unit + 1 if len(times) else 1
        if (entity_count + 1) * (span + 1) < _KEY_LIMIT:
            return cls(base, unit, None, span), relative // unit
        ordered = np.sort(times)
        distinct = ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]
        return cls(base, 1, distinct, len(distinct)), np.searchsorted(distinct, times)

    def at_or_before(self, times: np.ndarray) -> np.ndarray:
        """The ordinal of the newest feature time at or before each time (-1 before the first)."""
        if self.distinct is not None:
            return np.searchsorted(self.distinct, times, side="right") - 1
        return np.clip((times - self.base) // self.unit, -1, self.span - 1)


@dataclass(frozen=True)
class FeatureIndex:
    """Feature rows ready to be joined many times: their order by (entity, time) and the keys searched."""

    order: np.ndarray  # original positions, sorted by (entity, time), ties in source order
    keys: np.ndarray  # the monotone key of each sorted row
    times: np.ndarray  # int64 nanoseconds of each sorted row
    codes: np.ndarray  # entity code of each sorted row
    entities: _Entities
    clock: _Clock

    @classmethod
    def build(cls, entity_keys: pd.Series | np.ndarray, event_times: pd.Series | np.ndarray) -> FeatureIndex:
        keys, times = np.asarray(entity_keys), nanoseconds(event_times)
        entities, codes = _Entities.of(keys)
        clock, ordinals = _Clock.of(times, entities.count)
        if (entities.count + 1) * (clock.span + 1) >= _KEY_LIMIT:  # integer keys too far apart to be codes
            entities, codes = _Entities.of(keys, factorize=True)
            clock, ordinals = _Clock.of(times, entities.count)
        keys = codes * (clock.span + 1) + ordinals
        keys[codes < 0] = -1  # rows without an entity never match
        if len(keys) < 2 or (keys[1:] >= keys[:-1]).all():  # a snapshot is stored in this order: no sort
            order = np.arange(len(keys))
        else:
            order = np.argsort(keys, kind="stable")
        return cls(order, keys[order], times[order], codes[order], entities, clock)

    def lookup(
        self, entity_keys: pd.Series | np.ndarray, event_times: pd.Series | np.ndarray, ttl: timedelta
    ) -> np.ndarray:
        """For each example, the position (in the original feature rows) of the row it sees, or -1."""
        if not len(self.keys):
            return np.full(len(entity_keys), -1)
        codes = self.entities.codes(np.asarray(entity_keys))
        times = nanoseconds(event_times)
        ordinals = self.clock.at_or_before(times)
        keys = codes * (self.clock.span + 1) + ordinals
        by_key = np.argsort(keys)  # sorted queries let searchsorted narrow each search from the previous one
        found = np.empty_like(keys)
        found[by_key] = np.searchsorted(self.keys, keys[by_key], side="right") - 1
        safe = np.maximum(found, 0)
        oldest = times - pd.Timedelta(ttl).value
        seen = (found >= 0) & (codes >= 0) & (ordinals >= 0) & (self.codes[safe] == codes)
        seen &= self.times[safe] >= oldest
        return np.where(seen, self.order[safe], -1)


def as_of_join(
    examples: pd.DataFrame,
    features: pd.DataFrame,
    *,
    entity: str,
    timestamp: str,
    ttl: timedelta,
    columns: list[str] | None = None,
    example_entity: str | None = None,
    example_timestamp: str | None = None,
    index: FeatureIndex | None = None,
) -> pd.DataFrame:
    """``examples`` with the feature ``columns`` each saw (missing where none was valid), in their own order.

    ``features`` holds ``entity``, ``timestamp`` (no missing time: ``build_snapshot`` sets those rows aside)
    and the feature columns (a view's offline snapshot); the
    examples name their entity and time in ``example_entity``/``example_timestamp`` (default: the same names).
    A prebuilt ``index`` of ``features`` saves the sort when one snapshot is joined many times.
    """
    if columns is None:
        columns = [c for c in features.columns if c not in (entity, timestamp)]
    index = index or FeatureIndex.build(features[entity], features[timestamp])
    rows = index.lookup(examples[example_entity or entity], examples[example_timestamp or timestamp], ttl)
    return examples.assign(**{column: take(features[column], rows) for column in columns})


def take(column: pd.Series, rows: np.ndarray) -> np.ndarray | pd.api.extensions.ExtensionArray:
    """``column``'s values at ``rows``; missing where a row is -1 (float NaN, else pandas' NA)."""
    values = column.to_numpy()
    if not len(values):
        return np.full(len(rows), np.nan) if values.dtype.kind == "f" else pd.array([None] * len(rows), dtype=object)
    taken = values[np.maximum(rows, 0)]
    missing = rows < 0
    if not missing.any():
        return taken
    if values.dtype.kind == "f":
        taken[missing] = np.nan
        return taken
    return pd.Series(taken, dtype=column.dtype if values.dtype.kind not in "iub" else None).mask(missing).array


def _is_number(keys: np.ndarray) -> np.ndarray:
    return np.array([isinstance(k, int | float | np.number) and not isinstance(k, bool) for k in keys], dtype=bool)


def nanoseconds(times: pd.Series | np.ndarray) -> np.ndarray:
    """Event times as int64 nanoseconds since the epoch in UTC (naive times are taken as UTC)."""
    values = pd.to_datetime(pd.Series(np.asarray(times)) if not isinstance(times, pd.Series) else times, utc=True)
    return values.dt.tz_convert(None).to_numpy(dtype="datetime64[ns]").view(np.int64)
