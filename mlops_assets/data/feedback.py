"""Labels that arrive after the rows they label, and the labelled production rows they make.

A label batch is evidence from outside: a file cut short, a value outside the schema or a second,
different label for a case must never replace a good label silently. So every label row ends in exactly
one place (accepted, counted as a harmless duplicate, or quarantined with its reason) and the counts add
up. The features come from the inference log: a label applies to what the endpoint last served for that
id, which is what a model trained on the row must see.

A label batch is read within bounds, whatever it claims to be: a regular file only (a FIFO would block the
reader), at most ``MLOPS_MAX_LABEL_BYTES`` bytes (32 MiB by default), counted after decompression for a
``.csv.gz`` and on the parquet's uncompressed columns; it is streamed, never read whole first, so a small
``.gz`` bomb stops at the bound. A batch past it is set aside whole with the reason, as a batch that cannot
be parsed is.
"""

from __future__ import annotations

import gzip
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import fsspec
import pandas as pd

from mlops_assets.data.locations import find_files
from mlops_assets.data.training_window import LOGGED_AT
from mlops_assets.data.validation import validate
from mlops_assets.errors import DataError
from mlops_assets.spec.data_roots import irregular_kind, is_url

if TYPE_CHECKING:
    from mlops_assets.spec import PipelineSpec

LABEL_FILE = "_label_file"  # label rows: the name of the batch file the row came from
FAILURES = "_failures"  # quarantined rows: why (the column validation's quarantine uses)
TRUNCATED = "truncated file: the last row has no line end"
UNKNOWN_ID = "unknown id: neither in the source nor in the inference log"
_ROW = "_row"  # position of a label row among all rows read: how each verdict finds its row
MAX_LABEL_BYTES_ENV = "MLOPS_MAX_LABEL_BYTES"
DEFAULT_MAX_LABEL_BYTES = 32 << 20  # about 1.5 million labels of an id and a class: split larger batches
_PARQUET_BATCH_ROWS = 65_536


def max_label_bytes() -> int:
    """The most bytes a label batch may hold once decompressed: ``MLOPS_MAX_LABEL_BYTES``, else 32 MiB."""
    return int(os.environ.get(MAX_LABEL_BYTES_ENV) or DEFAULT_MAX_LABEL_BYTES)


@dataclass(frozen=True)
class LabelBatches:
    labels: pd.DataFrame  # one row per id: the id (str), the target (spec dtype), _label_file
    quarantined: pd.DataFrame  # rejected rows as they arrived (strings), _label_file, _failures
    files: list[str]  # the label files read, in name order
    unreadable: dict[str, str]  # file -> why nothing from it is used
    counts: dict[str, int]  # label rows, accepted, duplicates, then quarantined rows (failures) per reason


@dataclass(frozen=True)
class FeedbackJoin:
    rows: pd.DataFrame  # input columns, id, target, _logged_at; sorted by _logged_at, then id
    quarantined: pd.DataFrame  # labels whose id is neither in the source nor logged, with _failures
    counts: dict[str, int]  # logged rows and ids, labelled rows, ids waiting for a label, labels per fate


def read_label_batches(spec: PipelineSpec, base_dir: Path) -> LabelBatches:
    """Every label batch in name order, checked, with one label per id.

    Name order is arrival order (batches are named by sequence or time), which is what makes "the first
    label wins" a rule a person can predict. Failures are counted per check, so a row failing two checks
    counts under both; ``label_rows == accepted + duplicates + len(quarantined)`` always holds.
    """
    if spec.source.labels is None:
        raise DataError(f"{spec.name}: the spec has no source.labels, so there are no label batches to read")
    key, target = spec.source.labels.id_column, spec.target
    arrived, files, unreadable, truncated = _read_batches(spec.source.labels.path, base_dir, key, target)
    checked = validate(_label_spec(spec), arrived.drop(index=truncated).assign(**{_ROW: lambda f: f.index}))
    accepted, duplicates, torn, conflicts = _one_label_per_id(checked.kept, key, target)
    accepted[key] = arrived.loc[accepted.index, key]  # the id as it arrived, whatever dtype the schema gives it
    invalid = checked.quarantined.set_index(_ROW)[FAILURES]
    parts = [part for part in (pd.Series(TRUNCATED, index=truncated), invalid, torn, conflicts) if len(part)]
    reasons = pd.concat(parts).sort_index() if parts else pd.Series(dtype=object)
    quarantined = arrived.loc[reasons.index].astype({key: "string", target: "string"}).assign(**{FAILURES: reasons})
    counts = {
        "label_rows": len(arrived),
        "accepted": len(accepted),
        "duplicates": duplicates,
        "truncated": len(truncated),
        **checked.failures_by_check,
        "conflicting_within_file": len(torn),
        "conflicting_with_earlier": len(conflicts),
    }
    return LabelBatches(accepted.reset_index(drop=True), quarantined.reset_index(drop=True), files, unreadable, counts)


