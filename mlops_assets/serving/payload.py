"""MLflow's scoring protocol, parsed into typed columns without building a DataFrame.

Accepted bodies (as ``mlflow models serve``): ``{"dataframe_split": {"columns": [...], "data": [[...]]}}``,
``{"dataframe_records": [{...}]}``, ``{"inputs": ...}`` / ``{"instances": ...}`` holding either a mapping of
column to values or a list of records, and, with ``Content-Type: text/csv``, a header row of column names
followed by one line per row (an empty field is null).

Columns a request sends that the model does not take are ignored, as MLflow ignores them; every column must
still hold one value per row.

Every form is bounded before the work of parsing it grows with what a client sends: at most ``MAX_COLUMNS``
column names, ``MAX_ROWS`` rows and ``MAX_CELLS`` cells (rows x names; for records, every name counts over every
record, as it becomes a column as long as the request). The body's bytes are bounded by the endpoint
(``max_body_bytes``); before a parser builds anything from them, the body's commas and what delimits its rows (a
JSON body's brackets, a CSV body's line ends) are counted, a scan far cheaper than parsing: a body holding more
than a request within the bounds can is refused unparsed, and the endpoint serves on.
"""

from __future__ import annotations

import csv
import io
import json
from itertools import chain
from typing import Any, NamedTuple

import numpy as np
import orjson

from mlops_assets.errors import PayloadError
from mlops_assets.model.features import StackedColumns
from mlops_assets.serving.row_checks import MISSING, Cause, SchemaRejection, Violation, shown

FORMATS = ("dataframe_split", "dataframe_records", "inputs", "instances")
_PLAIN = frozenset((float, int, str, type(None)))  # what one numpy conversion turns into float64 or refuses
_NUMBERS = frozenset((float, int))  # what converts to float64 as ``float()`` converts it
_BOOLEAN_WORDS = {"true": 1.0, "false": 0.0}


# What bounds a request's time and memory: the work of parsing grows with the values, names, lists and objects a
# body holds (distinct names cost JSON parsers the most), and the endpoint parses on its one event loop. A larger
# batch is split, or scored offline (batch.py).
MAX_COLUMNS = 10_000  # column names one request may send, the model's and those it ignores
MAX_ROWS = 100_000  # rows one request may send
MAX_CELLS = 250_000  # rows x column names one request may span
_AROUND = 16  # commas, lists and objects around a request's rows and columns, at most


def parse_payload(body: bytes, content_type: str | None = None) -> dict[str, list[Any]]:
    """Column name to list of values; raise ``PayloadError`` saying what is wrong with the body."""
    if not body:
        raise PayloadError("empty request body; send JSON with one of: " + ", ".join(FORMATS) + ", or text/csv")
    is_csv = content_type is not None and content_type.partition(";")[0].strip().lower() == "text/csv"
    _check_unparsed(body, is_csv)
    if is_csv:
        return _parse_csv(body)
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        document = _lenient_json(body)  # NaN / Infinity, which Python's json.dumps writes and orjson refuses
    if not isinstance(document, dict) or len(set(document) & set(FORMATS)) != 1:
        raise PayloadError("the JSON object must have exactly one of the keys: " + ", ".join(FORMATS))
    key = next(k for k in FORMATS if k in document)
    value = document[key]
    if key == "dataframe_split":
        if (
            not isinstance(value, dict)
            or not isinstance(value.get("columns"), list)
            or not isinstance(value.get("data"), list)
        ):
            raise PayloadError("dataframe_split needs 'columns' (a list) and 'data' (a list of rows)")
        _check_shape(len(value["columns"]), len(value["data"]), "dataframe_split")
        return _columns_of_rows(value["columns"], value["data"], "dataframe_split.data")
    if isinstance(value, dict) and key in ("inputs", "instances"):
        _check_shape(len(value), max((len(v) for v in value.values() if isinstance(v, list)), default=1), key)
        return {name: v if isinstance(v, list) else [v] for name, v in value.items()}
    if isinstance(value, list) and all(isinstance(r, dict) for r in value):
        _check_shape(1, len(value), key)
        return _columns_of_records(value, key)
    raise PayloadError(f"{key} must be a list of records" + (" or a mapping of columns" if key != FORMATS[1] else ""))


