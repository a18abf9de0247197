"""Artifact store on the local disk: the embedded default."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_assets.contracts import ArtifactStore

if TYPE_CHECKING:
    import pyarrow as pa


class LocalArtifactStore(ArtifactStore):
    """Keys are paths under ``root``. Writes go to a temporary name and are renamed into place, so a
    reader never sees half a snapshot."""

    root: str

    def _path(self, key: str) -> Path:
        return Path(self.root) / key

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def write_table(self, key: str, table: pa.Table) -> int:
        import pyarrow.parquet as pq

        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        pq.write_table(table, partial)
        partial.replace(path)
        return path.stat().st_size

    def read_table(self, key: str) -> pa.Table:
        import pyarrow.parquet as pq

        return pq.read_table(self._path(key))

    def row_count(self, key: str) -> int:
        import pyarrow.parquet as pq

        return pq.read_metadata(self._path(key)).num_rows

    def write_bytes(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        partial.write_bytes(data)
        partial.replace(path)

    def read_bytes(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def list(self, prefix: str) -> list[str]:
        folder = self._path(prefix)
        if not folder.is_dir():
            return []
        return sorted(
            str(p.relative_to(self.root)) for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")
        )

    def uri(self, key: str) -> str:
        return str(self._path(key).resolve())
