"""Where files are, without reading them: what sensor ticks and the code location can afford to import."""

from __future__ import annotations

import datetime as dt
import glob
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_assets.errors import DataError
from mlops_assets.naming import StorePrefix, store_key
from mlops_assets.spec.data_roots import DATA_FILES, irregular_kind, is_url, outside_roots, url_problem

if TYPE_CHECKING:  # the endpoint and the CLI read locations without importing Dagster
    from mlops_assets.contracts import ArtifactStore

EVALUATION_FOLDER = "evaluation"  # artifact folder of a version's run holding its evaluation
HOLDOUT_INPUTS = "holdout_inputs.parquet"  # in that folder: the inputs a compiled fast path must reproduce on

log = logging.getLogger(__name__)


def list_files(pattern: str, base_dir: Path) -> list[str]:
    """CSV/parquet files matching ``pattern`` (a file, glob or folder, relative to ``base_dir``, or an object-store
    URL: label batches land in a bucket in production), in name order; the files ``find_files`` refuses are
    logged and left out."""
    files, refused = find_files(pattern, base_dir)
    for file, why in refused.items():
        log.warning("%s is not read: %s", file, why)
    return files


def find_files(pattern: str, base_dir: Path) -> tuple[list[str], dict[str, str]]:
    """The files ``list_files`` gives, and the local ones matched but refused, with why: what is not a regular
    file (a FIFO would block its reader) and what resolves, symlinks followed, outside the data roots."""
    if is_url(pattern):
        problem = url_problem(pattern)
        if problem:  # the spec checked it when it loaded; a spec built in code did not
            raise DataError(f"a data location is refused: {problem}")
        return [f for f in _list_remote(pattern) if f.endswith(DATA_FILES)], {}
    location = base_dir / pattern
    matches = sorted(glob.glob(str(location / "*"))) if location.is_dir() else sorted(glob.glob(str(location)))
    files, refused = [], {}
    for file in (f for f in matches if f.endswith(DATA_FILES)):
        why = outside_roots(file, base_dir) or _irregular(file)
        if why:
            refused[file] = why
        else:
            files.append(file)
    return files, refused


def _irregular(file: str) -> str | None:
    try:
        kind = irregular_kind(os.stat(file).st_mode)
    except OSError as exc:  # a dangling symlink
        return f"cannot be read: {exc.strerror or exc}"
    return f"not a regular file ({kind})" if kind else None


def _list_remote(pattern: str) -> list[str]:
    from fsspec.core import url_to_fs

    fs, path = url_to_fs(pattern)
    fs.invalidate_cache()  # another process (a labelling job) may have written since the last listing
    if glob.has_magic(path):
        found = fs.glob(path)
    elif fs.isdir(path):
        found = [p for p in fs.ls(path, detail=False) if fs.isfile(p)]
    else:
        found = [path] if fs.exists(path) else []
    return sorted(fs.unstrip_protocol(p) for p in found)


def file_version(file: str) -> list:
    """What changes when ``file`` is written again: its size and modification time (an object's ETag)."""
    if not is_url(file):
        stat = os.stat(file)
        return [stat.st_size, stat.st_mtime_ns]
    from fsspec.core import url_to_fs

    fs, path = url_to_fs(file)
    info = fs.info(path)
    return [info.get("size"), str(info.get("ETag") or info.get("LastModified") or info.get("mtime"))]


def sources_key(pipeline: str, dataset_hash: str) -> str:
    """Beside the raw snapshot ``dataset_hash``: the data and label files it was first read from."""
    return store_key(pipeline, StorePrefix.raw, f"{dataset_hash}.sources.json")


def log_prefix(pipeline: str) -> str:
    """Artifact-store prefix of a pipeline's inference log."""
    return store_key(pipeline, StorePrefix.inference_log)


def shadow_log_prefix(pipeline: str) -> str:
    """Artifact-store prefix of the shadow model's answers: beside the inference log, never inside it, so
    drift windows and sensors count each production row once."""
    return store_key(pipeline, StorePrefix.shadow_log)


def log_files(store: ArtifactStore, prefix: str) -> list[str]:
    """Inference log files in the order they were written (their names start with the write time)."""
    return [k for k in store.list(prefix) if k.endswith(".parquet")]


def log_file_written_ns(key: str) -> int | None:
    """When an inference log file was written (ns since the epoch), from its name: ``part-<ns>.parquet`` as the
    endpoint writes it, ``part-<ns>-<replica>.parquet`` once shipped; ``None`` for another name.

    >>> log_file_written_ns("p/inference_log/part-00001764633600000000001-web-7f9c.parquet")
    1764633600000000001
    >>> log_file_written_ns("p/inference_log/renamed.parquet") is None
    True
    """
    written = key.rsplit("/", 1)[-1].removeprefix("part-").removesuffix(".parquet").split("-", 1)[0]
    return int(written) if written.isdigit() else None


DRIFT_REPORT_STAMP = "%Y%m%dT%H%M%S.%fZ"  # a drift report's key begins with its write time: the newest sorts last


def drift_report_key(pipeline: str, written_at: dt.datetime, run_id: str) -> str:
    """Where a drift report goes (``.json`` and ``.md`` are added): named by its UTC write time, then its run."""
    return store_key(pipeline, StorePrefix.drift_reports, f"{written_at.strftime(DRIFT_REPORT_STAMP)}-{run_id}")


def drift_reports(store: ArtifactStore, pipeline: str) -> list[str]:
    """The keys of a pipeline's drift reports (their JSON), oldest first."""
    return [key for key in store.list(store_key(pipeline, StorePrefix.drift_reports)) if key.endswith(".json")]


def drift_report_time(key: str) -> dt.datetime | None:
    """When a drift report was written, from its key; ``None`` for a name it does not begin with.

    >>> drift_report_time("p/reports/drift/20261202T013616.000123Z-4f1c.json").isoformat()
    '2026-12-02T01:36:16.000123+00:00'
    """
    stamp = key.rsplit("/", 1)[-1].split("-", 1)[0]
    try:
        return dt.datetime.strptime(stamp, DRIFT_REPORT_STAMP).replace(tzinfo=dt.UTC)
    except ValueError:
        return None
