"""``log_window.log_since`` opens only the inference log files written since the time asked for."""

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq

from mlops_assets.monitoring.log_window import log_since
from mlops_assets.resources.artifact_store import FsspecArtifactStore

PREFIX = "p/inference_log"
SINCE = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)


def log_file(root, name: str, at: dt.datetime, value: float) -> None:
    table = pa.table({"timestamp": pa.array([at], pa.timestamp("ms", tz="UTC")), "x": [value]})
    (root / PREFIX).mkdir(parents=True, exist_ok=True)
    pq.write_table(table, root / PREFIX / name)


def ns(at: dt.datetime) -> str:
    return f"{int(at.timestamp()) * 1_000_000_000:020d}"


def test_files_written_before_the_window_are_never_opened_under_their_shipped_names(tmp_path):
    """A shipped file's name carries its replica after the time (``part-<ns>-<replica>.parquet``): the time is
    still read from it, so an endpoint's long history costs no reads. The older file here cannot even be read."""
    before, after = SINCE - dt.timedelta(hours=1), SINCE + dt.timedelta(minutes=1)
    (tmp_path / PREFIX).mkdir(parents=True)
    (tmp_path / PREFIX / f"part-{ns(before)}-web-1.parquet").write_bytes(b"not parquet: never opened")
    log_file(tmp_path, f"part-{ns(after)}-web-1.parquet", after, 2.0)
    log_file(tmp_path, f"part-{ns(after + dt.timedelta(seconds=1))}.parquet", after, 3.0)

    rows = log_since(FsspecArtifactStore(root=str(tmp_path)), PREFIX, SINCE)

    assert rows.column("x").to_pylist() == [2.0, 3.0]