def _check_shape(columns: int, rows: int, where: str) -> None:
    """Refuse a request of more than ``MAX_COLUMNS`` names, ``MAX_ROWS`` rows or ``MAX_CELLS`` cells."""
    if columns > MAX_COLUMNS:
        raise PayloadError(
            f"{where} has {columns:,} columns: more than {MAX_COLUMNS:,}; send the columns the model takes"
        )
    if rows > MAX_ROWS:
        raise PayloadError(f"{where} has {rows:,} rows: more than {MAX_ROWS:,}; send fewer rows per request")
    if columns * rows > MAX_CELLS:
        raise PayloadError(
            f"{where} has {columns:,} columns x {rows:,} rows: more than {MAX_CELLS:,} cells; send the columns "
            "the model takes, and fewer rows per request"
        )


def _check_unparsed(body: bytes, is_csv: bool) -> None:
    """Refuse, from a count of its separators, a body that holds more than a request within the bounds has:
    a parser would otherwise build every value, list and object in it first (a million empty lists cost a JSON
    parser seconds). In any form such a request has fewer commas than cells plus names, and fewer lists and
    objects (CSV: lines) than rows plus names (one per row or column); one inside a value counts too, which
    matters only near the bounds. A body shorter than these counts cannot hold more."""
    max_commas, max_containers = MAX_CELLS + MAX_COLUMNS + _AROUND, MAX_ROWS + MAX_COLUMNS + _AROUND
    if len(body) <= min(max_commas, max_containers):
        return
    commas = body.count(b",")
    if is_csv:  # line ends: LF, CR or CRLF
        containers = body.count(b"\n") + body.count(b"\r") - body.count(b"\r\n")
    else:
        containers = body.count(b"[") + body.count(b"{")
    if commas > max_commas or containers > max_containers:
        what = "lines" if is_csv else "lists and objects"
        raise PayloadError(
            f"the body holds {commas:,} commas and {containers:,} {what}: more than a request of at most "
            f"{MAX_ROWS:,} rows, {MAX_COLUMNS:,} columns and {MAX_CELLS:,} cells has; send the columns the model "
            "takes, and fewer rows per request"
        )


def _columns_of_records(records: list[dict], where: str) -> dict[str, list[Any]]:
    """Records as columns in one pass (a record without a name gets None there). Every new name costs a
    column as long as the request, so names x records is bounded as it grows: a body of many records that each
    bring a name of their own would otherwise hold the event loop for minutes."""
    columns: dict[str, list[Any]] = {}
    for i, record in enumerate(records):
        for name, item in record.items():
            column = columns.get(name)
            if column is None:
                _check_shape(len(columns) + 1, len(records), where)
                column = columns[name] = [None] * len(records)
            column[i] = item
    return columns


def _columns_of_rows(names: list, rows: list, where: str) -> dict[str, list[Any]]:
    if any(not isinstance(row, list) or len(row) != len(names) for row in rows):
        raise PayloadError(f"every row of {where} must have {len(names)} values, one per column")
    try:
        if not rows:
            return {name: [] for name in names}
        return {name: list(values) for name, values in zip(names, zip(*rows, strict=True), strict=True)}
    except TypeError:  # a name that is a list or an object
        raise PayloadError("dataframe_split.columns must be a list of column names (strings)") from None


def _parse_csv(body: bytes) -> dict[str, list[Any]]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"a text/csv body must be UTF-8: {exc}") from None
    try:  # its lines and fields are bounded already (_check_unparsed)
        lines = [
            line for line in csv.reader(io.StringIO(text, newline=""), strict=True) if line
        ]  # blank lines hold no row
    except csv.Error as exc:
        raise PayloadError(f"request body is not valid CSV: {exc}") from None
    if not lines:
        raise PayloadError("the CSV body has no header row; send the column names, then one line per row")
    _check_shape(len(lines[0]), len(lines) - 1, "the CSV body")
    header, rows = lines[0], [[value or None for value in line] for line in lines[1:]]
    return _columns_of_rows(header, rows, "the CSV body")


def _lenient_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise PayloadError(f"request body is not valid JSON: {exc}") from None


class Coerced(NamedTuple):
    """A request's columns typed for the model."""

    columns: StackedColumns  # per required column: a float64 array (numbers) or a list of ``str``/``None``;
    # the numeric ones are the rows of ``numeric``, which the model's transformer takes whole
    n_rows: int
    numeric: np.ndarray  # the numeric columns stacked in the order of ``dtypes``; ``columns`` holds its rows
    violations: list[Violation]  # values that are not of their column's type; they are null in ``columns``


