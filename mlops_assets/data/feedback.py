"""Labels that arrive after the rows they label, and the labelled production rows they make.

A label batch is evidence from outside: a file cut short, a value outside the schema or a second,
different label for a case must never replace a good label silently. So every label row ends in exactly
one place (accepted, counted as a harmless duplicate, or quarantined with its reason) and the counts add
up. The features come from the inference log: a label applies to what the endpoint last served for that
id, which is what a model trained on the row must see.
"""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass
from pathlib import Path

import fsspec
import pandas as pd

from mlops_assets.data.locations import list_files
from mlops_assets.data.training_window import LOGGED_AT
from mlops_assets.data.validation import validate
from mlops_assets.errors import DataError

LABEL_FILE = "_label_file"  # label rows: the name of the batch file the row came from
FAILURES = "_failures"  # quarantined rows: why (the column validation's quarantine uses)
TRUNCATED = "truncated file: the last row has no line end"
UNKNOWN_ID = "unknown id: neither in the source nor in the inference log"
_ROW = "_row"  # position of a label row among all rows read: how each verdict finds its row


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


def read_label_batches(spec, base_dir: Path) -> LabelBatches:
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


def join_feedback(spec, logged: pd.DataFrame, labels: pd.DataFrame, source_ids: set[str] | None) -> FeedbackJoin:
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
    frames, files, unreadable, truncated, start = [], [], {}, [], 0
    for file in list_files(pattern, base_dir):
        try:
            frame, cut = _read_batch(file, key, target)
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


def _read_batch(file: str, key: str, target: str) -> tuple[pd.DataFrame, bool]:
    """The id (as text, missing ones kept missing) and target of one file, and whether it was cut short.

    CSV ids are read as text so that ``P0007`` and ``0007`` stay what was written; the target is parsed
    as the declared source is, so validation coerces it the same way. A CSV whose last byte is not a line
    end was cut while being written: its last row may be a prefix of the real one (``be`` for ``benign``).
    """
    try:
        if file.endswith(".parquet"):
            frame, cut = pd.read_parquet(file), False
        else:
            with fsspec.open(file, "rb") as handle:
                raw = handle.read()
            raw = gzip.decompress(raw) if file.endswith(".gz") else raw
            frame, cut = pd.read_csv(io.BytesIO(raw), dtype={key: str}), not raw.endswith(b"\n")
    except Exception as exc:  # any parser's error: the batch is set aside whole, never half-used
        raise DataError(f"cannot parse: {str(exc).strip()}") from exc
    missing = sorted({key, target} - set(frame.columns))
    if missing:
        raise DataError(f"no column(s) {missing}")
    ids = frame[key]
    return frame[[key, target]].assign(**{key: ids.where(ids.isna(), ids.astype(str))}), cut


def _label_spec(spec):
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
