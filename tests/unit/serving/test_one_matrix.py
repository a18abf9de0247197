"""One feature matrix per request: the parsed body's numeric columns reach the model as the matrix the payload
parser built (``StackedColumns``), never split and stacked again. What a client gets and what the logs keep must
be exactly what the per-column path gave: the same bytes, status and errors, the same logged columns, reasons,
predictions, scores and skew-sample features, over valid rows, invalid rows in both ``on_invalid`` modes, every
body format, and requests past the compiled path's row limit."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest

from mlops_assets.model.features import FeatureTransformer, StackedColumns, _Step
from mlops_assets.serving.app import create_app
from mlops_assets.serving.loading import LoadedModel, with_fast_path
from mlops_assets.serving.payload import coerce_columns, parse_payload
from mlops_assets.serving.row_checks import column_rules
from mlops_assets.serving.state import ServingState
from tests.unit.serving.one_matrix_models import ESTIMATORS, fit, frame

COLUMNS = ["a", "b", "k", "color", "f", "id"]
JSON = "application/json"


def requests(data) -> list[tuple[bytes, str]]:
    """Valid single rows and batches in every format, rows that break each kind of rule, bodies refused whole."""
    records = data[COLUMNS].head(6).to_dict("records")

    def split(rows: list[dict], columns: list[str] = COLUMNS) -> bytes:
        body = {"dataframe_split": {"columns": columns, "data": [[row[c] for c in columns] for row in rows]}}
        return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)

    bad = [
        dict(records[0], a=71.2),  # le 10
        dict(records[1], b=None),  # not nullable
        dict(records[2], color="purple"),  # isin
        dict(records[3], k=2.5),  # dtype int
        dict(records[4], a="x"),  # not a number
        dict(records[5], f="true"),  # a boolean word
        dict(records[0], f=3),  # dtype bool
        dict(records[1], k=True),  # a boolean in an int column
        dict(records[2], color=7),  # a category sent as a number
        dict(records[3], a=float("inf")),
        dict(records[4], a=None),  # nullable: filled with the training mean
        dict(records[5], color=None),
        dict(records[0], a="1.5"),  # a number sent as a string
        dict(records[1], extra=1),  # a column the model does not take
    ]
    many = data[COLUMNS].head(150).to_dict("records")  # past the compiled path's 100 rows: the Python model
    return [
        *((split([row]), JSON) for row in records),
        (split(records), JSON),
        (split(records, ["f", "color", "k", "b", "a", "id"]), JSON),  # columns in another order
        (orjson.dumps({"dataframe_records": records}, option=orjson.OPT_SERIALIZE_NUMPY), JSON),
        *((orjson.dumps({"dataframe_records": [row]}, option=orjson.OPT_SERIALIZE_NUMPY), JSON) for row in bad),
        (orjson.dumps({"dataframe_records": bad}, option=orjson.OPT_SERIALIZE_NUMPY), JSON),
        (b'{"dataframe_split": {"columns": ["a","b","k","color","f"], "data": [[NaN, 1, 2, "red", true]]}}', JSON),
        (b"a,b,k,color,f,id\n1.5,2,3,red,true,x1\n,4,1,,false,\n99,1,1,blue,1,z\n", "text/csv"),
        (
            orjson.dumps({"inputs": {"a": [0.1, 0.2], "b": [1, 2], "k": [0, 1], "color": ["red", "x"], "f": [1, 0]}}),
            JSON,
        ),
        (orjson.dumps({"dataframe_records": [{"a": 1}]}), JSON),  # missing columns
        (b"not json", JSON),
        (split(many), JSON),
    ]


class PerColumn:
    """A served model given the request's columns as a plain mapping: the transformer stacks them one call per
    column, as every request did before the one-matrix path."""

    def __init__(self, loaded: LoadedModel):
        self.loaded = loaded
        self.version, self.model = loaded.version, loaded.model

    def predict(self, columns, n_rows):
        assert isinstance(columns, StackedColumns)  # what the endpoint hands the model now
        return self.loaded.predict(dict(columns), n_rows)


class Log:
    """An inference log that keeps what it is given, as plain values."""

    def __init__(self):
        self.rows = []

    def append(self, columns, n_rows, version, prediction, score, champion=None, invalid=None, features=None):
        kept = {name: np.asarray(values).tolist() for name, values in columns.items()}
        features = None if features is None else np.asarray(features).tolist()
        self.rows.append((kept, n_rows, version, list(prediction), np.asarray(score).tolist(), invalid, features))

    def status(self):
        return {}


def same(a, b) -> bool:
    """Equal, NaN equal to NaN, and of the same types."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def answers(loaded, spec, on_invalid: str, bodies) -> tuple[list, list, dict]:
    dtypes = {name: spec.schema_.columns[name].dtype for name in spec.input_columns}
    log = Log()
    app = create_app(
        spec.name,
        dtypes,
        lambda: loaded,
        log,
        schema=column_rules(spec.schema_.columns),
        id_column="id",
        on_invalid=on_invalid,
        telemetry_interval_s=0,
        skew_sample_every=1,  # every request logs its features
    )
    state = ServingState().serving(loaded)
    got = []
    for body, content_type in bodies:
        scored = app.invocations.score(body, content_type, state)
        features = None if scored.features is None else scored.features.tolist()
        got.append((scored.status, scored.body, scored.error, scored.n_rows, scored.labels, scored.invalid, features))
        if scored.error is None:
            app._log(scored, state)
    return got, log.rows, dict(vars(app.invocations.requests))