def coerce_columns(columns: dict[str, list[Any]], dtypes: dict[str, str]) -> Coerced:
    """Typed columns for ``dtypes`` (spec dtype per required column) and the row count.

    Numbers become float64 (``None`` is NaN, filled by the transformer): ints, floats and strings that hold
    one; ``true``/``false`` only in a ``bool`` column. Categories become strings, so the logged traffic has
    one type per column whatever the client sent. A value that cannot take its column's type is reported in
    ``violations`` rather than raised, so that ``deployment.on_invalid: flag`` can still score its row;
    what no row causes (no rows, a missing column, columns of different lengths) raises ``PayloadError``
    (a missing column: ``SchemaRejection``, naming each one).
    """
    if not any(columns.values()):
        raise PayloadError("the request has no rows; send at least one row of " + ", ".join(dtypes))
    if not dtypes.keys() <= columns.keys():
        missing = [name for name in dtypes if name not in columns]
        message = f"missing column(s) {missing}; the model needs {list(dtypes)}"
        raise SchemaRejection(message, [Cause(name, MISSING) for name in missing])
    n_rows = len(columns[next(iter(dtypes))])
    uneven = next((name for name, values in columns.items() if len(values) != n_rows), None)
    if uneven is not None:
        raise PayloadError(
            f"column {shown(uneven)} has {len(columns[uneven])} value(s) but column {next(iter(dtypes))!r} has "
            f"{n_rows}: every column needs one value per row"
        )
    numeric = [name for name, dtype in dtypes.items() if dtype != "str"]
    violations: list[Violation] = []
    matrix = _number_matrix([columns[name] for name in numeric], n_rows)
    if matrix is None:  # a value that needs a look of its own: rare, so slower
        matrix = np.empty((len(numeric), n_rows))
        for i, name in enumerate(numeric):
            for row, value in enumerate(columns[name]):
                number = _number(value, dtypes[name])
                if number is None:
                    violations.append(Violation(row, name, f"dtype {dtypes[name]}", value))
                matrix[i, row] = np.nan if number is None else number
    rows = dict(zip(numeric, matrix, strict=True))
    typed = {
        name: rows[name] if dtype != "str" else _strings(name, columns[name], violations)
        for name, dtype in dtypes.items()
    }
    return Coerced(StackedColumns(typed, matrix, numeric), n_rows, matrix, violations)


def _number_matrix(values: list[list[Any]], n_rows: int) -> np.ndarray | None:
    """All numeric columns as one float64 matrix in one conversion, or ``None`` if any value needs a look."""
    kinds = set(map(type, chain.from_iterable(values)))
    if not kinds <= _PLAIN:  # a bool, a list, an object
        return None
    try:
        if kinds <= _NUMBERS:  # the usual request: read straight into the matrix, no nested lists to walk
            return np.fromiter(chain.from_iterable(values), np.float64, len(values) * n_rows).reshape(-1, n_rows)
        return np.array(values, dtype=np.float64).reshape(len(values), n_rows)
    except (TypeError, ValueError, OverflowError):
        return None


def _number(value: Any, dtype: str) -> float | None:
    """``value`` as a float for a column of ``dtype`` (NaN for null), or ``None`` if it is not one."""
    if value is None:
        return np.nan
    if isinstance(value, bool):
        return float(value) if dtype == "bool" else None
    if isinstance(value, str) and dtype == "bool" and value.strip().lower() in _BOOLEAN_WORDS:
        return _BOOLEAN_WORDS[value.strip().lower()]
    if isinstance(value, int | float | str):
        try:
            return float(value)
        except (ValueError, OverflowError):
            return None
    return None


def _strings(name: str, values: list[Any], violations: list[Violation]) -> list[str | None]:
    if set(map(type, values)) <= {str, type(None)}:
        return values
    typed: list[str | None] = []
    for row, value in enumerate(values):
        if value is None or isinstance(value, str):
            typed.append(value)
        elif isinstance(value, float) and np.isnan(value):
            typed.append(None)
        elif isinstance(value, int | float):  # a category sent as a number: 1 is "1"; bools are ints
            typed.append(str(value))
        else:
            typed.append(None)
            violations.append(Violation(row, name, "dtype str", value))
    return typed
