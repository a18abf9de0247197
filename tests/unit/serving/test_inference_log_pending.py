"""``pending_rows`` counts every row not yet in a file, the rows of a write under way included: polled while the
disk refuses (a full filesystem), it never reads 0 while rows wait."""

import contextlib
import threading

import numpy as np
import pyarrow.parquet as pq

from mlops_assets.serving.inference_log import InferenceLogWriter, log_schema

DTYPES = {"x": "float"}


def append(log: InferenceLogWriter, n: int) -> None:
    xs = np.arange(n, dtype=np.float64)
    log.append({"x": xs}, n, "1", xs, np.full(n, np.nan))


def test_the_rows_of_a_write_under_way_are_pending_until_they_are_in_a_file(tmp_path, monkeypatch):
    log = InferenceLogWriter(tmp_path, log_schema(DTYPES, "regression"), flush_seconds=3600)
    writing, release, refuse = threading.Event(), threading.Event(), [True]
    write_table = pq.write_table

    def slow_disk(*args, **kwargs):
        writing.set()
        release.wait(10)
        if refuse[0]:
            raise OSError(28, "No space left on device")
        write_table(*args, **kwargs)

    monkeypatch.setattr(pq, "write_table", slow_disk)

    def write_while(during) -> dict:
        """Flush in a thread; call ``during`` while the disk holds the write; the status once it returned."""
        writing.clear()
        release.clear()
        flusher = threading.Thread(target=flush_refused_or_not, args=(log,))
        flusher.start()
        assert writing.wait(10)
        during()
        release.set()
        flusher.join(10)
        return log.status()

    append(log, 3)
    append(log, 2)

    def five_taken_four_come():
        append(log, 4)
        assert log.status()["pending_rows"] == 9

    refused = write_while(five_taken_four_come)
    assert refused["pending_rows"] == 9 and refused["rows_written"] == 0  # back in the queue
    refuse[0] = False
    written = write_while(lambda: assert_pending(log, 9))
    assert written["pending_rows"] == 0 and written["rows_written"] == 9
    log.stop()


def flush_refused_or_not(log: InferenceLogWriter) -> None:
    with contextlib.suppress(OSError):
        log.flush()


def assert_pending(log: InferenceLogWriter, rows: int) -> None:
    assert log.status()["pending_rows"] == rows


def test_polls_during_refused_writes_never_read_zero_while_rows_wait(tmp_path, monkeypatch):
    log = InferenceLogWriter(tmp_path, log_schema(DTYPES, "regression"), flush_seconds=0.001)
    monkeypatch.setattr(pq, "write_table", lambda *a, **k: (_ for _ in ()).throw(OSError(28, "No space left")))
    for _ in range(2000):
        append(log, 50)
    polls = [log.status()["pending_rows"] for _ in range(20_000)]  # the writer retries all the while
    log._stopped.set()
    assert min(polls) == 100_000
