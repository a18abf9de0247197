"""Where an inference log is written and where it is shipped: a local folder, or a spool whose files are moved to
an object store (``InferenceLogWriter.ship``), one upload at a time within a deadline."""

from __future__ import annotations

import time
from pathlib import Path

from mlops_assets.data.locations import is_url


def put_file(fs, local: str, remote: str, timeout_s: float) -> None:
    """One upload, given up after ``timeout_s``: an S3 store that accepts the connection and never answers held a
    stopping endpoint indefinitely, botocore's own timeouts notwithstanding (s3fs is asynchronous: the upload is
    cancelled at the deadline)."""
    if getattr(fs, "async_impl", False):
        from fsspec.asyn import sync

        sync(fs.loop, fs._put_file, local, remote, timeout=timeout_s)
    else:
        fs.put_file(local, remote)


def log_destination(location: str, spool: Path) -> tuple[Path, str | None]:
    """Where an ``InferenceLogWriter`` writes (its ``directory``) and where it ships (``ship_to``): a folder
    (a path or ``file://`` URL) is written directly; an object-store URL is spooled in ``spool``."""
    if not is_url(location):
        return Path(location.removeprefix("file://")), None
    return spool, location


def describe(exc: Exception) -> str:
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')}: {exc!r}"[:500]
