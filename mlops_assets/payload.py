"""MLflow's scoring protocol, parsed into typed columns without building a DataFrame.

Accepted bodies (as ``mlflow models serve``): ``{"dataframe_split": {"columns": [...], "data": [[...]]}}``,
``{"dataframe_records": [{...}]}``, and ``{"inputs": ...}`` / ``{"instances": ...}`` holding either a
mapping of column to values or a list of records.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from mlops_assets.errors import PayloadError

FORMATS = ("dataframe_split", "dataframe_records", "inputs", "instances")


def parse_payload(body: bytes) -> dict[str, list[Any]]:
    """Column name to list of values; raise ``PayloadError`` saying what is wrong with the body."""
    if not body:
        raise PayloadError("empty request body; send JSON with one of: " + ", ".join(FORMATS))
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(f"request body is not valid JSON: {exc}") from None
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
        return {name: [row[i] for row in rows] for i, name in enumerate(columns)}
    if isinstance(value, dict) and key in ("inputs", "instances"):
        return {name: v if isinstance(v, list) else [v] for name, v in value.items()}
    if isinstance(value, list) and all(isinstance(r, dict) for r in value):
        names = list(dict.fromkeys(name for record in value for name in record))
        return {name: [record.get(name) for record in value] for name in names}
    raise PayloadError(f"{key} must be a list of records" + (" or a mapping of columns" if key != FORMATS[1] else ""))


def coerce_columns(columns: dict[str, list[Any]], dtypes: dict[str, str]) -> tuple[dict[str, Any], int]:
    """Typed columns for ``dtypes`` (spec dtype per required column) and the row count.

    Numbers become float64 arrays (``None`` is NaN, filled by the transformer); categories become
    strings, so the logged traffic has one type per column whatever the client sent.
    """
    missing = [name for name in dtypes if name not in columns]
    if missing:
        raise PayloadError(f"missing column(s) {missing}; the model needs {list(dtypes)}")
    lengths = {len(columns[name]) for name in dtypes}
    if len(lengths) != 1:
        raise PayloadError("all columns must have the same number of values")
    n_rows = lengths.pop()
    if n_rows == 0:
        raise PayloadError("the request has no rows")
    typed: dict[str, Any] = {}
    for name, dtype in dtypes.items():
        values = columns[name]
        if dtype == "str":
            typed[name] = [None if v is None else str(v) for v in values]
            continue
        try:
            typed[name] = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        except (TypeError, ValueError):
            bad = next(v for v in values if not isinstance(v, int | float | bool) and v is not None)
            raise PayloadError(f"column {name!r} must hold numbers; got {bad!r}") from None
    return typed, n_rows
