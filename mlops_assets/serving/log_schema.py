"""What the inference log holds: its schema, one scored request as the endpoint hands it over, and which
requests keep their feature vectors (``OneIn``). The writer (inference_log.py) and the readers (monitoring,
feedback) share these names."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa

CHAMPION_PREDICTION = "champion_prediction"  # shadow log: what the champion answered for the row
INVALID = "invalid"  # why a row served under ``deployment.on_invalid: flag`` breaks the schema; null if valid
DEAD_LETTER = "dead-letter.jsonl"  # in the log's folder: requests that could not be written, with the reason
FEATURES = "features"  # the feature vector the endpoint computed for a sampled request's row; null if unsampled
FEATURES_TYPE = pa.list_(pa.float64())  # the transformer's output, in its ``output_names`` order
SNAPSHOT_PREFIX = "telemetry-"  # in the log's folder, then the write time in ns (20 digits), the pid, the replica
SNAPSHOT_SUFFIX = ".json"
ARROW_TYPES = {"float": pa.float64(), "int": pa.float64(), "bool": pa.float64(), "str": pa.string()}


def log_schema(
    input_dtypes: dict[str, str], task: str, id_column: str | None = None, shadow: bool = False
) -> pa.Schema:
    """The row id (when the spec has one), inputs as the endpoint received them, then who answered and what.

    The shadow log (``shadow=True``) holds the shadow model's answers, never returned, next to the answer
    the champion returned for the same row; it is a log of its own so that drift windows and sensors count
    each production row once.
    """
    prediction = pa.float64() if task == "regression" else pa.string()
    return pa.schema(
        [
            ("request_id", pa.string()),
            ("timestamp", pa.timestamp("ms", tz="UTC")),
            ("model_version", pa.string()),
            *([(id_column, pa.string())] if id_column else []),
            *[(name, ARROW_TYPES[dtype]) for name, dtype in input_dtypes.items()],
            ("prediction", prediction),
            ("score", pa.float64()),
            *([(CHAMPION_PREDICTION, prediction)] if shadow else []),
        ]
    )


PER_REQUEST = ("request_id", "timestamp", "model_version")
OUTPUTS = ("prediction", "score", CHAMPION_PREDICTION, INVALID, FEATURES)


class LoggedRequest(NamedTuple):
    """One scored request as the endpoint handed it over."""

    n_rows: int
    timestamp: int  # milliseconds since the epoch
    model_version: str
    numeric: np.ndarray  # the numeric inputs, one row per column
    other: list[Any]  # the other inputs (strings, the row id), one list per column
    prediction: Any
    score: Any
    champion_prediction: Any  # shadow log only
    invalid: list[str | None] | None  # the reason each row breaks the schema; None: every row is valid
    features: np.ndarray | None  # (n_rows, n_features) for a sampled request; None otherwise


def features_column(requests: list[LoggedRequest]) -> pa.Array:
    """The ``features`` column: one list per row of a sampled request, null for the others, built from the
    requests' matrices without a Python object per value."""
    counts = [r.n_rows for r in requests]
    kept = [r.features for r in requests if r.features is not None]
    if not kept:
        return pa.nulls(sum(counts), FEATURES_TYPE)
    sampled = np.repeat([r.features is not None for r in requests], counts)
    widths = np.repeat([0 if r.features is None else r.features.shape[1] for r in requests], counts)
    offsets = np.concatenate([[0], np.cumsum(widths)]).astype(np.int32)
    values = np.concatenate([np.asarray(f, dtype=np.float64).reshape(-1) for f in kept])
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values), FEATURES_TYPE, mask=pa.array(~sampled))


class OneIn:
    """Which scoring requests the log keeps the features of: the first, then one in ``every`` (``None``:
    none). A counter, not a random draw, so that short runs and tests see a known sample."""

    def __init__(self, every: int | None):
        self.every = every
        self._position = 0  # of the next request in its run of ``every``

    def take(self) -> bool:
        """Whether the next request is sampled (each call counts one)."""
        if self.every is None:
            return False
        sampled = self._position == 0
        self._position = (self._position + 1) % self.every
        return sampled
