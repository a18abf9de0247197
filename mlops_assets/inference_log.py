"""The inference log: every scored row with its prediction, as append-only parquet files.

A request appends one small record to a list (after its response is sent); a background thread writes a
file every ``flush_rows`` rows or ``flush_seconds``, so no request waits on the disk. Files are named by
time, so the newest window is the last files in name order.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

log = logging.getLogger(__name__)

CHAMPION_PREDICTION = "champion_prediction"  # shadow log: what the champion answered for the row
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


class InferenceLogWriter:
    """Buffers scored requests and writes them as parquet files under ``directory`` from a background thread.

    ``flush_rows``: write once this many rows are waiting; ``flush_seconds``: otherwise at least this often.
    """

    def __init__(self, directory: Path, schema: pa.Schema, flush_rows: int = 10_000, flush_seconds: float = 1.0):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.schema = schema
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.rows_written = 0
        inputs = [f for f in schema if f.name not in _PER_REQUEST and f.name not in _OUTPUTS]
        self._numeric = [f.name for f in inputs if f.type == pa.float64()]
        self._other = [f.name for f in inputs if f.type != pa.float64()]
        self._pending: list[_Request] = []
        self._pending_rows = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="inference-log", daemon=True)
        self._thread.start()

    def append(
        self, columns: dict[str, Any], n_rows: int, model_version: str, prediction, score, champion_prediction=None
    ) -> None:
        """Queue one request's rows; ``columns`` holds the typed inputs, one value per row each.

        The numeric inputs are packed into one small matrix here, while they are in the cache: the
        background thread then joins one array per request instead of one per column and request, which
        cut its share of the CPU by about five times (bench/RESULTS.md).
        """
        numeric = np.array([columns[name] for name in self._numeric], dtype=np.float64).reshape(-1, n_rows)
        other = [columns[name] for name in self._other]
        request = _Request(
            n_rows, time.time_ns() // 1_000_000, model_version, numeric, other, prediction, score, champion_prediction
        )
        with self._lock:
            self._pending.append(request)
            self._pending_rows += n_rows
            full = self._pending_rows >= self.flush_rows
        if full:
            self._wake.set()

    def flush(self) -> None:
        with self._lock:
            requests, self._pending, self._pending_rows = self._pending, [], 0
        if not requests:
            return
        try:
            self._write(requests)
        except Exception:
            with self._lock:  # keep the rows for the next attempt: the log loses nothing on a full disk
                self._pending[:0] = requests
                self._pending_rows += sum(r.n_rows for r in requests)
            raise

    def _write(self, requests: list[_Request]) -> None:
        table = pa.Table.from_pydict(self._columns(requests), schema=self.schema)
        path = self.directory / f"part-{time.time_ns():020d}.parquet"
        partial = path.with_name(f".{path.name}.partial")
        pq.write_table(table, partial)
        partial.replace(path)
        self.rows_written += table.num_rows

    def _columns(self, requests: list[_Request]) -> dict[str, Any]:
        counts = [r.n_rows for r in requests]
        ids = os.urandom(16 * len(requests)).hex()  # a random 128-bit id per request
        per_request = {
            "request_id": [ids[i : i + 32] for i in range(0, len(ids), 32)],
            "timestamp": [r.timestamp for r in requests],
            "model_version": [r.model_version for r in requests],
        }
        if any(n != 1 for n in counts):
            per_request = {k: np.repeat(np.array(v, dtype=object), counts).tolist() for k, v in per_request.items()}
        numeric = np.concatenate([r.numeric for r in requests], axis=1)
        columns = {
            **per_request,
            **dict(zip(self._numeric, numeric, strict=True)),
            **{name: [v for r in requests for v in r.other[i]] for i, name in enumerate(self._other)},
            "score": np.concatenate([r.score for r in requests], dtype=np.float64),
        }
        columns["prediction"] = self._predictions([r.prediction for r in requests])
        if CHAMPION_PREDICTION in self.schema.names:
            columns[CHAMPION_PREDICTION] = self._predictions([r.champion_prediction for r in requests])
        return columns

    def _predictions(self, per_request: list[Any]) -> Any:
        if self.schema.field("prediction").type == pa.float64():
            return np.concatenate(per_request, dtype=np.float64)
        return pa.array([v for values in per_request for v in values]).cast(pa.string())

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            try:
                self.flush()
            except Exception:
                log.exception("could not write the inference log to %s; will retry", self.directory)

    def close(self) -> None:
        self._stopped.set()
        self._wake.set()
        self._thread.join()
        self.flush()


_PER_REQUEST = ("request_id", "timestamp", "model_version")
_OUTPUTS = ("prediction", "score", CHAMPION_PREDICTION)


class _Request(NamedTuple):
    """One scored request as the endpoint handed it over."""

    n_rows: int
    timestamp: int  # milliseconds since the epoch
    model_version: str
    numeric: np.ndarray  # the numeric inputs, one row per column
    other: list[Any]  # the other inputs (strings, the row id), one list per column
    prediction: Any
    score: Any
    champion_prediction: Any  # shadow log only
