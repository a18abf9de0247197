"""Property-based tests of the payload parser: whatever arrives, the endpoint answers with a PayloadError
(a 400) or typed columns, and a valid body comes back as it was sent, in every format."""

import csv
import io
import json
import math
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mlops_assets.errors import PayloadError
from mlops_assets.serving import payload
from mlops_assets.serving.payload import FORMATS, coerce_columns, parse_payload
from mlops_assets.serving.row_checks import ColumnRules, RowChecks

DTYPES = {"x": "float", "n": "int", "flag": "bool", "k": "str"}
RULES = {
    "x": ColumnRules("float", nullable=False, ge=-1e6, le=1e6),
    "n": ColumnRules("int", isin=(0, 1, 2)),
    "flag": ColumnRules("bool"),
    "k": ColumnRules("str", nullable=False, isin=("a", "b"), str_matches="^[ab]$"),
}
CHECKS = RowChecks(DTYPES, RULES)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
)
names = st.sampled_from([*DTYPES, "patient_id", "other"]) | st.text(max_size=8)
near_valid = st.one_of(  # the shapes the parser branches on, filled with anything
    st.builds(lambda key, v: {key: v}, st.sampled_from(FORMATS), json_values),
    st.builds(
        lambda columns, data: {"dataframe_split": {"columns": columns, "data": data}},
        st.lists(names, max_size=5),
        st.lists(st.lists(json_values, max_size=5), max_size=4),
    ),
    st.builds(
        lambda records: {"dataframe_records": records}, st.lists(st.dictionaries(names, json_values), max_size=4)
    ),
    st.builds(lambda mapping: {"inputs": mapping}, st.dictionaries(names, st.lists(json_values, max_size=4) | scalars)),
    st.builds(  # every column the model needs, holding anything: reaches the typing and the checks
        lambda records: {"dataframe_records": records},
        st.lists(
            st.fixed_dictionaries(dict.fromkeys(DTYPES, json_values), optional={"other": json_values}), max_size=4
        ),
    ),
)


def score_or_refuse(body: bytes, content_type: str | None = None) -> None:
    """What the endpoint does with a body, up to the model: parse, type, check."""
    try:
        coerced = coerce_columns(parse_payload(body, content_type), DTYPES)
    except PayloadError:
        event("refused")
        return
    event("typed" + (" with type violations" if coerced.violations else ""))
    report = CHECKS.check(coerced.columns, coerced.numeric, coerced.n_rows, coerced.violations)
    assert coerced.numeric.shape == (3, coerced.n_rows) and coerced.n_rows > 0
    assert report is None or len(report.reasons) == coerced.n_rows


@SETTINGS
@given(st.binary(max_size=200), st.sampled_from([None, "application/json", "text/csv"]))
def test_any_bytes_are_scored_or_refused_with_a_payload_error(body, content_type):
    score_or_refuse(body, content_type)


@SETTINGS
@given(json_values | near_valid)
def test_any_json_is_scored_or_refused_with_a_payload_error(document):
    score_or_refuse(json.dumps(document).encode())  # NaN and Infinity included, as Python writes them


@SETTINGS
@given(st.lists(st.lists(st.text(max_size=6), min_size=1, max_size=5), max_size=5))
def test_any_csv_is_scored_or_refused_with_a_payload_error(lines):
    text = io.StringIO()
    csv.writer(text).writerows([list(DTYPES), *lines])
    score_or_refuse(text.getvalue().encode(), "text/csv")


rows = st.lists(
    st.fixed_dictionaries(
        {
            "x": st.floats(-1e6, 1e6, allow_nan=False),
            "n": st.sampled_from([0, 1, 2]) | st.none(),
            "flag": st.booleans(),
            "k": st.sampled_from(["a", "b"]),
        }
    ),
    min_size=1,
    max_size=6,
)


def encodings(records: list[dict]) -> list[tuple[bytes, str | None]]:
    """The same rows in MLflow's four JSON formats and as CSV."""
    columns = list(DTYPES)
    data = [[r[c] for c in columns] for r in records]
    text = io.StringIO()
    csv.writer(text).writerows([columns, *data])
    documents = [
        {"dataframe_split": {"columns": columns, "data": data}},
        {"dataframe_records": records},
        {"inputs": {c: [r[c] for r in records] for c in columns}},
        {"instances": records},
    ]
    return [(json.dumps(d).encode(), None) for d in documents] + [(text.getvalue().encode(), "text/csv")]


@SETTINGS
@given(rows)
def test_a_valid_body_comes_back_as_it_was_sent_in_every_format(records):
    for body, content_type in encodings(records):
        coerced = coerce_columns(parse_payload(body, content_type), DTYPES)
        assert coerced.n_rows == len(records) and not coerced.violations
        assert CHECKS.check(coerced.columns, coerced.numeric, coerced.n_rows) is None
        assert coerced.columns["x"].tolist() == [r["x"] for r in records]
        expected_n = [math.nan if r["n"] is None else r["n"] for r in records]
        np.testing.assert_array_equal(coerced.columns["n"], expected_n)
        assert coerced.columns["flag"].tolist() == [float(r["flag"]) for r in records]
        assert coerced.columns["k"] == [r["k"] for r in records]


SMALL_BOUNDS = {"MAX_COLUMNS": 3, "MAX_ROWS": 4, "MAX_CELLS": 8}  # small enough for the shapes drawn to pass them


def grid_encodings(columns: int, rows: int) -> list[tuple[bytes, str | None]]:
    """``rows`` rows of ``columns`` columns in MLflow's JSON formats (both shapes of inputs and instances) and
    as CSV."""
    names = [f"c{i}" for i in range(columns)]
    records = [{name: float(row) for name in names} for row in range(rows)]
    mapping = {name: [float(row) for row in range(rows)] for name in names}
    text = io.StringIO()
    csv.writer(text).writerows([names, *[list(r.values()) for r in records]])
    documents = [
        {"dataframe_split": {"columns": names, "data": [list(r.values()) for r in records]}},
        {"dataframe_records": records},
        *({key: shape} for key in ("inputs", "instances") for shape in (records, mapping)),
    ]
    return [(json.dumps(d).encode(), None) for d in documents] + [(text.getvalue().encode(), "text/csv")]


@SETTINGS
@given(json_values | near_valid)
def test_whatever_arrives_is_refused_or_parsed_within_the_bounds(document):
    with mock.patch.multiple(payload, **SMALL_BOUNDS):
        try:
            parsed = parse_payload(json.dumps(document).encode())
        except PayloadError:
            event("refused")
            return
    rows = max((len(values) for values in parsed.values()), default=0)
    event(f"parsed: {len(parsed)} column(s) of up to {rows} row(s)")
    assert len(parsed) <= 3 and rows <= 4 and len(parsed) * rows <= 8


@SETTINGS
@given(st.integers(1, 6), st.integers(1, 6))
def test_a_request_is_parsed_in_every_format_exactly_when_it_is_within_the_bounds(columns, rows):
    within = columns <= 3 and rows <= 4 and columns * rows <= 8
    event("within the bounds" if within else "past them")
    with mock.patch.multiple(payload, **SMALL_BOUNDS):
        for body, content_type in grid_encodings(columns, rows):
            if within:
                parsed = parse_payload(body, content_type)
                assert len(parsed) == columns and all(len(values) == rows for values in parsed.values())
            else:
                with pytest.raises(PayloadError, match="more than"):
                    parse_payload(body, content_type)
