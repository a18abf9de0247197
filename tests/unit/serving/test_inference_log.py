"""The inference log never wedges: bad requests are set aside with the reason, disk errors are retried, and
memory stays bounded while the disk refuses writes."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlops_assets.data.locations import log_files
from mlops_assets.serving.inference_log import DEAD_LETTER, FEATURES, InferenceLogWriter, OneIn, log_schema

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
    names = ["request_id", "timestamp", "model_version", "id", "x", "plan", "prediction", "score", "invalid", FEATURES]
    assert table.column_names == names
    rows = table.drop(["request_id", "timestamp", "score"]).to_pylist()
    unsampled = {"invalid": None, FEATURES: None}
    assert rows == [
        {"model_version": "3", "id": "7", "x": 1.0, "plan": "a", "prediction": 0.5, **unsampled},
        {"model_version": "3", "id": None, "x": 3.0, "plan": None, "prediction": 1.5, **unsampled},
        {"model_version": "4", "id": "8", "x": 2.0, "plan": "b", "prediction": 2.5, **unsampled},
    ]
    ids = table.column("request_id").to_pylist()
    assert ids[0] == ids[1] != ids[2] and len(ids[2]) == 32


def test_a_log_shipped_to_an_object_store_leaves_the_spool_and_reads_back_through_the_store(tmp_path, s3_bucket):
    from mlops_assets.resources.artifact_store import FsspecArtifactStore

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


def test_the_features_of_sampled_requests_are_logged_row_by_row_and_null_for_the_others(tmp_path):
    log = writer(tmp_path)
    sampled = np.array([[0.5, -1.0, 2.0], [1.5, 0.0, np.nan]])  # two rows: NaN is kept as the model saw it
    log.append({"x": np.array([1.0, 2.0]), "plan": ["a", "b"], "id": ["a", "b"]}, 2, "1", [2.0, 4.0], [np.nan] * 2)
    columns = {"x": np.array([3.0, 4.0]), "plan": ["c", "d"], "id": ["c", "d"]}
    log.append(columns, 2, "1", [6.0, 8.0], [np.nan] * 2, None, None, sampled)
    log.append({"x": np.array([5.0]), "plan": ["e"], "id": ["e"]}, 1, "1", [10.0], [np.nan])
    log.close()
    table = pq.read_table(next(tmp_path.glob("part-*.parquet")))
    assert table.schema.field(FEATURES).type == pa.list_(pa.float64())
    logged = table.column(FEATURES).to_pylist()
    assert logged[:2] == [None, None] and logged[4] is None
    np.testing.assert_array_equal(np.array(logged[2:4]), sampled)


def test_a_log_written_before_the_features_column_reads_together_with_a_newer_one(tmp_path):
    """The drift windows concatenate the log's files: a file of an older endpoint has no features column."""
    from mlops_assets.monitoring.log_window import newest_window
    from mlops_assets.resources.artifact_store import FsspecArtifactStore

    folder = tmp_path / "p" / "inference_log"
    new = writer(folder)
    older = {"request_id": ["r"], "timestamp": [0], "model_version": ["1"], "id": ["a"], "x": [1.0], "plan": ["a"]}
    older |= {"prediction": [2.0], "score": [None], "invalid": [None]}
    pq.write_table(
        pa.Table.from_pydict(older, schema=new.schema.remove(new.schema.get_field_index(FEATURES))),
        folder / "part-00000000000000000001.parquet",
    )
    new.append({"x": np.array([2.0]), "plan": ["b"], "id": ["b"]}, 1, "1", [4.0], [np.nan], None, None, np.ones((1, 2)))
    new.close()
    window = newest_window(FsspecArtifactStore(root=str(tmp_path)), "p/inference_log", 10).table
    assert window.column("id").to_pylist() == ["a", "b"]
    assert window.column(FEATURES).to_pylist() == [None, [1.0, 1.0]]


def test_the_shadow_log_keeps_no_features(tmp_path):
    shadow_schema = log_schema(DTYPES, "regression", "id", shadow=True)
    shadow, inference = InferenceLogWriter(tmp_path / "shadow", shadow_schema), writer(tmp_path / "inference")
    shadow.close()
    inference.close()
    assert FEATURES not in shadow.schema.names and FEATURES in inference.schema.names


def test_one_request_in_every_n_is_sampled_starting_with_the_first():
    def taken(sampler: OneIn, n: int) -> list[int]:
        return [i for i in range(n) if sampler.take()]

    assert taken(OneIn(3), 10) == [0, 3, 6, 9]
    assert taken(OneIn(1), 4) == [0, 1, 2, 3]
    assert taken(OneIn(None), 4) == []


def test_telemetry_snapshots_are_shipped_with_the_log_after_its_files_and_leave_the_spool(tmp_path, s3_bucket):
    """They were written beside the spooled log and never reached the store: the pipeline could not read them."""
    from mlops_assets.resources.artifact_store import FsspecArtifactStore

    store = FsspecArtifactStore(root=s3_bucket)
    spool = tmp_path / "spool"
    log = writer(spool, ship_to=f"{s3_bucket}/p/inference_log")
    names = ["telemetry-00000000000000000001-7.json", "telemetry-00000000000000000002-7.json"]
    for name in names:
        (spool / name).write_bytes(b'{"time": 1}')
    append(log, [1.0], ["a"])
    log.flush()
    assert log.status()["files_to_ship"] == 3
    log.ship()
    assert list(spool.iterdir()) == []
    keys = store.list("p/inference_log")
    assert len(keys) == 3 and keys[0].startswith("p/inference_log/part-")
    for key, name in zip(keys[1:], names, strict=True):  # named with the replica, as the log's files are
        assert key.startswith(f"p/inference_log/{name.removesuffix('.json')}-") and key.endswith(".json")
    assert log_files(store, "p/inference_log") == keys[:1]  # the log's files alone
    assert store.read_bytes(keys[1]) == b'{"time": 1}' and log.status()["files_shipped"] == 3
    log.close()
