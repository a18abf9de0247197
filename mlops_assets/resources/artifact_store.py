"""The artifact store on any filesystem fsspec knows: a local folder (the embedded default) or an object store.

One implementation for both: ``root`` is a path (or ``file://`` URL) on a laptop and ``s3://bucket/prefix`` in
production, where the S3 endpoint and credentials come from the usual AWS variables (``AWS_ENDPOINT_URL`` for
an S3-compatible store). On a local disk its files are created 0600 and its folders 0700: the store holds the
inference logs' features and the audit trail (``mlops_assets/local/private.py``).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, BinaryIO

from mlops_assets.contracts import ArtifactStore
from mlops_assets.local.private import open_private, private_folder

if TYPE_CHECKING:
    import pyarrow as pa
    from fsspec import AbstractFileSystem


class FsspecArtifactStore(ArtifactStore):
    """Keys are paths under ``root``. A reader never sees half a file: on a local disk a file is written
    under a temporary name and renamed into place; an object store makes an object visible only once its
    upload completes."""

    root: str

    def _fs(self) -> tuple[AbstractFileSystem, str]:
        from fsspec.core import url_to_fs

        fs, root = url_to_fs(self.root)
        return fs, os.path.abspath(root) if _local(fs) else root.rstrip("/")

    def _path(self, key: str) -> str:
        return f"{self._fs()[1]}/{key}"

    def uri(self, key: str) -> str:
        """A local path for a local root (what pandas, pyarrow and the Dagster UI open directly), else a URL."""
        fs, _ = self._fs()
        return self._path(key) if _local(fs) else fs.unstrip_protocol(self._path(key))

    def exists(self, key: str) -> bool:
        fs, _ = self._fs()
        return fs.isfile(self._path(key))

    @contextlib.contextmanager
    def open_write(self, key: str) -> Iterator[BinaryIO]:
        fs, _ = self._fs()
        path = self._path(key)
        if not _local(fs):
            file = fs.open(path, "wb")
            try:
                yield file
            except BaseException:
                file.discard()  # aborts a multipart upload; closing would publish the half written
                file.closed = True
                raise
            file.close()
            return
        with _aside(path, os.replace) as file:
            yield file

    def create(self, key: str, data: bytes) -> None:
        """On a local disk the file is written aside and hard-linked into place (a link never replaces a file);
        on an object store the upload is conditional (``If-None-Match: *``)."""
        fs, _ = self._fs()
        path = self._path(key)
        if not _local(fs):
            fs.pipe_file(path, data, mode="create")
            return
        with _aside(path, os.link) as file:
            file.write(data)

    def write_table(self, key: str, table: pa.Table) -> int:
        import pyarrow.parquet as pq

        with self.open_write(key) as file:
            pq.write_table(table, file)
            return file.tell()

    def read_table(self, key: str) -> pa.Table:
        import pyarrow.parquet as pq

        fs, _ = self._fs()
        with fs.open(self._path(key), "rb") as file:
            return pq.read_table(file)

    def row_count(self, key: str) -> int:
        import pyarrow.parquet as pq

        fs, _ = self._fs()
        with fs.open(self._path(key), "rb") as file:
            return pq.read_metadata(file).num_rows

    def write_bytes(self, key: str, data: bytes) -> None:
        with self.open_write(key) as file:
            file.write(data)

    def read_bytes(self, key: str) -> bytes:
        fs, _ = self._fs()
        return fs.cat_file(self._path(key))

    def list(self, prefix: str) -> list[str]:
        """Listed afresh each time: another process (an endpoint shipping its log) may have written since."""
        fs, root = self._fs()
        folder = self._path(prefix.rstrip("/"))
        fs.invalidate_cache(folder)
        if not fs.isdir(folder):
            return []
        keys = (path[len(root) + 1 :] for path in fs.find(folder))
        return sorted(k for k in keys if not k.rsplit("/", 1)[-1].startswith("."))


def _local(fs: AbstractFileSystem) -> bool:
    return "file" in fs.protocol or "local" in fs.protocol


@contextlib.contextmanager
def _aside(path: str, publish: Callable[[str, str], None]) -> Iterator[BinaryIO]:
    """A file written under a temporary name beside ``path``, published by ``publish(partial, path)`` (a rename,
    or a link, which never replaces a file) once the block ends, and removed either way. Created 0600, in folders
    created 0700."""
    folder, name = path.rsplit("/", 1)
    private_folder(folder)
    partial = f"{folder}/.{name}.{os.getpid()}.{threading.get_ident()}.partial"
    try:
        with open_private(partial) as file:
            yield file
        publish(partial, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(partial)
