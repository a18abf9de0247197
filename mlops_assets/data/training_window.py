"""Which rows train a model, and with what weight: the declared training data and labelled production rows.

A model retrained on production rows should learn what production looks like now, not only what it looked
like when the training data was declared. The window policy says how far back to look: every row, the
newest rows, the rows of the last days, or every row weighted down by its age (a half-life). The source
rows (the declared training data) carry no time; they count as older than every production row, and
``source_weight`` scales them down or, at 0, leaves them out.

The result is one frame, source rows then production rows, with ``_origin`` ("source" or "production")
and ``_weight`` (float64, what the estimator's ``sample_weight`` gets). Source rows have ``_logged_at``
<NA>: the column is nullable Int64, which keeps production's milliseconds exact where float64 would
suggest a time for source rows that they do not have. Rows of weight 0 are dropped.

``holdout_mask`` splits rows by id, so a production row held out to compare models is held out in every
later window too, and never trains the model it is used to judge.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from mlops_assets.errors import DataError

LOGGED_AT = "_logged_at"  # labelled production rows: when the endpoint served the row (ms since the epoch)
ORIGIN = "_origin"  # training rows: "source" or "production"
WEIGHT = "_weight"  # training rows: the sample weight (recency, then importance)
MS_PER_DAY = 86_400_000

Policy = Literal["all", "newest", "max_age", "half_life"]


@dataclass(frozen=True)
class WindowPolicy:
    """How the training rows are chosen; each policy reads only its own parameter.

    all: every row, weight 1. newest: the ``rows`` newest rows (production newest first, then source rows
    from the end of the frame). max_age: production rows logged within ``days`` of now, and the source rows.
    half_life: every row, weighted ``0.5 ** (age_days / half_life_days)``; source rows are weighted as the
    oldest production row. ``source_weight`` multiplies the weight of every source row, whatever the policy.
    """

    policy: Policy = "all"
    rows: int | None = None
    days: float | None = None
    half_life_days: float | None = None
    source_weight: float = 1.0

    def __post_init__(self):
        needs = {
            "newest": ("rows", self.rows),
            "max_age": ("days", self.days),
            "half_life": ("half_life_days", self.half_life_days),
        }
        if self.policy not in ("all", *needs):
            raise ValueError(f"window policy {self.policy!r} is not one of all, newest, max_age, half_life")
        if self.policy in needs:
            field, value = needs[self.policy]
            if value is None or not value > 0:
                raise ValueError(f"window policy {self.policy!r} needs {field} > 0, got {value!r}")
        if not self.source_weight >= 0:
            raise ValueError(f"source_weight must be >= 0 (0 leaves the source rows out), got {self.source_weight!r}")


def select_training_rows(
    source: pd.DataFrame, production: pd.DataFrame, policy: WindowPolicy, now_ms: int
) -> pd.DataFrame:
    """The rows that train the model under ``policy`` at time ``now_ms``, with ``_origin`` and ``_weight``.

    Columns are the union of the two frames' columns (source's first), then ``_logged_at``, ``_origin`` and
    ``_weight``; a column one frame lacks is missing on the other's rows.
    """
    if len(production) and LOGGED_AT not in production:
        raise DataError(f"production rows have no {LOGGED_AT} column (ms since epoch): cannot tell their age")
    logged_at = production[LOGGED_AT].to_numpy(np.int64) if len(production) else np.empty(0, np.int64)
    source_weights, production_weights = _weights(policy, source, logged_at, now_ms)
    source_weights = source_weights * policy.source_weight
    parts = [
        frame.assign(**{LOGGED_AT: logged, ORIGIN: origin, WEIGHT: weights})[weights > 0]
        for frame, logged, origin, weights in (
            (source, pd.array([pd.NA] * len(source), dtype="Int64"), "source", source_weights),
            (production, pd.array(logged_at, dtype="Int64"), "production", production_weights),
        )
    ]
    meta = (LOGGED_AT, ORIGIN, WEIGHT)
    data = [c for c in dict.fromkeys([*source.columns, *production.columns]) if c not in meta]
    # an empty part joins no rows but would still turn the other part's columns it lacks into floats
    return pd.concat([part for part in parts if len(part)] or parts, ignore_index=True).reindex(columns=[*data, *meta])


def _weights(
    policy: WindowPolicy, source: pd.DataFrame, logged_at: np.ndarray, now_ms: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's weight under the policy, before ``source_weight``: source rows, then production rows."""
    ones = np.ones(len(source)), np.ones(len(logged_at))
    if policy.policy == "all":
        return ones
    if policy.policy == "newest":
        production = _newest(logged_at, policy.rows)
        source_rows = policy.rows - int(production.sum())
        return (np.arange(len(source)) >= len(source) - source_rows).astype(float), production.astype(float)
    # rows logged after now (clocks of logger and trainer disagree) count as logged now
    age_days = np.maximum(now_ms - logged_at, 0) / MS_PER_DAY
    if policy.policy == "max_age":
        return ones[0], (age_days <= policy.days).astype(float)
    decay = 0.5 ** (age_days / policy.half_life_days)
    oldest = decay.min() if len(decay) else 1.0
    return np.full(len(source), oldest), decay


def newest_rows(frame: pd.DataFrame, n: int) -> pd.DataFrame:
    """The ``n`` newest rows of ``frame``, in the frame's order: by ``_logged_at`` where the frame has it
    (ties go to the later row), else its last ``n`` rows, as the source data is in the order it was declared."""
    if LOGGED_AT not in frame:
        return frame.iloc[max(len(frame) - n, 0) :]
    return frame[_newest(frame[LOGGED_AT].to_numpy(np.int64), n)]


def _newest(logged_at: np.ndarray, n: int) -> np.ndarray:
    """A mask of the ``n`` largest ``logged_at``, ties to the later position, so the choice is deterministic."""
    by_age = np.lexsort((np.arange(len(logged_at)), logged_at))  # oldest first, ties earlier position first
    mask = np.zeros(len(logged_at), bool)
    mask[by_age[max(len(logged_at) - n, 0) :]] = True
    return mask


def holdout_mask(ids: pd.Series, share: float, seed: int) -> np.ndarray:
    """True for the rows held out: those whose id hashes (with ``seed``) below ``share`` in [0, 1).

    The side depends on the seed and the id's text alone, not on the other rows or their order, so a row
    stays on its side as the production log grows. hashlib, not Python's ``hash`` (salted per process) or
    pandas' hashing (its algorithm is not a promise across versions). Ids are compared as text: an integer
    id column read back as float ("7.0", not "7") changes sides, so keep the id's dtype.
    """
    if not 0 <= share <= 1:
        raise ValueError(f"holdout share must be in [0, 1], got {share!r}")
    codes, unique = pd.factorize(ids, use_na_sentinel=False)
    position = np.array([_unit_hash(seed, value) for value in unique], dtype=float)
    return position[codes] < share if len(codes) else np.zeros(0, bool)


def _unit_hash(seed: int, value: object) -> float:
    """A uniform-looking number in [0, 1) from the seed and the value's text."""
    digest = hashlib.blake2b(f"{seed}\x1f{value}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") >> 11) / 2**53  # 53 bits: exact in a float, so always below 1
