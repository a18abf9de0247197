"""A first spec drafted from a data file: what ``mlops-assets init`` writes into ``pipelines/`` and what
``dg scaffold defs mlops_assets.MLPipelineComponent`` writes into a defs.yaml, by one code path.

``draft_spec`` is the inference, pure: a DataFrame in, a ``Draft`` out (the spec as data, and the comments a
reader needs where a person must decide). ``draft_file`` reads the file and checks the draft with the spec's own
models, so what either command writes validates as written.

The draft's choices, each stated in the comments it writes:
- Bounds catch values that cannot be right (a unit or sign error, a sentinel such as -999), not values past what
  this file holds: traffic outside the training range is drift, which ``drift_report`` measures and a retraining
  learns, whereas a bound quarantines the rows in training and refuses them at serving. So a column with no
  negative value gets ``ge: 0`` (a sign is the invariant most likely real) and otherwise its observed range widened
  by its own width on each side, rounded outward to two significant digits.
- A string column with few values gets ``isin``, so a typo never trains; since ``isin`` also refuses an unseen
  category in a request (400 under ``on_invalid: reject``), the draft then writes ``on_invalid: flag``. A string
  column with many values (free text, a second id) or a timestamp is kept out of the features.
- A linear model below ``LINEAR_BELOW_ROWS`` rows, where a tree ensemble has too few rows to learn interactions;
  gradient boosting from there. The gate asks for more than guessing does, and says it is a floor to raise.
"""

from __future__ import annotations

import math
import os
import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import ValidationError

from mlops_assets.errors import DataError, SpecError
from mlops_assets.spec.base import Task
from mlops_assets.spec.data import Schema
from mlops_assets.spec.data_roots import DATA_FILES
from mlops_assets.spec.operations import Monitoring
from mlops_assets.spec.pipeline import PipelineSpec
from mlops_assets.spec.problems import describe_all

if TYPE_CHECKING:  # pandas is imported where a file is read: the code location imports the component's scaffolder
    import pandas as pd

TaskChoice = Literal["classification", "binary", "multiclass", "regression"]
TASK_CHOICES: tuple[str, ...] = TaskChoice.__args__

MAX_CATEGORIES = 20  # a string column with more distinct values is not one-hot encoded as it is
MAX_INFERRED_CLASSES = 10  # an integer target with more distinct values is inferred to be a regression
MAX_CLASSES = 50  # more classes than this is no classification the draft can set up sensibly
LINEAR_BELOW_ROWS = 1000
WIDTH = 118  # of a comment line, at any indentation

ESTIMATORS: dict[tuple[str, bool], tuple[str, dict[str, Any]]] = {  # (classification or regression, linear)
    ("classification", True): ("sklearn.linear_model.LogisticRegression", {"max_iter": 1000}),
    ("classification", False): ("sklearn.ensemble.HistGradientBoostingClassifier", {"random_state": 0}),
    ("regression", True): ("sklearn.linear_model.Ridge", {}),
    ("regression", False): ("sklearn.ensemble.HistGradientBoostingRegressor", {"random_state": 0}),
}


@dataclass(frozen=True)
class Draft:
    """A drafted spec: ``spec`` as data, in the order it is written; ``notes``, the comment written above the
    field at each dotted path (``""``: the top of the file); ``summary``, one line on what was inferred."""

    spec: dict[str, Any]
    notes: dict[str, str]
    summary: str

    def to_yaml(self, indent: int = 0) -> str:
        """The spec as YAML, its comments beside or above the fields they concern, each line indented by
        ``indent`` (a defs.yaml holds it under ``attributes``). The heading is apart: it opens the file."""
        return "".join(f"{' ' * indent}{line}\n" if line else "\n" for line in _block(self.spec, self.notes, "", 0))

    def heading(self) -> str:
        """The comment that opens the file: where the draft comes from, and that it is one."""
        return "".join(f"{line}\n" for line in _comment(self.notes.get(""), 0))


