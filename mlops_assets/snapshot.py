"""Reading a declared source and naming its rows by content.

The content hash is the raw snapshot's name and its Dagster data version: the same rows give the same
hash, whatever the file names or modification times, so an unchanged source starts no new work.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from mlops_assets.errors import DataError
from mlops_assets.locations import list_files


@dataclass(frozen=True)
class SourceRead:
    frame: pd.DataFrame
    files: list[str]
    unlabeled_rows: int = 0
    label_files: list[str] = field(default_factory=list)
    unreadable_label_files: list[str] = field(default_factory=list)
    labels_with_unknown_ids: int = 0


def read_file(file: str) -> pd.DataFrame:
    return pd.read_parquet(file) if file.endswith(".parquet") else pd.read_csv(file)


def read_files(
    pattern: str, base_dir: Path, skip_unreadable: bool = False, required: frozenset[str] = frozenset()
) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Concatenate the matching files; return the frame, the files read and the files that could not be.

    A file that cannot be parsed or lacks a ``required`` column fails the read unless ``skip_unreadable``:
    training data is never silently partial, while a corrupt label batch is set aside and reported.
    """
    frames, read, unreadable = [], [], []
    for file in list_files(pattern, base_dir):
        try:
            frame = read_file(file)
            missing = required - set(frame.columns)
            if missing:
                raise DataError(f"no column(s) {sorted(missing)}")
        except Exception as exc:
            if not skip_unreadable:
                raise DataError(f"cannot read {file}: {exc}") from exc
            unreadable.append(file)
            continue
        frames.append(frame)
        read.append(file)
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return frame, read, unreadable


def read_source(spec, base_dir: Path) -> SourceRead:
    """The declared data, with label batches joined by id when the spec has a labels source.

    Rows whose label has not arrived yet are left out of the snapshot and counted: they are not bad rows,
    just not trainable yet. A later label batch brings them in (a new snapshot).
    """
    frame, files, _ = read_files(spec.source.path, base_dir)
    if not files:
        raise DataError(f"{spec.name}: no data file matches {spec.source.path!r} under {base_dir}")
    labels = spec.source.labels
    if labels is None:
        return SourceRead(frame, files)
    label_frame, label_files, unreadable = read_files(
        labels.path, base_dir, skip_unreadable=True, required=frozenset({labels.id_column, spec.target})
    )
    key = labels.id_column
    if label_frame.empty:
        empty = frame.iloc[:0].assign(**{spec.target: pd.Series(dtype=object)})
        return SourceRead(empty, files, len(frame), label_files, unreadable)
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
    unknown = int((~latest[key].isin(data[key])).sum())
    return SourceRead(joined, files, len(frame) - len(joined), label_files, unreadable, unknown)


def read_labels(spec, base_dir: Path) -> pd.DataFrame:
    """Every label batch that has arrived; unreadable ones are left out (the labels sensor reports them)."""
    if spec.source.labels is None:
        return pd.DataFrame()
    required = frozenset({spec.source.labels.id_column, spec.target})
    labels, _, _ = read_files(spec.source.labels.path, base_dir, skip_unreadable=True, required=required)
    return labels


def content_hash(frame: pd.DataFrame) -> str:
    """SHA-256 of the column names, dtypes and row values (16 hex digits)."""
    digest = hashlib.sha256()
    digest.update(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]
