"""Reading a declared source and naming its rows by content.

The content hash is the raw snapshot's name and its Dagster data version: the same rows give the same
hash, whatever the file names or modification times, so an unchanged source starts no new work.
"""

from __future__ import annotations

import glob
import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mlops_assets.errors import DataError


@dataclass(frozen=True)
class SourceRead:
    frame: pd.DataFrame
    files: list[str]
    unlabeled_rows: int
    label_files: list[str]


def read_files(pattern: str, base_dir: Path) -> tuple[pd.DataFrame, list[str]]:
    """Concatenate every CSV/parquet file matching ``pattern`` (a file, glob or folder) in name order."""
    location = base_dir / pattern
    files = sorted(glob.glob(str(location / "*"))) if location.is_dir() else sorted(glob.glob(str(location)))
    frames = []
    for file in files:
        try:
            if file.endswith(".parquet"):
                frames.append(pd.read_parquet(file))
            elif file.endswith((".csv", ".csv.gz")):
                frames.append(pd.read_csv(file))
        except Exception as exc:
            raise DataError(f"cannot read {file}: {exc}") from exc
    if not frames:
        return pd.DataFrame(), []
    return pd.concat(frames, ignore_index=True), files


def read_source(spec, base_dir: Path) -> SourceRead:
    """The declared data, with label batches joined by id when the spec has a labels source.

    Rows whose label has not arrived yet are left out of the snapshot and counted: they are not bad rows,
    just not trainable yet. A later label batch brings them in (a new snapshot).
    """
    frame, files = read_files(spec.source.path, base_dir)
    if not files:
        raise DataError(f"{spec.name}: no data file matches {spec.source.path!r} under {base_dir}")
    labels = spec.source.labels
    if labels is None:
        return SourceRead(frame, files, 0, [])
    label_frame, label_files = read_files(labels.path, base_dir)
    key = labels.id_column
    if label_frame.empty:
        return SourceRead(frame.iloc[:0].assign(**{spec.target: pd.Series(dtype=object)}), files, len(frame), [])
    for name, part in (("data", frame), ("labels", label_frame)):
        if key not in part.columns:
            raise DataError(f"{spec.name}: the {name} have no id column {key!r}")
    if spec.target not in label_frame.columns:
        raise DataError(f"{spec.name}: the label files have no target column {spec.target!r}")
    # A later batch corrects an earlier one: keep the last label given for each id.
    latest = label_frame[[key, spec.target]].drop_duplicates(key, keep="last")
    data = frame.drop(columns=[spec.target], errors="ignore")
    data[key] = data[key].astype(str)
    latest[key] = latest[key].astype(str)
    joined = data.merge(latest, on=key, how="inner")
    return SourceRead(joined, files, len(frame) - len(joined), label_files)


def content_hash(frame: pd.DataFrame) -> str:
    """SHA-256 of the column names, dtypes and row values (16 hex digits)."""
    digest = hashlib.sha256()
    digest.update(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]
