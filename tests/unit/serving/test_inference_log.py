"""The inference log never wedges: bad requests are set aside with the reason, disk errors are retried, and
memory stays bounded while the disk refuses writes."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from mlops_assets.data.locations import log_files
from mlops_assets.serving.inference_log import DEAD_LETTER, InferenceLogWriter, log_schema

DTYPES = {"x": "float", "plan": "str"}


def writer(folder, **settings) -> InferenceLogWriter:
    """A log that writes only when told to (the background thread waits an hour)."""
    return InferenceLogWriter(folder, log_schema(DTYPES, "regression", "id"), flush_seconds=3600, **settings)


def append(log: InferenceLogWriter, xs: list[float], ids: list[str | None], invalid=None) -> None:
    n = len(xs)
    columns = {"x": np.array(xs), "plan": ["a"] * n, "id": ids}
    log.append(columns, n, "1", np.array(xs) * 2, np.full(n, np.nan), None, invalid)


def logged(folder) -> list[dict]:
    files = sorted(folder.glob("part-*.parquet"))
    return [row for f in files for row in pq.read_table(f).select(["id", "x", "invalid"]).to_pylist()]


def test_a_request_that_cannot_be_written_goes_to_the_dead_letter_and_the_others_are_written(tmp_path):
    """One id for two rows (what the endpoint once let through) made every later write fail, forever."""
    log = writer(tmp_path)
    append(log, [1.0], ["P0001"])
    append(log, [2.0, 3.0], ["P0002"])  # cannot make a table: one id, two rows
    append(log, [4.0], ["P0004"])
    log.flush()
    assert logged(tmp_path) == [
        {"id": "P0001", "x": 1.0, "invalid": None},
        {"id": "P0004", "x": 4.0, "invalid": None},
    ]
    [letter] = [json.loads(line) for line in (tmp_path / DEAD_LETTER).read_text().splitlines()]
    assert "ArrowInvalid" in letter["reason"] and "expected length 2 but got length 1" in letter["reason"]
    assert letter["n_rows"] == 2 and letter["inputs"] == {"x": [2.0, 3.0], "plan": ["a", "a"], "id": ["P0002"]}
    status = log.status()
    assert status["rows_written"] == 2 and status["dead_lettered_rows"] == 2 and status["pending_rows"] == 0
    assert "expected length 2" in status["last_error"] and status["dead_letter"] == str(tmp_path / DEAD_LETTER)
    append(log, [5.0], ["P0005"])  # later rows keep flowing
    log.close()
    assert [row["id"] for row in logged(tmp_path)] == ["P0001", "P0004", "P0005"]


def test_a_disk_error_keeps_the_rows_for_the_next_write(tmp_path, monkeypatch):
    log = writer(tmp_path)
    append(log, [1.0, 2.0], ["a", "b"])
    refuse = monkeypatch.setattr
    refuse(pq, "write_table", lambda *args, **kwargs: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    with pytest.raises(OSError):
        log.flush()
    assert log.status()["pending_rows"] == 2 and "No space left" in log.status()["last_error"]
    assert not (tmp_path / DEAD_LETTER).exists()
    monkeypatch.undo()
    append(log, [3.0], ["c"])
    log.close()
    assert [row["id"] for row in logged(tmp_path)] == ["a", "b", "c"]
    assert log.status() | {"last_error": ""} == {
        "rows_written": 3,
        "pending_rows": 0,
        "dead_lettered_rows": 0,
        "dropped_rows": 0,
        "last_error": "",
        "dead_letter": None,
    }


def test_while_the_disk_refuses_writes_the_oldest_rows_beyond_the_bound_are_dropped_and_counted(tmp_path, monkeypatch):
    log = writer(tmp_path, max_pending_rows=3)
    monkeypatch.setattr(pq, "write_table", lambda *args, **kwargs: (_ for _ in ()).throw(OSError("read-only")))
    for i in range(5):
        append(log, [float(i)], [str(i)])
        with pytest.raises(OSError):
            log.flush()
    assert log.status()["pending_rows"] == 3 and log.status()["dropped_rows"] == 2
    monkeypatch.undo()
    log.close()
    assert [row["id"] for row in logged(tmp_path)] == ["2", "3", "4"]


def test_the_reason_a_flagged_row_breaks_the_schema_is_logged_beside_it(tmp_path):
    log = writer(tmp_path)
    append(log, [1.0, 99.0], ["a", "b"], invalid=[None, "column 'x': le 50 got 99.0"])
    log.close()
    assert [row["invalid"] for row in logged(tmp_path)] == [None, "column 'x': le 50 got 99.0"]


def test_the_log_repeats_request_fields_per_row_and_keeps_strings_and_ids(tmp_path):
    dtypes = {"x": "float", "plan": "str"}
    writer = InferenceLogWriter(tmp_path, log_schema(dtypes, "regression", "id"), flush_seconds=3600)
    writer.append({"x": np.array([1.0, 3.0]), "plan": ["a", None], "id": ["7", None]}, 2, "3", [0.5, 1.5], [np.nan] * 2)
    writer.append({"x": np.array([2.0]), "plan": ["b"], "id": ["8"]}, 1, "4", np.array([2.5]), np.array([np.nan]))
    writer.close()
    table = pq.read_table(next(tmp_path.glob("*.parquet")))
    names = ["request_id", "timestamp", "model_version", "id", "x", "plan", "prediction", "score", "invalid"]
    assert table.column_names == names
    rows = table.drop(["request_id", "timestamp", "score"]).to_pylist()
    assert rows == [
        {"model_version": "3", "id": "7", "x": 1.0, "plan": "a", "prediction": 0.5, "invalid": None},
        {"model_version": "3", "id": None, "x": 3.0, "plan": None, "prediction": 1.5, "invalid": None},
        {"model_version": "4", "id": "8", "x": 2.0, "plan": "b", "prediction": 2.5, "invalid": None},
    ]
    ids = table.column("request_id").to_pylist()
    assert ids[0] == ids[1] != ids[2] and len(ids[2]) == 32


def test_a_log_shipped_to_an_object_store_leaves_the_spool_and_reads_back_through_the_store(tmp_path, s3_bucket):
    from resources.artifact_store import FsspecArtifactStore

    store = FsspecArtifactStore(root=s3_bucket)
    log = writer(tmp_path / "spool", ship_to=f"{s3_bucket}/p/inference_log")
    append(log, [1.0, 2.0], ["a", "b"])
    log.flush()
    append(log, [3.0], ["c"])
    log.close()  # a clean stop writes and ships what is waiting
    assert list((tmp_path / "spool").glob("part-*")) == []
    keys = log_files(store, "p/inference_log")
    assert len(keys) == 2 and log.status()["files_shipped"] == 2 and log.status()["files_to_ship"] == 0
    rows = [row for key in keys for row in store.read_table(key).select(["id", "x"]).to_pylist()]
    assert rows == [{"id": "a", "x": 1.0}, {"id": "b", "x": 2.0}, {"id": "c", "x": 3.0}]


def test_while_the_object_store_is_unreachable_the_files_wait_in_the_spool(tmp_path, s3_server):
    import boto3

    bucket = "not-yet-created"
    log = writer(tmp_path / "spool", ship_to=f"s3://{bucket}/p/inference_log")
    append(log, [1.0], ["a"])
    log.flush()
    log.ship()
    assert len(list((tmp_path / "spool").glob("part-*.parquet"))) == 1
    assert log.status()["files_to_ship"] == 1 and "bucket does not exist" in log.status()["last_error"]

    boto3.client("s3").create_bucket(Bucket=bucket)
    log.close()
    assert list((tmp_path / "spool").glob("part-*")) == [] and log.status()["files_shipped"] == 1


def test_a_store_that_never_answers_cannot_hold_a_stopping_endpoint(tmp_path, s3_server, monkeypatch):
    """A pod being stopped has a grace period: shipping to a silent store gives up in time, the file kept."""
    import socket
    import time

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # connections are accepted by the kernel, and never answered
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{silent.getsockname()[1]}")
    log = writer(tmp_path / "spool", ship_to="s3://silent-store/p/inference_log", ship_timeout_s=1)
    append(log, [1.0], ["a"])
    started = time.monotonic()
    log.close()
    assert time.monotonic() - started < 15
    assert len(list((tmp_path / "spool").glob("part-*.parquet"))) == 1 and log.status()["files_to_ship"] == 1
    silent.close()