def draft_spec(
    frame: pd.DataFrame,
    *,
    name: str,
    target: str,
    source: str,
    id_column: str | None = None,
    task: TaskChoice | None = None,
    tool: str = "mlops-assets init",
) -> Draft:
    """The spec of pipeline ``name`` predicting ``target`` from ``frame`` (read from ``source``, the path the spec
    will give); ``task`` ``None`` infers it from the target. Raises ``DataError`` naming the column when the file
    cannot make a pipeline: no rows, no such target or id column, an id that repeats."""
    _check_columns(frame, target, id_column)
    kind, why = _task(frame[target], target, task)
    schema, excluded, categorical = {}, {}, []
    for column in frame.columns:
        role = "target" if column == target else "id" if column == id_column else "feature"
        schema[column], reason = _column(frame[column], role, kind)
        if reason:
            excluded[column] = reason
        elif role == "feature" and "isin" in schema[column]:
            categorical.append(column)

    spec: dict[str, Any] = {"name": name, "task": kind, "target": target}
    notes = {
        "": f"Drafted by `{tool}` from {source} ({len(frame)} rows, {frame.shape[1]} columns): a start to read, "
        "not a verdict. The comments mark what to decide; docs/spec-reference.md lists every field.",
        "task": f"inferred: {target} holds {why}" if task is None else f"--task {task}: {target} holds {why}",
    }
    if id_column is not None:
        spec["id_column"] = id_column
        notes["id_column"] = "never a feature; labels that arrive later join predictions by it (source.labels)"
    spec["source"] = {"path": source}
    spec["schema"] = {"columns": schema}
    if any(c.get("dtype") in ("int", "float") for c in schema.values()):
        notes["schema"] = (
            "Bounds catch values that cannot be right (a unit or sign error), not new ones: 0 where this file has "
            "no negative value, else its range widened by its width on each side. Values beyond the training range "
            "are drift, which drift_report measures; a bound refuses them. Tighten what you know (an age, a share)."
        )
    unlabelled = float(frame[target].isna().mean())
    if unlabelled > Schema.model_fields["max_quarantine_share"].default:  # the draft accepts the file it came from
        spec["schema"]["max_quarantine_share"] = round(math.ceil(unlabelled * 100) / 100 + 0.01, 2)
        notes["schema.max_quarantine_share"] = (
            f"{unlabelled:.0%} of the rows lack {target}: validated_features sets them aside, and this share "
            "also admits as many broken rows"
        )
    if excluded:
        spec["features"] = {"exclude": list(excluded)}
        notes["features"] = "; ".join(f"{c}: {why}" for c, why in excluded.items()) + ": not features as they are"
    spec["model"], notes["model"] = _model(kind, len(frame))
    spec["evaluation"] = {"gate": {"thresholds": {}}}
    spec["evaluation"]["gate"]["thresholds"], notes["evaluation.gate"] = _gate(kind, frame[target])
    if categorical:
        spec["deployment"] = {"on_invalid": "flag"}
        notes["deployment"] = (
            f"{', '.join(categorical)} {'accepts' if len(categorical) == 1 else 'accept'} only the categories of "
            "this file (isin): flag scores a request with a new one and logs it as invalid, where reject (the "
            "default) answers 400; flag applies to every rule. drift_report shows the new category; add it to isin "
            "once labelled to learn it. Choose reject where callers must keep the schema as a contract."
        )
    spec["monitoring"] = {"window": Monitoring.model_fields["window"].default}  # written: what a user sizes
    notes["monitoring"] = "Drift: the newest `window` requests against the training data; size it to your traffic." + (
        " With labels joining by id_column (source.labels), `performance: {metric, floor}` retrains when the online "
        "metric falls."
        if id_column
        else ""
    )
    features = sum(1 for c in schema if c not in (target, id_column) and c not in excluded)
    summary = f"{kind} on {target} ({why}), {features} features, {spec['model']['estimator']}"
    return Draft(spec, notes, summary)


def draft_file(
    data: Path,
    spec_file: Path,
    *,
    name: str,
    target: str,
    id_column: str | None = None,
    task: TaskChoice | None = None,
    copy_into: str | None = None,
    tool: str = "mlops-assets init",
) -> Draft:
    """The draft of ``data`` for a spec to be written at ``spec_file``, its ``source.path`` relative to that
    folder, checked by the spec's models against that folder: a problem raises ``SpecError`` before the spec is
    written. The data must lie where the spec may read it (its folder, or ``MLOPS_DATA_ROOTS``), or be copied
    there: ``copy_into`` names a folder beside the spec, and the copy is removed again when the draft is refused."""
    if not data.name.endswith(DATA_FILES):
        raise DataError(f"{data}: a source is a CSV or parquet file ({', '.join(DATA_FILES)})")
    if not data.is_file():
        raise DataError(f"{data}: no such file")
    import pandas as pd

    from mlops_assets.data.snapshot import read_file

    try:
        frame = read_file(str(data))
    except pd.errors.EmptyDataError:  # not even a header
        frame = pd.DataFrame()
    except Exception as exc:  # a parser's error says what is wrong with the file
        raise DataError(f"cannot read {data}: {exc}") from exc
    folder = spec_file.parent
    placed = folder / copy_into / data.name if copy_into else data
    source = Path(os.path.relpath(placed.resolve(), folder.resolve())).as_posix()
    try:
        draft = draft_spec(frame, name=name, target=target, source=source, id_column=id_column, task=task, tool=tool)
    except DataError as exc:
        raise DataError(f"{data}: {exc}") from None
    if copy_into:
        placed.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data, placed)
    try:
        PipelineSpec.model_validate(yaml.safe_load(draft.to_yaml()), context={"base_dir": folder})
    except ValidationError as exc:
        if copy_into:
            placed.unlink()
        raise SpecError(str(spec_file), describe_all(exc.errors(), PipelineSpec)) from None
    return draft


