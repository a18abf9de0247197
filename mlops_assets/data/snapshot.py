"""Reading a declared source and naming its rows by content.

The content hash is the raw snapshot's name and its Dagster data version: the same rows give the same
hash, whatever the file names or modification times, so an unchanged source starts no new work.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from mlops_assets.data.locations import list_files
from mlops_assets.errors import DataError

if TYPE_CHECKING:
    from mlops_assets.spec import PipelineSpec


@dataclass(frozen=True)
class SourceRead:
    frame: pd.DataFrame
    files: list[str]
    unlabeled_rows: int = 0
    label_files: list[str] = field(default_factory=list)
    unreadable_label_files: dict[str, str] = field(default_factory=dict)
    labels_conflicting_with_source: int = 0


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


def read_source(spec: PipelineSpec, base_dir: Path) -> SourceRead:
    """The declared data, with label batches joined by id when the spec has a labels source.

    A source row keeps its own target where it has one; a label batch gives the target to the rows that
    lack it, and never overwrites one (a disagreeing label is counted). Rows still without a label are
    left out of the snapshot and counted: they are not bad rows, just not trainable yet; a later label
    batch brings them in (a new snapshot). Label batches are read by ``feedback.read_label_batches``, so
    a truncated, conflicting or invalid label is quarantined there and never used here.
    """
    from mlops_assets.data.feedback import read_label_batches

    frame, files, _ = read_files(spec.source.path, base_dir)
    if not files:
        raise DataError(f"{spec.name}: no data file matches {spec.source.path!r} under {base_dir}")
    if spec.source.labels is None:
        return SourceRead(frame, files)
    key, target = spec.source.labels.id_column, spec.target
    if key not in frame.columns:
        raise DataError(f"{spec.name}: the data have no id column {key!r}")
    batches = read_label_batches(spec, base_dir)
    frame = frame.assign(**{key: frame[key].astype(str)})
    own = frame[target] if target in frame.columns else pd.Series(pd.NA, index=frame.index, dtype=object)
    given = frame[key].map(batches.labels.set_index(key)[target]) if len(batches.labels) else own.iloc[:0]
    given = given.reindex(frame.index)
    conflicting = int((own.notna() & given.notna() & (own.astype(str) != given.astype(str))).sum())
    labelled = frame.assign(**{target: own.where(own.notna(), given)})
    joined = labelled[labelled[target].notna()].reset_index(drop=True)
    return SourceRead(joined, files, len(frame) - len(joined), batches.files, batches.unreadable, conflicting)


def source_ids(spec: PipelineSpec, base_dir: Path) -> set[str]:
    """The ids of the declared data: a label for none of them nor for a served row is for an unknown id."""
    frame, _, _ = read_files(spec.source.path, base_dir)
    return set(frame[spec.id_column].astype(str)) if spec.id_column in frame.columns else set()


def read_labels(spec: PipelineSpec, base_dir: Path) -> pd.DataFrame:
    """Every accepted label (one per id, as ``feedback.read_label_batches`` decides); empty without a
    labels source."""
    from mlops_assets.data.feedback import read_label_batches

    return read_label_batches(spec, base_dir).labels if spec.source.labels is not None else pd.DataFrame()


def content_hash(frame: pd.DataFrame) -> str:
    """SHA-256 of the column names, dtypes and row values (16 hex digits)."""
    digest = hashlib.sha256()
    digest.update(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]
