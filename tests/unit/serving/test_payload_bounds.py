"""Every form of request is bounded in columns, rows and cells before the work of parsing it grows with what it
holds: the bodies of issue 19 (a million ignored columns) are refused at once, in every form."""

import time

import orjson
import pytest

from mlops_assets.errors import PayloadError
from mlops_assets.serving import payload
from mlops_assets.serving.payload import MAX_CELLS, MAX_COLUMNS, MAX_ROWS, parse_payload


def split(columns: int, rows: int) -> bytes:
    names = [f"c{i}" for i in range(columns)]
    return orjson.dumps({"dataframe_split": {"columns": names, "data": [[0] * columns] * rows}})


def records(columns: int, rows: int, key: str = "dataframe_records") -> bytes:
    return orjson.dumps({key: [{f"c{i}": 0 for i in range(columns)}] * rows})


def mapping(columns: int, rows: int, key: str = "inputs") -> bytes:
    return orjson.dumps({key: {f"c{i}": [0] * rows for i in range(columns)}})


def csv(columns: int, rows: int) -> bytes:
    return "\n".join([",".join(f"c{i}" for i in range(columns)), *[",".join("0" * columns)] * rows]).encode()


FORMS = {
    "dataframe_split": (split, None),
    "dataframe_records": (records, None),
    "instances": (lambda c, r: records(c, r, "instances"), None),
    "inputs": (mapping, None),
    "instances mapping": (lambda c, r: mapping(c, r, "instances"), None),
    "csv": (csv, "text/csv"),
}


@pytest.mark.parametrize("form", FORMS)
def test_a_million_ignored_columns_are_refused_at_once_in_every_form(form):
    build, content_type = FORMS[form]
    body = build(1_000_000, 1)
    started = time.perf_counter()
    with pytest.raises(PayloadError, match="send the columns the model takes"):
        parse_payload(body, content_type)
    assert time.perf_counter() - started < 0.5  # unbounded, a 12 MB body took 4-15 s


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(
    ("columns", "rows", "refused"),
    [
        (MAX_COLUMNS, MAX_CELLS // MAX_COLUMNS, None),
        (MAX_COLUMNS + 1, 1, "columns: more than"),
        (1, MAX_ROWS + 1, "rows: more than|more than a request of at most"),
        (5, MAX_CELLS // 5 + 1, "more than"),
    ],
)
def test_every_form_is_held_to_the_columns_rows_and_cells_bounds(form, columns, rows, refused):
    build, content_type = FORMS[form]
    body = build(columns, rows)
    if refused is None:
        parsed = parse_payload(body, content_type)
        assert len(parsed) == columns and all(len(values) == rows for values in parsed.values())
    else:
        with pytest.raises(PayloadError, match=refused):
            parse_payload(body, content_type)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"inputs": {"x": [' + b"[]," * 200_000 + b"0]}}", None),  # a JSON parser builds every empty list
        (b'{"inputs": {"x": [' + b"0," * 300_000 + b"0]}}", None),
        (b"x\n" + b"\n" * 200_000, "text/csv"),  # blank lines cost a reader as rows do
        (b"x\r" + b"\r" * 200_000, "text/csv"),
    ],
)
def test_a_body_holding_more_than_a_request_within_the_bounds_is_refused_unparsed(body, content_type, monkeypatch):
    def never(*args):
        raise AssertionError("parsed")

    monkeypatch.setattr(payload.orjson, "loads", never)
    monkeypatch.setattr(payload.csv, "reader", never)
    with pytest.raises(PayloadError, match="more than a request of at most"):
        parse_payload(body, content_type)
