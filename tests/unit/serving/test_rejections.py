"""Rejected scoring requests counted by the column and rule that rejected them: the structured errors the
payload and row checks raise, the bounded counts in the telemetry, and what a snapshot and ``/metrics`` show,
through the real ASGI app."""

import orjson
import pytest
from sklearn.linear_model import LinearRegression

from mlops_assets.data.snapshot import read_source
from mlops_assets.errors import PayloadError
from mlops_assets.model.pipeline_model import fit_pipeline_model
from mlops_assets.serving.app import create_app
from mlops_assets.serving.inference_log import SNAPSHOT_PREFIX, InferenceLogWriter, log_schema
from mlops_assets.serving.loading import LoadedModel
from mlops_assets.serving.payload import coerce_columns
from mlops_assets.serving.row_checks import (
    MALFORMED,
    MISSING,
    REQUEST,
    Cause,
    ColumnRules,
    RowChecks,
    SchemaRejection,
    column_rules,
    rejection_causes,
)
from mlops_assets.serving.telemetry import MAX_REJECTION_CAUSES, OTHER_CAUSE, Telemetry, summarise
from mlops_assets.spec import load_spec
from tests.conftest import REPO
from tests.unit.serving.test_telemetry import JSON, metrics, serve

SPEC = load_spec(REPO / "pipelines" / "diabetes.yaml")  # sex: {dtype: str, isin: ["1", "2"]}
DTYPES = {c: SPEC.schema_.columns[c].dtype for c in SPEC.input_columns}
ISIN = "isin ['1', '2']"


@pytest.fixture(scope="module")
def model():
    data = read_source(SPEC, REPO / "pipelines").frame
    return LoadedModel("3", fit_pipeline_model(SPEC, data, LinearRegression()))


def records(n: int = 1, drop: str | None = None, **values) -> bytes:
    row = {
        "age": 50.0,
        "sex": "1",
        "bmi": 25.0,
        "bp": 90.0,
        **dict.fromkeys(DTYPES.keys() - {"age", "sex", "bmi", "bp"}, 4.0),
    }
    row.update(values)
    row.pop(drop, None)
    return orjson.dumps({"dataframe_records": [row] * n})


def test_a_missing_column_is_a_schema_rejection_naming_each_column():
    with pytest.raises(SchemaRejection) as raised:
        coerce_columns({"age": [1.0]}, {"age": "float", "sex": "str", "bmi": "float"})
    assert raised.value.causes == (Cause("sex", MISSING), Cause("bmi", MISSING))
    assert "missing column(s) ['sex', 'bmi']" in str(raised.value)


def test_a_report_names_each_column_and_rule_once_with_the_first_value_that_broke_it():
    rules = {"sex": ColumnRules("str", isin=("1", "2")), "bmi": ColumnRules("float", nullable=False)}
    checks = RowChecks({"sex": "str", "bmi": "float"}, rules)
    report = checks.check({"sex": ["3", "4", "1"]}, coerce_columns({"bmi": [1.0, None, 2.0]}, {"bmi": "float"})[2], 3)
    assert report.causes() == [Cause("sex", ISIN, "'3'"), Cause("bmi", "not nullable", "nan")]


def test_a_body_that_is_no_set_of_columns_is_counted_under_one_cause_of_its_own():
    (cause,) = rejection_causes(PayloadError("request body is not valid JSON: line 1"))
    assert (cause.column, cause.rule) == (REQUEST, MALFORMED) and "not valid JSON" in cause.example


def test_a_request_counts_once_under_each_distinct_cause_and_the_causes_are_bounded():
    telemetry = Telemetry(["/invocations"], lambda: {"invalid_rows": 0, "logs": {}})
    telemetry.rejected([Cause("sex", ISIN, "'3'"), Cause("sex", ISIN, "'4'"), Cause("bmi", MISSING)])
    assert telemetry.rejections == {("sex", ISIN): [1, "'3'"], ("bmi", MISSING): [1, None]}

    for i in range(2 * MAX_REJECTION_CAUSES):  # a client that finds a new cause with every request
        telemetry.rejected([Cause(f"c{i}", "rule"), Cause(f"d{i}", "rule")])
    assert len(telemetry.rejections) == MAX_REJECTION_CAUSES + 1
    fitted = (MAX_REJECTION_CAUSES - 2) // 2  # requests whose two causes were still kept apart
    assert telemetry.rejections[OTHER_CAUSE] == [2 * MAX_REJECTION_CAUSES - fitted, None]  # once a request
    assert telemetry.rejected_requests == 1 + 2 * MAX_REJECTION_CAUSES


def test_the_app_counts_each_rejection_by_column_and_rule_in_metrics_and_its_snapshot(model, tmp_path):
    writer = InferenceLogWriter(tmp_path / "log", log_schema(DTYPES, SPEC.task), flush_seconds=0.05)
    app = create_app(SPEC.name, DTYPES, lambda: model, writer, schema=column_rules(SPEC.schema_.columns))
    answers = serve(
        app,
        [
            ("POST", "/invocations", records(), JSON),
            *[("POST", "/invocations", records(n=2, sex="3"), JSON)] * 3,  # an unseen category, both rows
            *[("POST", "/invocations", records(drop="bmi"), JSON)] * 2,
            ("POST", "/invocations", records(bmi=None), JSON),  # null where bmi is not nullable
            ("POST", "/invocations", b"{not json", JSON),
            ("GET", "/metrics", b"", []),
        ],
    )
    assert [status for status, _, _ in answers] == [200, *[400] * 7, 200]
    assert b"column 'sex': isin ['1', '2'] got '3'" in answers[1][2]

    seen = metrics(answers[-1][2].decode())
    count = "mlops_rejected_requests_total"
    assert seen[(count, (("column", "sex"), ("rule", ISIN)))] == 3
    assert seen[(count, (("column", "bmi"), ("rule", MISSING)))] == 2
    assert seen[(count, (("column", "bmi"), ("rule", "not nullable")))] == 1
    assert seen[(count, (("column", REQUEST), ("rule", MALFORMED)))] == 1

    (path,) = (tmp_path / "log").glob(f"{SNAPSHOT_PREFIX}*")  # written at shutdown
    snapshot = orjson.loads(path.read_bytes())
    summary = summarise([snapshot], snapshot["time"] - 60, snapshot["time"])
    assert (summary["requests"], summary["rejected_requests"]) == (8, 7)
    assert summary["rejections"][:2] == [["sex", ISIN, 3, "'3'"], ["bmi", MISSING, 2, None]]
