"""Where a spec's files may lie, checked when the spec loads: in its folder or a data root, as a regular file of a
data format, or in an object store named by a URL without credentials. Pure (``os`` and ``urllib``): the spec
checks every source against these, and ``data.locations`` lists and reads files by them.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from urllib.parse import urlsplit

DATA_FILES = (".parquet", ".csv", ".csv.gz")
DATA_ROOTS_ENV = "MLOPS_DATA_ROOTS"  # folders outside a spec's own that its files may be in, separated as PATH is
OBJECT_STORES = ("s3", "s3a", "gs", "gcs", "abfs", "abfss", "az")  # what a spec's data may be read from, by URL
_CONTAINER_AT_ACCOUNT = ("abfs", "abfss", "az")  # abfs://container@account...: a user part that is no credential


def is_url(location: str) -> bool:
    """An object-store location (``s3://bucket/labels/``), read through fsspec, rather than a local path."""
    return "://" in location and not location.startswith("file://")


def data_roots(base_dir: Path) -> list[Path]:
    """Where a spec in ``base_dir`` may read files: its folder, then the folders of ``MLOPS_DATA_ROOTS``."""
    extra = [part.strip() for part in os.environ.get(DATA_ROOTS_ENV, "").split(os.pathsep) if part.strip()]
    return [Path(base_dir).resolve(), *(Path(part).resolve() for part in extra)]


def outside_roots(location: str | Path, base_dir: Path) -> str | None:
    """Why ``location`` (symlinks followed, ``..`` resolved) may not be read by a spec in ``base_dir``, or
    ``None`` when it lies under one of the ``data_roots``."""
    real = Path(os.path.realpath(location))
    roots = data_roots(base_dir)
    if any(real.is_relative_to(root) for root in roots):
        return None
    return (
        f"resolves to {real}, outside the spec's folder {roots[0]}"
        f"{''.join(f', {root}' for root in roots[1:])}; a spec reads files in its folder, or in one listed "
        f"in {DATA_ROOTS_ENV} ({os.pathsep}-separated)"
    )


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot name a spec's data, or ``None``; never quotes the URL, which may hold a secret."""
    if "::" in url:
        return "a chained URL (a::b://...) may reach any filesystem; give one object-store URL"
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in OBJECT_STORES:
        return f"{scheme}:// is not an object store (allowed: {', '.join(OBJECT_STORES)})"
    if parts.password is not None or (parts.username is not None and scheme not in _CONTAINER_AT_ACCOUNT):
        return (
            "the URL holds credentials (user:secret@); an object store's credentials come from the environment "
            "(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_KEY...)"
        )
    return None


def irregular_kind(mode: int) -> str | None:
    """What a file of ``mode`` (an ``os.stat`` result's) is when it is not a regular file; ``None`` when it is."""
    if stat.S_ISREG(mode):
        return None
    kinds = {stat.S_ISDIR: "a directory", stat.S_ISFIFO: "a FIFO", stat.S_ISSOCK: "a socket"}
    kinds |= {stat.S_ISCHR: "a character device", stat.S_ISBLK: "a block device"}
    return next((name for is_kind, name in kinds.items() if is_kind(mode)), "not a regular file")