def pipeline_name(data: Path) -> str | None:
    """A pipeline name from a data file's name (``Churn-2024.csv`` -> ``churn_2024``), or ``None`` when it
    gives none that starts with a letter."""
    stem = data.name.split(".")[0].lower()
    name = "".join(ch if ch.isascii() and ch.isalnum() else "_" for ch in stem).strip("_")
    while "__" in name:
        name = name.replace("__", "_")
    return name if name[:1].isalpha() else None


def _check_columns(frame: pd.DataFrame, target: str, id_column: str | None) -> None:
    if frame.empty:
        raise DataError("no rows: a draft infers types and ranges from the data")
    columns = ", ".join(map(str, frame.columns[:30])) + (", ..." if frame.shape[1] > 30 else "")
    for flag, column in (("--target", target), ("--id", id_column)):
        if column is not None and column not in frame.columns:
            raise DataError(f"{flag} {column!r} is not a column (columns: {columns})")
    if id_column is None:
        return
    if id_column == target:
        raise DataError(f"--id {id_column!r} is the target: the id column is never predicted")
    ids = frame[id_column]
    if ids.isna().any():
        raise DataError(f"id column {id_column!r} is empty in {int(ids.isna().sum())} rows")
    repeated = ids[ids.duplicated()]
    if not repeated.empty:
        raise DataError(
            f"id column {id_column!r} is not unique: {str(repeated.iloc[0])!r} and {repeated.nunique() - 1} "
            "other value(s) appear more than once; an id names one row (leave --id out if there is none)"
        )


def _task(values: pd.Series, target: str, given: TaskChoice | None) -> tuple[Task, str]:
    """The task, and why: a string or a few whole numbers are classes; other numbers are regressed."""
    present = values.dropna()
    classes = present.nunique()
    if classes < 2:
        raise DataError(f"target {target!r} has {classes} distinct value(s): there is nothing to learn")
    numeric = present.dtype.kind in "iuf"
    whole = numeric and bool((present == present.round()).all())
    if given == "regression" or (given is None and numeric and (not whole or classes > MAX_INFERRED_CLASSES)):
        if not numeric:
            raise DataError(f"target {target!r} holds strings: a regression needs numbers (--task classification)")
        return "regression", f"{classes} distinct numbers"
    if numeric and not whole:
        raise DataError(f"target {target!r} holds fractional numbers, not classes (--task regression)")
    if classes > MAX_CLASSES:
        raise DataError(f"target {target!r} has {classes} classes, more than {MAX_CLASSES}: is it a regression?")
    kind: Task = "binary" if classes == 2 else "multiclass"
    if given in ("binary", "multiclass") and given != kind:
        raise DataError(f"--task {given}: target {target!r} has {classes} classes")
    what = "whole numbers" if numeric else "booleans" if present.dtype.kind == "b" else "strings"
    return kind, f"{classes} distinct {what}"


