"""The schema_break check for real: diabetes (``sex: {dtype: str, isin: ["1", "2"]}``) deployed through Dagster,
its endpoint answering on 127.0.0.1 under ``on_invalid: reject``, and traffic that brings an unseen category or
leaves a feature out. Every such request is a 400 and nothing is logged, yet the endpoint checks' sensor, ticked
through Dagster's API as ``mlops-assets tick`` ticks it, fails the check from the telemetry snapshots in the
artifact store, naming the column and rule; the alert reaches a webhook receiver on 127.0.0.1 and the portfolio
lists it. Normal traffic passes."""

import json
import time
import urllib.error
import urllib.request

import dagster as dg
import pandas as pd

from mlops_assets.assets.portfolio import PORTFOLIO_KEY
from mlops_assets.data.locations import log_prefix
from mlops_assets.definitions.folder import build_definitions
from mlops_assets.local.tick import SensorDriver
from mlops_assets.resources import local_resources
from mlops_assets.resources.artifact_store import FsspecArtifactStore
from mlops_assets.sensors import build_sensors
from mlops_assets.serving.endpoint_state import running_url, stop
from mlops_assets.serving.telemetry import stored_snapshots, summarise
from tests.conftest import QUIET, check, failures
from tests.integration.test_alerts import receiver  # noqa: F401 (a fixture)
from tests.integration.test_lifecycle import ALL, edit_spec

PIPELINE, SENSOR = "diabetes", "diabetes_endpoint_checks"
REQUESTS = 30
ISIN = "isin ['1', '2']"


def values(evaluation) -> dict:
    return {k: getattr(v, "value", v) for k, v in evaluation.metadata.items()}


def with_check(raw: dict, webhook: str) -> None:
    raw["monitoring"]["schema_break"] = {"min_requests": 20, "interval_minutes": 0.001}  # due at every tick
    raw["alerts"] = [{"webhook": webhook, "timeout_s": 2, "on": ["schema_break"]}]


def rows(project) -> list[dict]:
    frame = pd.read_csv(project.pipelines / "data" / "diabetes" / "diabetes.csv", dtype={"sex": str})
    return frame.drop(columns="progression").head(REQUESTS).to_dict(orient="records")


def post(url: str, row: dict) -> tuple[int, str]:
    """One row as one scoring request over HTTP; the status and the answer's text."""
    body = json.dumps({"dataframe_records": [row]}).encode()
    request = urllib.request.Request(f"{url}/invocations", body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def serve_and_stop(project, sent: list[dict], requests: int) -> list[tuple[int, str]]:
    """Send ``sent`` to the running endpoint, stop it (a clean stop writes the last telemetry snapshot), and wait
    until the artifact store's snapshots count ``requests`` scoring requests in all."""
    url = running_url(project.layout.endpoints, PIPELINE)
    assert url is not None, "the diabetes endpoint is not running"
    answers = [post(url, row) for row in sent]
    stop(project.layout.endpoints, PIPELINE)
    store = FsspecArtifactStore(root=str(project.layout.data))
    deadline = time.monotonic() + 30
    while summarise(stored_snapshots(store, log_prefix(PIPELINE), 0), 0, time.time())["requests"] < requests:
        assert time.monotonic() < deadline, f"no telemetry snapshot counts {requests} scoring requests"
        time.sleep(0.1)
    return answers


def schema_break(driver: SensorDriver):
    (launched,) = driver.step([SENSOR])
    assert launched.result.success, failures(launched.result)
    assert not launched.request.asset_selection  # the checks alone: nothing is materialized
    return check(launched.result, PIPELINE, "deployed_endpoint", "schema_break")


def deploy(project, receiver) -> SensorDriver:  # noqa: F811
    edit_spec(project, PIPELINE, lambda raw: with_check(raw, receiver.url))
    deployed = project.materialize(PIPELINE, *ALL[:5])
    assert deployed.success, failures(deployed)
    resources = local_resources(project.layout)
    return SensorDriver(
        build_definitions(project.pipelines, resources, build_sensors), project.instance, resources.by_key()
    )


def test_an_unseen_category_fails_the_schema_break_check_alerts_and_shows_in_the_portfolio(project, receiver):  # noqa: F811
    driver = deploy(project, receiver)
    normal = rows(project)

    assert [status for status, _ in serve_and_stop(project, normal, REQUESTS)] == [200] * REQUESTS
    passed = schema_break(driver)
    assert passed.passed and values(passed)["rejected"] == 0 and values(passed)["requests"] == REQUESTS
    assert receiver.received == []  # a passing evaluation sends nothing

    restarted = project.materialize(PIPELINE, "deployed_endpoint")
    assert restarted.success, failures(restarted)
    answers = serve_and_stop(project, [{**row, "sex": "3"} for row in normal], 2 * REQUESTS)
    assert {status for status, _ in answers} == {400}
    assert f"column 'sex': {ISIN} got '3'" in answers[0][1]

    failed = schema_break(driver)
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR
    seen = values(failed)
    assert (seen["observed"], seen["threshold"], seen["requests"], seen["rejected"]) == (0.5, "0.01", 60, 30)
    assert seen["rejections"] == [{"column": "sex", "rule": ISIN, "requests": 30, "example": "'3'"}]
    named = f"sex: {ISIN} got '3': 30 of 60 requests"
    assert named in seen["verdict"] and "above monitoring.max_rejected_share 1.00%" in seen["verdict"]

    ((_, alert),) = receiver.received  # once, for the failed evaluation
    assert alert["event"] == "schema_break" and named in alert["message"]
    assert alert["link"] == "http://localhost:3000/assets/diabetes/deployed_endpoint"

    [portfolio] = [a for a in driver.defs.assets if isinstance(a, dg.AssetsDefinition) and a.key == PORTFOLIO_KEY]
    shown = dg.materialize([portfolio], resources=driver.resources, instance=project.instance, run_config=QUIET)
    assert shown.success, failures(shown)
    markdown = shown.asset_materializations_for_node(portfolio.op.name)[-1].metadata["portfolio"].value
    needs = markdown.split("## Needs attention", 1)[1].split("## Models", 1)[0]
    assert "- diabetes: " in needs and "schema: FAILED: requests rejected (schema_break)" in needs


def test_a_feature_that_stops_arriving_fails_the_schema_break_check_naming_the_column(project, receiver):  # noqa: F811
    driver = deploy(project, receiver)
    normal = rows(project)
    absent = [{name: value for name, value in row.items() if name != "bmi"} for row in normal[: REQUESTS // 2]]
    empty = [{**row, "bmi": None} for row in normal[REQUESTS // 2 :]]  # bmi is not nullable

    answers = serve_and_stop(project, absent + empty, REQUESTS)
    assert {status for status, _ in answers} == {400}
    assert "missing column(s) ['bmi']" in answers[0][1] and "column 'bmi': not nullable" in answers[-1][1]

    failed = schema_break(driver)
    assert not failed.passed
    seen = values(failed)
    assert (seen["observed"], seen["requests"], seen["rejected"]) == (1.0, REQUESTS, REQUESTS)
    assert {(c["column"], c["rule"], c["requests"]) for c in seen["rejections"]} == {
        ("bmi", "missing from the request", 15),
        ("bmi", "not nullable", 15),
    }
    ((_, alert),) = receiver.received
    assert alert["event"] == "schema_break" and "bmi: missing from the request: 15 of 30 requests" in alert["message"]
