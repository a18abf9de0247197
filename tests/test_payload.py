import json

import numpy as np
import pytest

from mlops_assets.errors import PayloadError
from mlops_assets.payload import coerce_columns, parse_payload

DTYPES = {"x": "float", "k": "str"}


@pytest.mark.parametrize(
    "body",
    [
        {"dataframe_split": {"columns": ["x", "k"], "data": [[1.5, "a"], [2, 3]]}},
        {"dataframe_records": [{"x": 1.5, "k": "a"}, {"x": 2, "k": 3}]},
        {"inputs": {"x": [1.5, 2], "k": ["a", 3]}},
        {"instances": [{"x": 1.5, "k": "a"}, {"x": 2, "k": 3}]},
    ],
)
def test_every_mlflow_format_gives_the_same_columns(body):
    columns, n_rows = coerce_columns(parse_payload(json.dumps(body).encode()), DTYPES)
    assert n_rows == 2
    assert columns["x"].dtype == np.float64 and columns["x"].tolist() == [1.5, 2.0]
    assert columns["k"] == ["a", "3"]


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
    ],
)
def test_malformed_bodies_say_what_is_wrong(body, message):
    with pytest.raises(PayloadError, match=message):
        parse_payload(body)


def test_missing_columns_and_wrong_types_name_the_column():
    with pytest.raises(PayloadError, match=r"missing column\(s\) \['k'\]"):
        coerce_columns({"x": [1.0]}, DTYPES)
    with pytest.raises(PayloadError, match="column 'x' must hold numbers; got 'abc'"):
        coerce_columns({"x": ["abc"], "k": ["a"]}, DTYPES)
    with pytest.raises(PayloadError, match="no rows"):
        coerce_columns({"x": [], "k": []}, DTYPES)
    with pytest.raises(PayloadError, match="no rows"):
        coerce_columns(parse_payload(b'{"dataframe_split": {"columns": ["x", "k"], "data": []}}'), DTYPES)


@pytest.mark.parametrize(
    ("value", "shown"),
    [([1.0, 2.0], "[1.0, 2.0]"), (10**400, "1" + "0" * 76 + "..."), ({"a": 1}, "{'a': 1}"), ("1,5", "'1,5'")],
)
def test_a_value_that_is_not_a_number_is_named(value, shown):
    with pytest.raises(PayloadError) as error:
        coerce_columns({"x": [1.0, value], "k": ["a", "b"]}, DTYPES)
    assert str(error.value) == f"column 'x' must hold numbers; got {shown}"


def test_nulls_nan_and_numeric_strings_are_numbers():
    body = b'{"dataframe_split": {"columns": ["x", "k"], "data": [[null, null], [NaN, "a"], ["2.5", 1]]}}'
    columns, n_rows = coerce_columns(parse_payload(body), DTYPES)
    assert n_rows == 3 and np.isnan(columns["x"][:2]).all() and columns["x"][2] == 2.5
    assert columns["k"] == [None, "a", "1"] and list(columns) == ["x", "k"]
