"""Workers sharing one log folder: each writer writes, dead-letters and ships its own files only, and the log's
reader sees every writer's rows in write order."""

import numpy as np

from mlops_assets.data.locations import log_file_written_ns, log_files
from mlops_assets.resources.artifact_store import FsspecArtifactStore
from mlops_assets.serving.inference_log import InferenceLogWriter, log_schema

DTYPES = {"x": "float", "plan": "str"}


def writer(folder, segment, **settings) -> InferenceLogWriter:
    schema = log_schema(DTYPES, "regression", "id")
    return InferenceLogWriter(folder, schema, flush_seconds=3600, segment=segment, **settings)


def append(log: InferenceLogWriter, xs: list[float], ids: list[str]) -> None:
    n = len(xs)
    log.append({"x": np.array(xs), "plan": ["a"] * n, "id": ids}, n, "1", np.array(xs), np.full(n, np.nan))


def test_two_writers_in_one_folder_keep_their_own_files_and_the_reader_sees_all_rows(tmp_path):
    w0, w1 = writer(tmp_path / "log", "w0"), writer(tmp_path / "log", "w1")
    append(w0, [1.0], ["a"])
    w0.flush()
    append(w1, [2.0, 3.0], ["b", "c"])
    w1.flush()
    append(w0, [4.0], ["d"])
    w0.close()
    w1.close()
    names = sorted(p.name for p in (tmp_path / "log").glob("*.parquet"))
    assert [name.rsplit("-", 1)[1] for name in names] == ["w0.parquet", "w1.parquet", "w0.parquet"]
    assert all(log_file_written_ns(name) for name in names)
    store = FsspecArtifactStore(root=str(tmp_path))
    rows = [row["id"] for key in log_files(store, "log") for row in store.read_table(key).select(["id"]).to_pylist()]
    assert rows == ["a", "b", "c", "d"]


def test_each_writer_ships_only_its_own_files_and_dead_letters_apart(tmp_path):
    shipped = tmp_path / "store"
    shipped.mkdir()
    w0 = writer(tmp_path / "spool", "w0", ship_to=f"file://{shipped}")
    w1 = writer(tmp_path / "spool", "w1", ship_to=f"file://{shipped}")
    append(w0, [1.0], ["a"])
    append(w1, [2.0], ["b"])
    w0.flush()
    w1.flush()
    w0.ship()
    assert [p.name.rsplit("-", 1)[1] for p in (tmp_path / "spool").glob("part-*")] == ["w1.parquet"]
    log_ids = {"x": np.array([2.0, 3.0]), "plan": ["a", "a"], "id": ["c"]}  # one id, two rows: no table
    w1.append(log_ids, 2, "1", np.array([2.0, 3.0]), np.full(2, np.nan))
    w1.close()
    w0.close()
    assert w1.status()["dead_letter"].endswith("dead-letter-w1.jsonl") and w0.status()["dead_letter"] is None
    assert len(list(shipped.glob("part-*.parquet"))) == 2
