"""The inference log: every scored row with its prediction, as append-only parquet files.

A request appends one small record to a list (after its response is sent); a background thread writes a
file every ``flush_rows`` rows or ``flush_seconds``, so no request waits on the disk. Files are named by
time, so the newest window is the last files in name order.

The log never wedges. A write the disk refuses (``OSError``: full, read-only) keeps its rows for the next
attempt, up to ``max_pending_rows`` (beyond, the oldest are dropped and counted). Rows that cannot make a
table of the log's schema (a data error: writing them again would fail again) are looked at one request at
a time: the requests at fault go to ``dead-letter.jsonl`` in the log's folder with the reason, the others
are written. ``status()`` counts all of it; the endpoint shows it in ``/admin/status``. Its ``pending_rows`` are the
rows not yet in a file: queued, or taken by a write under way (a write the disk refuses puts them back), so the
count never reads 0 while rows wait, however often the disk refuses.

The log holds every request's features: its folder is created 0700 and its files 0600
(``mlops_assets/local/private.py``).

The inference log (not the shadow log) has a ``features`` column: for the requests the endpoint samples (one
in ``monitoring.skew.sample_every``, ``OneIn``), each row's feature vector as the served model computed it, so
that the pipeline can compute it again with the training transformer and compare; null for the others.

In production the log is written to a spool and shipped to the artifact store (``ship``), with the files the
endpoint writes beside it: the dead letter, and its telemetry snapshots (``telemetry.py``).

What a kill -9 loses: the rows not yet in a file, that is the rows queued since the last write began plus
those of a write under way (a file appears whole or not at all). A write starts every ``flush_seconds`` and
as soon as ``flush_rows`` are waiting, so the loss is at most ``flush_seconds`` of traffic plus what arrives
during one write, and never much more than twice ``flush_rows``: with the defaults (1 s, 10,000 rows), about
one second of traffic. A clean stop (SIGTERM, SIGINT) writes what is waiting before the endpoint exits.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from mlops_assets.local.private import open_private, private_folder
from mlops_assets.serving.log_schema import (
    ARROW_TYPES,
    CHAMPION_PREDICTION,
    DEAD_LETTER,
    FEATURES,
    FEATURES_TYPE,
    INVALID,
    OUTPUTS,
    PER_REQUEST,
    SNAPSHOT_PREFIX,
    SNAPSHOT_SUFFIX,
    LoggedRequest,
    OneIn,
    features_column,
    log_schema,
)
from mlops_assets.serving.log_shipping import describe, log_destination, put_file

__all__ = [  # the log's names, importable from here as before the schema and the shipping had modules of their own
    "ARROW_TYPES",
    "CHAMPION_PREDICTION",
    "DEAD_LETTER",
    "FEATURES",
    "FEATURES_TYPE",
    "INVALID",
    "SNAPSHOT_PREFIX",
    "SNAPSHOT_SUFFIX",
    "InferenceLogWriter",
    "OneIn",
    "log_destination",
    "log_schema",
]

log = logging.getLogger(__name__)


class InferenceLogWriter:
    """Buffers scored requests and writes them as parquet files under ``directory`` from a background thread.

    ``flush_rows``: write once this many rows are waiting; ``flush_seconds``: otherwise at least this often;
    ``max_pending_rows``: the most rows kept while the disk refuses writes; ``ship_to``: the object-store folder
    the written files are moved to, each upload given up after ``ship_timeout_s``. Every file also has the
    columns the endpoint adds, appended to ``schema`` when it lacks them: ``invalid``, and ``features`` in the
    inference log (a schema without ``champion_prediction``; the shadow log keeps no features).

    ``segment`` names this writer's files when several processes share ``directory`` (the workers of one
    endpoint: ``w0``, ``w1``...): ``part-<ns>-<segment>.parquet`` and ``dead-letter-<segment>.jsonl``, so that
    no two writers ever write, or ship, the same file. Readers take every ``.parquet`` file in name order
    (``data.locations.log_files``), whose names still begin with the write time.
    """

    def __init__(
        self,
        directory: Path,
        schema: pa.Schema,
        flush_rows: int = 10_000,
        flush_seconds: float = 1.0,
        max_pending_rows: int = 1_000_000,
        ship_to: str | None = None,
        ship_timeout_s: float = 10.0,
        segment: str | None = None,
    ):
        self.directory = Path(directory)
        self.segment = segment
        self._suffix = f"-{segment}" if segment else ""
        self.dead_letter = self.directory / (f"dead-letter{self._suffix}.jsonl" if segment else DEAD_LETTER)
        self.ship_to = ship_to.rstrip("/") if ship_to else None
        self.ship_timeout_s = ship_timeout_s
        self.files_shipped = 0
        self._replica = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname()) or "endpoint"
        self._dead_letter_shipped = 0  # bytes of the dead letter the store holds
        private_folder(self.directory)
        added = [(INVALID, pa.string()), *([] if CHAMPION_PREDICTION in schema.names else [(FEATURES, FEATURES_TYPE)])]
        for name, type_ in added:
            schema = schema if name in schema.names else schema.append(pa.field(name, type_))
        self.schema = schema
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.max_pending_rows = max_pending_rows
        self.rows_written = 0
        self.dead_lettered_rows = 0
        self.dropped_rows = 0  # kept while the disk refused writes, then dropped to bound memory
        self.last_error = ""
        inputs = [f for f in self.schema if f.name not in PER_REQUEST and f.name not in OUTPUTS]
        self._numeric = [f.name for f in inputs if f.type == pa.float64()]
        self._other = [f.name for f in inputs if f.type != pa.float64()]
        self._pending: list[LoggedRequest] = []
        self._pending_rows = 0  # queued in ``_pending``
        self._writing_rows = 0  # taken from the queue by the write under way
        self._lock = threading.Lock()
        self._flushing = threading.Lock()  # one flush at a time: files keep the order of their rows
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="inference-log", daemon=True)
        self._thread.start()

    def append(
        self,
        columns: dict[str, Any],
        n_rows: int,
        model_version: str,
        prediction,
        score,
        champion_prediction=None,
        invalid: list[str | None] | None = None,
        features: np.ndarray | None = None,
    ) -> None:
        """Queue one request's rows; ``columns`` holds the typed inputs, one value per row each;
        ``invalid`` the reason each row breaks the schema (``None`` when every row is valid); ``features``
        the rows' feature vectors when the request was sampled (one row each; logged where the log has a
        ``features`` column).

        The numeric inputs are packed into one small matrix here, while they are in the cache: the
        background thread then joins one array per request instead of one per column and request, which
        cut its share of the CPU by about five times (bench/RESULTS.md).
        """
        numeric = np.array([columns[name] for name in self._numeric], dtype=np.float64).reshape(-1, n_rows)
        other = [columns[name] for name in self._other]
        request = LoggedRequest(
            n_rows,
            time.time_ns() // 1_000_000,
            model_version,
            numeric,
            other,
            prediction,
            score,
            champion_prediction,
            invalid,
            features,
        )
        with self._lock:
            self._pending.append(request)
            self._pending_rows += n_rows
            full = self._pending_rows >= self.flush_rows
        if full:
            self._wake.set()

    def status(self) -> dict[str, Any]:
        """What the log has written, kept, set aside and lost since it started."""
        with self._lock:  # both counts at one moment: a write takes its rows from one to the other
            pending = self._pending_rows + self._writing_rows
        return {
            "rows_written": self.rows_written,
            "pending_rows": pending,
            "dead_lettered_rows": self.dead_lettered_rows,
            "dropped_rows": self.dropped_rows,
            "last_error": self.last_error,
            "dead_letter": str(self.dead_letter) if self.dead_lettered_rows else None,
            **({"ship_to": self.ship_to, "files_shipped": self.files_shipped} if self.ship_to else {}),
            **({"files_to_ship": len(self._spooled())} if self.ship_to else {}),
        }

    def flush(self) -> None:
        """Write the waiting rows; raise ``OSError`` if the disk refused them (they are kept for the next try)."""
        with self._flushing:
            with self._lock:
                requests, self._pending = self._pending, []
                self._writing_rows, self._pending_rows = self._pending_rows, 0
            if not requests:
                return
            try:
                self._write_requests(requests)
            finally:
                with self._lock:
                    self._writing_rows = 0  # written, set aside, or back in the queue

    def _write_requests(self, requests: list[LoggedRequest]) -> None:
        try:
            table = self._table(requests)
        except Exception:  # not the disk: one request's data; find it, keep the others
            requests, table = self._table_without_bad_requests(requests)
            if table is None:
                return
        try:
            self._write(table)
        except OSError as exc:
            self._keep(requests, exc)
            raise
        except Exception as exc:  # written again it would fail again: set aside, never retried
            for request in requests:
                self._dead_letter(request, exc)

    def _table(self, requests: list[LoggedRequest]) -> pa.Table:
        return pa.Table.from_pydict(self._columns(requests), schema=self.schema)

    def _table_without_bad_requests(self, requests: list[LoggedRequest]) -> tuple[list[LoggedRequest], pa.Table | None]:
        """The requests that make a table, one at a time, and their table; the others go to the dead letter."""
        good, tables = [], []
        for request in requests:
            try:
                tables.append(self._table([request]))
                good.append(request)
            except Exception as exc:
                self._dead_letter(request, exc)
        return good, pa.concat_tables(tables) if tables else None

    def _write(self, table: pa.Table) -> None:
        path = self.directory / f"part-{time.time_ns():020d}{self._suffix}.parquet"
        partial = path.with_name(f".{path.name}.partial")
        with open_private(partial) as file:
            pq.write_table(table, file)
        partial.replace(path)
        self.rows_written += table.num_rows

    def _spooled(self) -> list[Path]:
        """The files to ship: the log's, then the telemetry snapshots, each in the order they were written."""
        snapshots = self.directory.glob(f"{SNAPSHOT_PREFIX}*{self._suffix}{SNAPSHOT_SUFFIX}")
        return sorted(self.directory.glob(f"part-*{self._suffix}.parquet")) + sorted(snapshots)

    def ship(self, deadline: float | None = None) -> None:
        """Upload the spool's files (``_spooled``) to ``ship_to``, each named with the replica and removed once the
        store holds it; stop at the first failure, or at ``deadline`` (``time.monotonic()``), the rest kept for
        the next call. Nothing to do without ``ship_to``."""
        if self.ship_to is None:
            return
        from fsspec.core import url_to_fs

        fs, root = url_to_fs(self.ship_to)
        try:
            for path in self._spooled():
                if deadline is not None and time.monotonic() > deadline:
                    return
                put_file(fs, str(path), f"{root}/{path.stem}-{self._replica}{path.suffix}", self.ship_timeout_s)
                path.unlink()
                self.files_shipped += 1
            dead_letter = self.dead_letter
            if dead_letter.exists() and dead_letter.stat().st_size != self._dead_letter_shipped:
                size = dead_letter.stat().st_size
                put_file(fs, str(dead_letter), f"{root}/{dead_letter.stem}-{self._replica}.jsonl", self.ship_timeout_s)
                self._dead_letter_shipped = size
        except Exception as exc:  # the store is unreachable or refuses: the files wait in the spool
            self.last_error = describe(exc)
            log.warning("inference log: could not ship to %s (will retry): %r", self.ship_to, exc)

    def _keep(self, requests: list[LoggedRequest], exc: OSError) -> None:
        """Back to the front of the queue for the next attempt; past ``max_pending_rows`` the oldest go."""
        self.last_error = describe(exc)
        with self._lock:
            self._pending[:0] = requests
            self._pending_rows += sum(r.n_rows for r in requests)
            self._writing_rows = 0  # in the queue again, in the same moment
            while self._pending_rows > self.max_pending_rows and len(self._pending) > 1:
                dropped = self._pending.pop(0)
                self._pending_rows -= dropped.n_rows
                self.dropped_rows += dropped.n_rows

    def _dead_letter(self, request: LoggedRequest, exc: Exception) -> None:
        """One line of JSON per request: the reason, then the request as the endpoint handed it over."""
        self.last_error = describe(exc)
        fields = request._asdict()
        numeric, other = fields.pop("numeric").tolist(), fields.pop("other")
        inputs = {**dict(zip(self._numeric, numeric, strict=False)), **dict(zip(self._other, other, strict=False))}
        record = {"reason": repr(exc)[:2000], **fields, "inputs": inputs}
        try:
            line = orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE, default=repr)
            with open_private(self.dead_letter, append=True) as file:
                file.write(line)
        except (OSError, TypeError) as write_error:
            log.exception("could not write the dead letter of a request to %s", self.directory)
            self.dropped_rows += request.n_rows
            self.last_error = describe(write_error)
            return
        where = self.dead_letter.name
        log.error("inference log: %d row(s) that cannot be written went to %s: %r", request.n_rows, where, exc)
        self.dead_lettered_rows += request.n_rows

    def _columns(self, requests: list[LoggedRequest]) -> dict[str, Any]:
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
        columns: dict[str, Any] = {
            **per_request,
            **dict(zip(self._numeric, numeric, strict=True)),
            **{name: [v for r in requests for v in r.other[i]] for i, name in enumerate(self._other)},
            "score": np.concatenate([r.score for r in requests], dtype=np.float64),
            INVALID: [v for r in requests for v in (r.invalid or [None] * r.n_rows)],
        }
        columns["prediction"] = self._predictions([r.prediction for r in requests])
        if CHAMPION_PREDICTION in self.schema.names:
            columns[CHAMPION_PREDICTION] = self._predictions([r.champion_prediction for r in requests])
        if FEATURES in self.schema.names:
            columns[FEATURES] = features_column(requests)
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
            self.ship()

    def stop(self) -> None:
        """Stop writing in the background and write what waits, shipping nothing: the endpoint then writes its
        last telemetry snapshot, with the log's final figures, for ``close`` to ship."""
        self._stopped.set()
        self._wake.set()
        self._thread.join()
        self.flush()

    def close(self) -> None:
        """``stop``, then ship for at most twice ``ship_timeout_s``: a pod being stopped has a grace period,
        and a store that does not answer must not make it overrun it (what is not shipped stays spooled, for
        the next process on this volume, and is counted in a warning)."""
        try:
            self.stop()
        finally:
            self.ship(deadline=time.monotonic() + 2 * self.ship_timeout_s)
            if self.ship_to and (left := len(self._spooled())):
                log.warning("inference log: %d unshipped file(s) stay in %s", left, self.directory)
