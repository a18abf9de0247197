import json

import numpy as np
import orjson
import pytest

from mlops_assets.errors import PayloadError
from mlops_assets.serving.payload import MAX_CELLS, coerce_columns, parse_payload
from mlops_assets.serving.row_checks import Violation

DTYPES = {"x": "float", "k": "str"}


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (json.dumps({"dataframe_split": {"columns": ["x", "k"], "data": [[1.5, "a"], [2, 3]]}}), None),
        (json.dumps({"dataframe_records": [{"x": 1.5, "k": "a"}, {"x": 2, "k": 3}]}), "application/json"),
        (json.dumps({"inputs": {"x": [1.5, 2], "k": ["a", 3]}}), None),
        (json.dumps({"instances": [{"x": 1.5, "k": "a"}, {"x": 2, "k": 3}]}), None),
        ("x,k\r\n1.5,a\r\n2,3\r\n", "text/csv"),
        ("\ufeffk,x\n\na,1.5\n3,2\n", "text/csv; charset=utf-8"),  # a byte-order mark, a blank line
    ],
)
def test_every_mlflow_format_gives_the_same_columns(body, content_type):
    coerced = coerce_columns(parse_payload(body.encode(), content_type), DTYPES)
    assert coerced.n_rows == 2 and not coerced.violations
    assert coerced.columns["x"].dtype == np.float64 and coerced.columns["x"].tolist() == [1.5, 2.0]
    assert coerced.columns["k"] == ["a", "3"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty request body"),
        (b"{not json", "not valid JSON"),
        (b'{"rows": []}', "exactly one of the keys"),
        (b'{"dataframe_split": {"columns": ["x"]}}', "needs 'columns'"),
        (b'{"dataframe_split": {"columns": ["x", "k"], "data": [[1]]}}', "must have 2 values"),
        (b'{"dataframe_split": {"columns": [["x"]], "data": [[1]]}}', "must be a list of column names"),
        (b'{"inputs": [1, 2]}', "inputs must be a list of records or a mapping of columns"),
        (b"\xff", "not valid JSON"),
        (b"[" * 100_000, "not valid JSON"),  # nested past any recursion limit
    ],
)
def test_malformed_bodies_say_what_is_wrong(body, message):
    with pytest.raises(PayloadError, match=message):
        parse_payload(body)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"x,k\n1.5\n", "every row of the CSV body must have 2 values"),
        (b"x,k\n\xff,a\n", "a text/csv body must be UTF-8"),
        (b"\n\n", "no header row"),
        (b'x,k\n"1,a\n', "not valid CSV"),
    ],
)
def test_malformed_csv_says_what_is_wrong(body, message):
    with pytest.raises(PayloadError, match=message):
        parse_payload(body, "text/csv")


def test_an_empty_field_of_csv_is_null_and_numbers_stay_text_until_coerced():
    assert parse_payload(b"x,k\n,a\n2.5,\n", "text/csv") == {"x": [None, "2.5"], "k": ["a", None]}


@pytest.mark.parametrize(
    "body",
    [
        b'{"dataframe_split": {"columns": [], "data": []}}',
        b'{"dataframe_split": {"columns": ["x", "k"], "data": []}}',
        b'{"dataframe_records": []}',
        b'{"inputs": {}}',
        b'{"inputs": {"x": [], "k": []}}',
    ],
)
def test_a_request_without_rows_is_told_so(body):
    with pytest.raises(PayloadError, match="the request has no rows"):
        coerce_columns(parse_payload(body), DTYPES)
    with pytest.raises(PayloadError, match="the request has no rows"):
        coerce_columns(parse_payload(b"x,k\n", "text/csv"), DTYPES)


def test_a_missing_column_is_named():
    with pytest.raises(PayloadError, match=r"missing column\(s\) \['k'\]"):
        coerce_columns({"x": [1.0]}, DTYPES)


def test_a_column_with_another_number_of_values_is_refused_even_one_the_model_ignores():
    """The row id of one row beside features of two rows: the log could never write the request."""
    body = {"inputs": {"patient_id": ["P0001"], "x": [1.0, 2.0], "k": ["a", "b"]}}
    with pytest.raises(PayloadError, match=r"column 'patient_id' has 1 value\(s\) but column 'x' has 2"):
        coerce_columns(parse_payload(json.dumps(body).encode()), DTYPES)
    with pytest.raises(PayloadError, match=r"column 'k' has 1 value\(s\) but column 'x' has 2"):
        coerce_columns({"x": [1.0, 2.0], "k": ["a"]}, DTYPES)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ([1.0, 2.0], "[1.0, 2.0]"),
        (10**400, "1" + "0" * 76 + "..."),
        ({"a": 1}, "{'a': 1}"),
        ("1,5", "'1,5'"),
        (True, "True"),
        ("true", "'true'"),
    ],
)
def test_a_value_that_is_not_a_number_is_reported_with_its_row_and_becomes_null(value, shown):
    coerced = coerce_columns({"x": [1.0, value], "k": ["a", "b"]}, DTYPES)
    assert coerced.violations == [Violation(1, "x", "dtype float", value)]
    assert str(coerced.violations[0]) == f"row 1, column 'x': dtype float got {shown}"
    assert coerced.columns["x"][0] == 1.0 and np.isnan(coerced.columns["x"][1])


def test_a_category_may_be_sent_as_a_number_but_not_as_a_list():
    coerced = coerce_columns({"x": [1.0, 2.0, 3.0], "k": [1, ["a"], float("nan")]}, DTYPES)
    assert coerced.columns["k"] == ["1", None, None]
    assert coerced.violations == [Violation(1, "k", "dtype str", ["a"])]


def test_booleans_are_numbers_only_in_a_bool_column():
    dtypes = {"flag": "bool", "n": "int"}
    coerced = coerce_columns({"flag": [True, "false", 0, None], "n": [1, 2, 3, True]}, dtypes)
    assert coerced.columns["flag"][:3].tolist() == [1.0, 0.0, 0.0] and np.isnan(coerced.columns["flag"][3])
    assert coerced.violations == [Violation(3, "n", "dtype int", True)]


def test_nulls_nan_and_numeric_strings_are_numbers():
    body = b'{"dataframe_split": {"columns": ["x", "k"], "data": [[null, null], [NaN, "a"], ["2.5", 1]]}}'
    coerced = coerce_columns(parse_payload(body), DTYPES)
    assert coerced.n_rows == 3 and np.isnan(coerced.columns["x"][:2]).all() and coerced.columns["x"][2] == 2.5
    assert coerced.columns["k"] == [None, "a", "1"] and list(coerced.columns) == ["x", "k"]
    assert coerced.numeric.shape == (1, 3) and not coerced.violations


def test_records_that_each_bring_a_name_of_their_own_are_refused_before_they_cost_minutes():
    body = orjson.dumps({"dataframe_records": [{f"k{i}": 0} for i in range(8_000)]})
    with pytest.raises(PayloadError, match=f"more than {MAX_CELLS:,} cells"):
        parse_payload(body)
    assert parse_payload(orjson.dumps({"dataframe_records": [{"a": 1}, {"b": 2}]})) == {"a": [1, None], "b": [None, 2]}