def join_feedback(
    spec: PipelineSpec, logged: pd.DataFrame, labels: pd.DataFrame, source_ids: set[str] | None
) -> FeedbackJoin:
    """The labelled production rows: each labelled id's newest logged row, with its accepted label.

    An id names one case, so it gives one training row, with the features last served for it. ``logged``
    is the log as pyarrow reads it (``timestamp`` a UTC datetime); ``labels`` is ``LabelBatches.labels``;
    ``source_ids`` are the ids of the declared source (``None`` when it has none). A label for an id in
    neither is quarantined for this read only: it joins once the endpoint serves that id.
    """
    key, target = spec.source.labels.id_column, spec.target
    if key not in logged.columns:
        raise DataError(f"{spec.name}: the inference log has no id column {key!r}; set id_column: {key} to log it")
    served = logged[logged[key].notna()]
    logged_at = pd.to_datetime(served["timestamp"], utc=True).dt.as_unit("ms").astype("int64")
    newest = (
        served[[*spec.input_columns, key]]
        .assign(**{key: served[key].astype(str), LOGGED_AT: logged_at})
        .sort_values(LOGGED_AT, kind="stable")
        .drop_duplicates(key, keep="last")
    )
    joined = newest.merge(labels[[key, target]], on=key, how="inner")
    columns = [c for c in spec.schema_.columns if c in joined.columns] + [LOGGED_AT]
    rows = joined[columns].sort_values([LOGGED_AT, key], kind="stable").reset_index(drop=True)
    unknown = ~labels[key].isin(set(newest[key]) | (source_ids or set()))
    quarantined = labels[unknown].assign(**{FAILURES: UNKNOWN_ID}).reset_index(drop=True)
    counts = {
        "logged_rows": len(logged),
        "logged_ids": len(newest),
        "labelled_rows": len(rows),
        "waiting_for_label": len(newest) - len(rows),
        "source_only_labels": len(labels) - len(rows) - len(quarantined),
        "unknown_id_labels": len(quarantined),
    }
    return FeedbackJoin(rows, quarantined, counts)


def _read_batches(
    pattern: str, base_dir: Path, key: str, target: str
) -> tuple[pd.DataFrame, list[str], dict[str, str], list[int]]:
    """All readable batches as one frame (in file order), the files read, the unreadable ones with their
    reason, and the positions of rows cut short by a truncated file."""
    listed, refused = find_files(pattern, base_dir)
    frames, files, unreadable, truncated, start, limit = [], [], dict(refused), [], 0, max_label_bytes()
    for file in listed:
        try:
            frame, cut = _read_batch(file, key, target, limit)
        except DataError as exc:
            unreadable[file] = str(exc)
            continue
        frames.append(frame.assign(**{LABEL_FILE: file.rsplit("/", 1)[-1]}))
        files.append(file)
        start += len(frame)
        if cut and len(frame):
            truncated.append(start - 1)
    if not frames:
        return pd.DataFrame(columns=[key, target, LABEL_FILE]), files, unreadable, truncated
    return pd.concat(frames, ignore_index=True), files, unreadable, truncated


def _read_batch(file: str, key: str, target: str, limit: int) -> tuple[pd.DataFrame, bool]:
    """The id (as text, missing ones kept missing) and target of one file, and whether it was cut short.

    CSV ids are read as text so that ``P0007`` and ``0007`` stay what was written; the target is parsed
    as the declared source is, so validation coerces it the same way. A CSV whose last byte is not a line
    end was cut while being written: its last row may be a prefix of the real one (``be`` for ``benign``).
    More than ``limit`` bytes (after decompression) is a ``DataError``, raised before they are all read.
    """
    try:
        with _open_batch(file, limit) as handle:
            if file.endswith(".parquet"):
                frame, cut = _read_parquet(handle, [key, target], limit), False
            else:
                text = gzip.GzipFile(fileobj=handle) if file.endswith(".gz") else handle
                bounded = _Bounded(text, limit)
                frame = pd.read_csv(io.BufferedReader(bounded), dtype={key: str})
                cut = bounded.last != b"\n"
    except DataError:
        raise
    except Exception as exc:  # any parser's error: the batch is set aside whole, never half-used
        raise DataError(f"cannot parse: {str(exc).strip()}") from exc
    missing = sorted({key, target} - set(frame.columns))
    if missing:
        raise DataError(f"no column(s) {missing}")
    ids = frame[key]
    return frame[[key, target]].assign(**{key: ids.where(ids.isna(), ids.astype(str))}), cut


