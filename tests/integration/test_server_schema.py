"""The endpoint holds requests to the spec's schema: rows are rejected or flagged, the row id must match the
rows, text/csv is scored like JSON, and columns the model does not take are ignored and counted."""

import json

import pytest

from mlops_assets.serving.app import LoadedModel, create_app
from mlops_assets.serving.inference_log import InferenceLogWriter, log_schema
from tests.integration.test_server import DATA, DTYPES, RULES, SPEC, call, fitted, serving, wait_for_rows

ADMIN = {"Authorization": "Bearer secret"}
MODEL = LoadedModel("1", fitted(0.5))


@pytest.fixture
def endpoint(tmp_path, request):
    """Serves the breast-cancer model with its schema and row id; ``on_invalid`` from the test's parameter."""
    on_invalid = getattr(request, "param", "reject")
    log = InferenceLogWriter(tmp_path / "log", log_schema(DTYPES, SPEC.task, SPEC.id_column), flush_seconds=0.1)
    app = create_app(
        SPEC.name,
        DTYPES,
        lambda: MODEL,
        log,
        admin_token="secret",
        id_column=SPEC.id_column,
        schema=RULES,
        on_invalid=on_invalid,
    )
    with serving(app) as port:
        yield port, tmp_path / "log"


def records(n: int, **changes) -> list[dict]:
    """The first ``n`` bundled rows with their ids; ``changes`` maps ``column`` to ``(row, value)``."""
    rows = DATA[[SPEC.id_column, *SPEC.input_columns]].head(n).to_dict("records")
    for column, (row, value) in changes.items():
        rows[row][column] = value
    return rows


def body(rows: list[dict]) -> bytes:
    return json.dumps({"dataframe_records": rows}).encode()  # NaN and Infinity as Python writes them


def status(port: int) -> dict:
    return json.loads(call(port, "GET", "/admin/status", None, ADMIN)[2])


def test_an_id_with_fewer_values_than_rows_is_refused_and_the_log_keeps_flowing(endpoint):
    """The request that once silenced the log for good: one id beside two values of every feature."""
    port, log_dir = endpoint
    two = DATA[SPEC.input_columns].head(2)
    inputs = {SPEC.id_column: ["P0001"], **{c: two[c].tolist() for c in SPEC.input_columns}}
    answer = call(port, "POST", "/invocations", json.dumps({"inputs": inputs}).encode())
    assert answer[0] == 400
    assert json.loads(answer[2])["message"].startswith(
        "column 'patient_id' has 1 value(s) but column 'mean_radius' has 2"
    )
    for n in (1, 3, 5):
        assert call(port, "POST", "/invocations", body(records(n)))[0] == 200
    logged = wait_for_rows(log_dir, 9).column(SPEC.id_column).to_pylist()
    assert logged == [r[SPEC.id_column] for r in [*records(1), *records(3), *records(5)]]
    assert status(port)["log"] | {"last_error": ""} == {
        "rows_written": 9,
        "pending_rows": 0,
        "dead_lettered_rows": 0,
        "dropped_rows": 0,
        "last_error": "",
        "dead_letter": None,
    }


@pytest.mark.parametrize(
    ("column", "value", "rule"),
    [
        ("mean_radius", float("nan"), "not nullable got nan"),
        ("mean_radius", float("inf"), "finite got inf"),
        ("mean_texture", True, "dtype float got True"),
        ("mean_radius", 71.2, "le 50 got 71.2"),
        ("mean_smoothness", -0.1, "ge 0 got -0.1"),
        ("mean_area", 0, "gt 0 got 0.0"),
        ("patient_id", "X0003", "str_matches '^P[0-9]{4}$' got 'X0003'"),
    ],
)
def test_a_row_that_breaks_the_schema_is_refused_naming_the_row_the_column_and_the_rule(endpoint, column, value, rule):
    port, _ = endpoint
    status_code, _, answer = call(port, "POST", "/invocations", body(records(3, **{column: (2, value)})))
    message = f"1 of 3 row(s) break the schema: row 2, column {column!r}: {rule} (deployment.on_invalid: reject)"
    assert status_code == 400 and json.loads(answer) == {"error_code": "BAD_REQUEST", "message": message}
    assert status(port)["requests"]["rejected"] == 1 and status(port)["requests"]["accepted"] == 0


@pytest.mark.parametrize("endpoint", ["flag"], indirect=True)
def test_a_flagged_row_is_scored_marked_invalid_in_the_log_and_counted(endpoint):
    port, log_dir = endpoint
    sent = records(3, mean_radius=(1, 71.2), patient_id=(1, "X0002"))
    status_code, _, answer = call(port, "POST", "/invocations", body(sent))
    assert status_code == 200 and len(json.loads(answer)["predictions"]) == 3
    table = wait_for_rows(log_dir, 3)
    assert table.column("invalid").to_pylist() == [
        None,
        "column 'mean_radius': le 50 got 71.2; column 'patient_id': str_matches '^P[0-9]{4}$' got 'X0002'",
        None,
    ]
    assert table.column("mean_radius").to_pylist()[1] == 71.2
    assert status(port)["on_invalid"] == "flag"
    assert status(port)["requests"]["invalid_rows"] == 1 and status(port)["requests"]["accepted"] == 1


def test_text_csv_is_scored_like_json(endpoint):
    port, _ = endpoint
    frame = DATA[[SPEC.id_column, *SPEC.input_columns]].head(6)
    csv_answer = call(port, "POST", "/invocations", frame.to_csv(index=False).encode(), {"Content-Type": "text/csv"})
    json_answer = call(port, "POST", "/invocations", body(records(6)))
    assert csv_answer[0] == json_answer[0] == 200
    assert (
        json.loads(csv_answer[2])
        == json.loads(json_answer[2])
        == {"predictions": MODEL.model.predict(frame).labels.tolist()}
    )


def test_columns_the_model_does_not_take_are_ignored_and_counted(endpoint):
    port, _ = endpoint
    extra = [{**row, "diagnosis": "benign", "comment": "seen"} for row in records(2)]
    status_code, _, answer = call(port, "POST", "/invocations", body(extra))
    assert status_code == 200 and json.loads(answer) == json.loads(
        call(port, "POST", "/invocations", body(records(2)))[2]
    )
    call(port, "POST", "/invocations", body([{**row, "comment": "again"} for row in records(1)]))
    assert status(port)["requests"]["ignored_columns"] == {"diagnosis": 1, "comment": 2}
