"""MLflow's scoring protocol, parsed into typed columns without building a DataFrame.

Accepted bodies (as ``mlflow models serve``): ``{"dataframe_split": {"columns": [...], "data": [[...]]}}``,
``{"dataframe_records": [{...}]}``, and ``{"inputs": ...}`` / ``{"instances": ...}`` holding either a
mapping of column to values or a list of records.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import orjson

from mlops_assets.errors import PayloadError

FORMATS = ("dataframe_split", "dataframe_records", "inputs", "instances")


def parse_payload(body: bytes) -> dict[str, list[Any]]:
    """Column name to list of values; raise ``PayloadError`` saying what is wrong with the body."""
    if not body:
        raise PayloadError("empty request body; send JSON with one of: " + ", ".join(FORMATS))
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
        columns, rows = value["columns"], value["data"]
        if any(not isinstance(row, list) or len(row) != len(columns) for row in rows):
            raise PayloadError(f"every row of dataframe_split.data must have {len(columns)} values")
        try:
            if not rows:
                return {name: [] for name in columns}
            return {name: list(values) for name, values in zip(columns, zip(*rows, strict=True), strict=True)}
        except TypeError:  # a name that is a list or an object
            raise PayloadError("dataframe_split.columns must be a list of column names (strings)") from None
    if isinstance(value, dict) and key in ("inputs", "instances"):
        return {name: v if isinstance(v, list) else [v] for name, v in value.items()}
    if isinstance(value, list) and all(isinstance(r, dict) for r in value):
        names = list(dict.fromkeys(name for record in value for name in record))
        return {name: [record.get(name) for record in value] for name in names}
    raise PayloadError(f"{key} must be a list of records" + (" or a mapping of columns" if key != FORMATS[1] else ""))


def _lenient_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise PayloadError(f"request body is not valid JSON: {exc}") from None


def coerce_columns(columns: dict[str, list[Any]], dtypes: dict[str, str]) -> tuple[dict[str, Any], int]:
    """Typed columns for ``dtypes`` (spec dtype per required column) and the row count.

    Numbers become float64 arrays (``None`` is NaN, filled by the transformer); categories become
    strings, so the logged traffic has one type per column whatever the client sent.
    """
    if not dtypes.keys() <= columns.keys():
        missing = [name for name in dtypes if name not in columns]
        raise PayloadError(f"missing column(s) {missing}; the model needs {list(dtypes)}")
    lengths = {len(columns[name]) for name in dtypes}
    if len(lengths) != 1:
        raise PayloadError("all columns must have the same number of values")
    n_rows = lengths.pop()
    if n_rows == 0:
        raise PayloadError("the request has no rows")
    numeric = [name for name, dtype in dtypes.items() if dtype != "str"]
    rows: dict[str, np.ndarray] = {}
    if numeric:
        # One conversion for all numeric columns (None becomes NaN); each column is a row of the matrix.
        try:
            matrix = np.array([columns[name] for name in numeric], dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            matrix = None
        if matrix is None or matrix.ndim != 2:
            bad = next(((n, v) for n in numeric for v in columns[n] if not _is_number(v)), (numeric[0], "?"))
            shown = repr(bad[1]) if len(repr(bad[1])) <= 80 else repr(bad[1])[:77] + "..."
            raise PayloadError(f"column {bad[0]!r} must hold numbers; got {shown}")
        rows = dict(zip(numeric, matrix, strict=True))
    typed = {
        name: rows[name] if dtype != "str" else [None if v is None else str(v) for v in columns[name]]
        for name, dtype in dtypes.items()
    }
    return typed, n_rows


def _is_number(value: Any) -> bool:
    """Null, a number or a string holding one: what a float64 column accepts."""
    try:
        return value is None or isinstance(float(value), float)
    except (TypeError, ValueError, OverflowError):
        return False