def _too_large(size: str, limit: int) -> DataError:
    return DataError(
        f"{size}: more than the {limit} bytes a label batch may hold ({MAX_LABEL_BYTES_ENV}); split it into "
        "smaller batches"
    )


@contextmanager
def _open_batch(file: str, limit: int) -> Iterator[BinaryIO]:
    """``file`` opened for reading, once it is known to be a regular file of at most ``limit`` bytes. A local
    file is opened without blocking and checked on its descriptor: it may have become a FIFO since listed."""
    if is_url(file):
        with fsspec.open(file, "rb") as handle:
            if (handle.size or 0) > limit:
                raise _too_large(f"{handle.size} bytes", limit)
            yield handle
        return
    fd = os.open(file, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    stat = os.fstat(fd)
    kind = irregular_kind(stat.st_mode)
    if kind or stat.st_size > limit:
        os.close(fd)
        raise DataError(f"not a regular file ({kind})") if kind else _too_large(f"{stat.st_size} bytes", limit)
    with os.fdopen(fd, "rb") as handle:
        yield handle


class _Bounded(io.RawIOBase):
    """Reads ``stream`` and raises a ``DataError`` as soon as more than ``limit`` bytes came out of it (a
    gzip stream decompresses only as far as it is read); ``last`` is the last byte read."""

    def __init__(self, stream: BinaryIO, limit: int):
        self._stream, self._limit, self._read, self.last = stream, limit, 0, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._stream.read(min(len(buffer), self._limit - self._read + 1))
        self._read += len(data)
        if self._read > self._limit:
            raise _too_large("once decompressed", self._limit)
        buffer[: len(data)] = data
        self.last = data[-1:] or self.last
        return len(data)


def _read_parquet(handle: BinaryIO, columns: list[str], limit: int) -> pd.DataFrame:
    """``columns`` of a parquet file (those it has), refused past ``limit`` bytes uncompressed: by the sizes
    its footer declares before anything is decoded, then by what decoding actually gives, batch by batch."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(handle)
    columns = [c for c in columns if c in parquet.schema_arrow.names]
    meta = parquet.metadata
    declared = sum(
        chunk.total_uncompressed_size
        for chunk in (meta.row_group(g).column(c) for g in range(meta.num_row_groups) for c in range(meta.num_columns))
        if chunk.path_in_schema.split(".")[0] in columns
    )
    if declared > limit:
        raise _too_large(f"{declared} bytes uncompressed in {columns}", limit)
    batches, decoded = [], 0
    for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH_ROWS, columns=columns):
        decoded += batch.nbytes
        if decoded > limit:
            raise _too_large(f"decoded {columns}", limit)
        batches.append(batch)
    schema = pa.schema([parquet.schema_arrow.field(c) for c in columns])
    return pa.Table.from_batches(batches, schema=schema).to_pandas()


def _label_spec(spec: PipelineSpec):
    """The spec narrowed to the id and target, both required (a missing label is not a label), other
    columns kept so each row's file and position pass through validation untouched."""
    key, target = spec.source.labels.id_column, spec.target
    columns = {name: spec.schema_.columns[name].model_copy(update={"nullable": False}) for name in (key, target)}
    schema = spec.schema_.model_copy(update={"columns": columns, "unknown_columns": "keep"})
    return spec.model_copy(update={"schema_": schema})


def _one_label_per_id(kept: pd.DataFrame, key: str, target: str) -> tuple[pd.DataFrame, int, pd.Series, pd.Series]:
    """The accepted label per id (indexed by row), the number of harmless duplicates, and the reasons of
    rows torn by a conflict inside an id's first file and of later labels conflicting with the first.

    A different label later is a correction someone must make on purpose, not an accident of file
    order; an id whose first file disagrees with itself has no label anyone can trust yet.
    """
    rows = kept.set_index(_ROW).sort_index()
    first_file = rows.groupby(key)[LABEL_FILE].transform("first")
    in_first = rows[rows[LABEL_FILE] == first_file]
    labels_in_first = in_first.groupby(key)[target].nunique()
    split = rows[key].isin(labels_in_first.index[labels_in_first > 1])
    torn = "conflicting labels for this id within " + first_file[split]
    agreed, first_file = rows[~split], first_file[~split]
    label = agreed.groupby(key)[target].transform("first")
    same = agreed[target] == label
    conflicts = "conflicts with label '" + label[~same].astype(str) + "' from " + first_file[~same]
    first = ~agreed[key].duplicated()
    duplicates = int((same & ~first).sum())
    return agreed.loc[first, [key, target, LABEL_FILE]], duplicates, torn, conflicts