def _column(values: pd.Series, role: str, task: Task) -> tuple[dict[str, Any], str | None]:
    """A column's schema entry, and why it is no feature (``None``: it is one, or it is the target or id)."""
    present = values.dropna()
    entry: dict[str, Any] = {"dtype": _dtype(values)}
    if role == "target" and task != "regression" and entry["dtype"] == "float":
        entry["dtype"] = "int"  # whole numbers read as floats (a CSV column with a gap)
    if present.size < len(values) and role != "target":
        entry["nullable"] = True
    if role == "id" or entry["dtype"] == "bool":
        return entry, None
    if entry["dtype"] in ("int", "float") and (role == "feature" or task == "regression"):
        if present.empty:
            return entry, "empty in this file"
        entry.update(_bounds(float(present.min()), float(present.max())))
        return entry, None
    if entry["dtype"] == "int":  # a classification's classes
        entry["isin"] = sorted(int(v) for v in present.unique())
        return entry, None
    if values.dtype.kind == "M":
        return entry, "a timestamp"
    categories = sorted({str(v) for v in present})
    few = min(MAX_CATEGORIES, max(2, len(values) // 2))  # more than half the rows distinct: names, not categories
    if role == "target" or len(categories) <= few:
        entry["isin"] = categories
        return entry, None
    return entry, f"{len(categories)} distinct strings"


def _dtype(values: pd.Series) -> str:
    """The spec's dtype by the kind of the column's dtype, pandas' extension dtypes (Int64, boolean) included."""
    kinds = {"b": "bool", "i": "int", "u": "int", "f": "float"}
    return kinds.get(values.dtype.kind, "str")  # strings, categories, timestamps, mixed objects: compared as text


def _bounds(low: float, high: float) -> dict[str, float]:
    span = (high - low) or abs(high) or 1.0
    lower = 0 if low >= 0 else _round_out(low - span, up=False)
    return {"ge": lower, "le": _round_out(high + span, up=True)}


def _round_out(value: float, up: bool) -> int | float:
    """``value`` rounded away from the observed range to two significant digits, as a reader writes a bound."""
    if value == 0:
        return 0
    step = 10.0 ** (math.floor(math.log10(abs(value))) - 1)
    rounded = float(f"{(math.ceil if up else math.floor)(value / step) * step:.12g}")
    return int(rounded) if rounded.is_integer() else rounded


def _model(task: Task, rows: int) -> tuple[dict[str, Any], str]:
    linear = rows < LINEAR_BELOW_ROWS
    estimator, params = ESTIMATORS["regression" if task == "regression" else "classification", linear]
    model: dict[str, Any] = {"estimator": estimator, **({"params": params} if params else {})}
    why = (
        f"linear: {rows} rows are few for a tree ensemble (the draft picks gradient boosting from "
        f"{LINEAR_BELOW_ROWS:,})"
        if linear
        else f"gradient boosting: {rows} rows are enough for it to learn interactions"
    )
    return model, why + "; any scikit-learn estimator with its params fits here"


def _gate(task: Task, target: pd.Series) -> tuple[dict[str, float], str]:
    """A floor above what a model that ignores the features scores: the gate is there from the first version."""
    if task == "binary":
        return {"roc_auc": 0.6}, "a floor above guessing (roc_auc 0.5): set what the use needs"
    if task == "regression":
        return {"r2": 0.1}, "a floor above predicting the mean (r2 0): set what the use needs"
    commonest = float(target.value_counts(normalize=True).iloc[0])
    floor = math.ceil((commonest + (1 - commonest) * 0.2) * 100) / 100
    return {"accuracy": floor}, (
        f"a floor above guessing (the commonest class alone scores {commonest:.2f}): set what the use needs"
    )


def _block(mapping: dict[str, Any], notes: dict[str, str], path: str, indent: int) -> list[str]:
    """Block lines of ``mapping``: a section, or a mapping holding mappings, opens a block; a mapping of plain
    values (a column, the params, the thresholds) stays on its key's line."""
    lines = []
    for key, value in mapping.items():
        at = f"{path}.{key}" if path else key
        nested = isinstance(value, dict) and (not path or any(isinstance(v, dict) for v in value.values()))
        if nested and not path and lines:
            lines.append("")
        line, note = f"{' ' * indent}{_flow(key)}:", notes.get(at)
        if not nested:
            line += f" {_flow(value)}"
            if note and len(line) + len(note) + 4 <= WIDTH:  # a short note ends its line
                line, note = f"{line}  # {note}", None
        lines += [*_comment(note, indent), line]
        if nested:
            lines += _block(value, notes, at, indent + 2)
    return lines


def _comment(text: str | None, indent: int) -> list[str]:
    if not text:
        return []
    return [f"{' ' * indent}# {line}" for line in textwrap.wrap(text, WIDTH - indent - 2)]


def _flow(value: Any) -> str:
    """``value`` as one line of YAML (a flow mapping or list, or a scalar quoted where YAML needs it)."""
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=math.inf)
    return text.removesuffix("\n").removesuffix("\n...")