@pytest.fixture(scope="module", params=list(ESTIMATORS))
def served(request, tmp_path_factory):
    data = frame()
    spec, model, holdout = fit(tmp_path_factory.mktemp(request.param), request.param, data)
    loaded = with_fast_path(LoadedModel("3", model), {c: holdout[c].to_numpy() for c in spec.input_columns}, 1e-9)
    assert loaded.compiled is not None, loaded.fast_path_check
    return spec, loaded, data


@pytest.mark.parametrize("on_invalid", ["reject", "flag"])
def test_the_one_matrix_path_answers_and_logs_exactly_as_the_per_column_path(served, on_invalid):
    spec, loaded, data = served
    bodies = requests(data)
    got, logged, counts = answers(loaded, spec, on_invalid, bodies)
    expected, expected_logged, expected_counts = answers(PerColumn(loaded), spec, on_invalid, bodies)

    for i, (answer, reference) in enumerate(zip(got, expected, strict=True)):
        assert answer[1] == reference[1], f"request {i}: the response bytes differ"
        assert same(list(answer), list(reference)), f"request {i}"
    assert same(logged, expected_logged) and counts == expected_counts
    statuses = [answer[0] for answer in got]
    assert statuses.count(200) >= 10 and 400 in statuses  # the set scores rows and refuses some
    if on_invalid == "flag":
        assert any(row[5] for row in logged)  # flagged rows were logged with their reasons


def test_a_parsed_request_holds_its_numeric_columns_as_one_matrix_the_transformer_takes_as_it_is():
    dtypes = {"a": "float", "color": "str", "b": "float"}
    parsed = parse_payload(orjson.dumps({"dataframe_split": {"columns": ["b", "a", "color"], "data": [[1, 2, "x"]]}}))
    columns = coerce_columns(parsed, dtypes).columns
    assert isinstance(columns, StackedColumns) and columns.numeric_names == ["a", "b"]
    assert columns.numeric.tolist() == [[2.0], [1.0]]
    for name, row in zip(columns.numeric_names, columns.numeric, strict=True):
        assert np.shares_memory(columns[name], row)  # the logged values are the matrix's rows, not copies


def transformer(derived: dict | None = None) -> FeatureTransformer:
    steps = [
        _Step("b", "minmax"),
        _Step("c", "onehot"),
        _Step("a", "standard"),
        _Step("d", "ordinal", categories=["low", "mid", "high"]),
        _Step("e", "passthrough"),
    ]
    values = {
        "a": np.array([1.0, 2.0, 3.0, 4.0]),
        "b": np.array([2.0, 4.0, 6.0, 8.0]),
        "c": ["x", "y", "x", "y"],
        "d": ["low", "high", "mid", "low"],
        "e": np.array([0.5, 1.5, 2.5, 3.5]),
    }
    return FeatureTransformer(derived=derived or {}, steps=steps).fit(values)


@pytest.mark.parametrize("names", [["b", "a", "e"], ["a", "b", "e", "z"], ["e", "z", "a", "b"]])
def test_transform_stacked_gives_transform_bit_for_bit_whatever_the_matrix_rows_order(names):
    fitted = transformer()
    numeric = {
        "a": [np.nan, 2.5, np.inf, -1e300],
        "b": [1.0, np.nan, 3.0, 7.0],
        "e": [0.0, -np.inf, 2.0, 9.0],
        "z": [1.0, 1.0, 1.0, 1.0],
    }
    categories = {"c": ["x", None, "unseen", "y"], "d": ["mid", "low", None, "nope"]}
    matrix = np.array([numeric[name] for name in names])
    columns = {**{name: np.array(numeric[name]) for name in names}, **categories}
    expected = fitted.transform(columns)
    kept = matrix.copy()
    assert fitted.transform_stacked(matrix, names, columns).tobytes() == expected.tobytes()
    assert fitted.transform(StackedColumns(columns, matrix, names)).tobytes() == expected.tobytes()
    assert matrix.tobytes() == kept.tobytes()  # a request's matrix is logged: never overwritten
    codes = {"c": np.array([0, -1, -1, 1]), "d": np.array([1, 0, -1, -1])}  # index in each step's categories
    scratch = fitted.transform_stacked(matrix, names, {}, codes=codes, overwrite=True)
    assert scratch.tobytes() == expected.tobytes()


def test_transform_stacked_declines_where_only_named_columns_serve():
    matrix = np.array([[1.0], [2.0], [3.0]])
    with_derived = transformer({"e": "a / b"})
    assert with_derived.transform_stacked(matrix, ["a", "b", "e"], {}) is None  # derived columns: by name
    assert transformer().transform_stacked(matrix[:2], ["a", "b"], {}) is None  # "e" is not in the matrix
