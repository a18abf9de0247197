"""The inference log: every scored row with its prediction, as append-only parquet files.

A request only appends references to a list; a background thread writes a file every ``flush_rows`` rows
or ``flush_seconds``, so no request waits on the disk. Files are named by time, so the newest window is
the last files in name order.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

log = logging.getLogger(__name__)

ARROW_TYPES = {"float": pa.float64(), "int": pa.float64(), "bool": pa.float64(), "str": pa.string()}


def log_schema(input_dtypes: dict[str, str], task: str, id_column: str | None = None) -> pa.Schema:
    """The row id (when the spec has one), inputs as the endpoint received them, then who answered and what."""
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
        ]
    )


class InferenceLogWriter:
    def __init__(self, directory: Path, schema: pa.Schema, flush_rows: int = 10_000, flush_seconds: float = 1.0):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.schema = schema
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.rows_written = 0
        self._pending: list[dict[str, Any]] = []
        self._pending_rows = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="inference-log", daemon=True)
        self._thread.start()

    def append(self, columns: dict[str, Any], n_rows: int, model_version: str, prediction, score) -> None:
        """Queue one request's rows; ``columns`` holds the typed inputs, one value per row each."""
        batch = {
            "request_id": [uuid.uuid4().hex] * n_rows,
            "timestamp": [time.time_ns() // 1_000_000] * n_rows,
            "model_version": [model_version] * n_rows,
            "prediction": prediction,
            "score": score,
            **columns,
        }
        with self._lock:
            self._pending.append(batch)
            self._pending_rows += n_rows
            full = self._pending_rows >= self.flush_rows
        if full:
            self._wake.set()

    def flush(self) -> None:
        with self._lock:
            batches, self._pending, self._pending_rows = self._pending, [], 0
        if not batches:
            return
        try:
            self._write(batches)
        except Exception:
            with self._lock:  # keep the rows for the next attempt: the log loses nothing on a full disk
                self._pending[:0] = batches
                self._pending_rows += sum(len(b["request_id"]) for b in batches)
            raise

    def _write(self, batches: list[dict[str, Any]]) -> None:
        arrays = []
        for field in self.schema:
            values = [b[field.name] for b in batches]
            if field.type == pa.float64():
                arrays.append(pa.array(np.concatenate([np.asarray(v, dtype=np.float64) for v in values])))
            else:
                arrays.append(pa.array([x for v in values for x in v]).cast(field.type))
        table = pa.Table.from_arrays(arrays, schema=self.schema)
        path = self.directory / f"part-{time.time_ns():020d}.parquet"
        partial = path.with_name(f".{path.name}.partial")
        pq.write_table(table, partial)
        partial.replace(path)
        self.rows_written += table.num_rows

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
