"""The checks on ``deployed_endpoint`` for real: a served v2 misses a latency objective no endpoint can meet, the
endpoint checks' sensor runs the checks through Dagster (as ``mlops-assets tick`` does), the failed check alerts a
webhook receiver on 127.0.0.1, the next tick rolls ``champion`` back to v1 with the reason in the audit trail,
and the skew check passes on the endpoint's own sampled rows."""

import time

import dagster as dg

from mlops_assets.data.locations import log_prefix
from mlops_assets.definitions.folder import build_definitions
from mlops_assets.governance.alias_history import read_alias_moves
from mlops_assets.governance.audit import read_decisions
from mlops_assets.local.tick import SensorDriver
from mlops_assets.naming import TRIGGER_TAG
from mlops_assets.resources import local_resources
from mlops_assets.resources.artifact_store import FsspecArtifactStore
from mlops_assets.sensors import build_sensors
from mlops_assets.serving.endpoint_state import running_url, stop
from mlops_assets.serving.telemetry import stored_snapshots, summarise
from mlops_assets.serving.traffic import replay
from mlops_assets.spec import load_spec
from tests.conftest import check, failures
from tests.integration.test_alerts import receiver  # noqa: F401 (a fixture)
from tests.integration.test_lifecycle import ALL, TRAINING, champion, edit_spec, wait_for_log_rows

SENSOR = "breast_cancer_endpoint_checks"
REQUESTS, SAMPLE_EVERY = 60, 4


def values(evaluation) -> dict:
    return {k: getattr(v, "value", v) for k, v in evaluation.metadata.items()}


def wait_for_snapshot(store, requests: int) -> None:
    """Until a telemetry snapshot of the stopped endpoint counts ``requests`` scoring requests."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if summarise(stored_snapshots(store, log_prefix("breast_cancer"), 0), 0, time.time())["requests"] >= requests:
            return
        time.sleep(0.1)
    raise AssertionError(f"no telemetry snapshot of breast_cancer counts {requests} scoring requests")


def with_checks(raw: dict, webhook: str) -> None:
    raw["monitoring"]["slo"] = {"latency_p99_ms": 0.001, "max_error_rate": 0.5, "min_requests": 20, "rollback": True}
    raw["monitoring"]["skew"] = {"sample_every": SAMPLE_EVERY, "rows": 100}
    raw["alerts"] = [{"webhook": webhook, "timeout_s": 2, "on": ["slo_failed", "skew", "rollback"]}]


def test_a_missed_slo_fails_its_check_alerts_and_rolls_back_and_the_skew_check_passes(project, receiver):  # noqa: F811
    edit_spec(project, "breast_cancer", lambda raw: with_checks(raw, receiver.url))
    first = project.materialize("breast_cancer", "feedback", *ALL[:5])
    assert first.success, failures(first)
    second = project.materialize("breast_cancer", *TRAINING)
    assert second.success, failures(second)
    assert champion(project) == "2"

    spec = load_spec(project.pipelines / "breast_cancer.yaml")
    replay(spec, project.pipelines, running_url(project.layout.endpoints, "breast_cancer"), rows=REQUESTS, batch=1)
    wait_for_log_rows(project, "breast_cancer", REQUESTS)
    stop(project.layout.endpoints, "breast_cancer")  # a clean stop writes the last telemetry snapshot
    store = FsspecArtifactStore(root=str(project.layout.data))
    wait_for_snapshot(store, REQUESTS)

    resources = local_resources(project.layout)
    driver = SensorDriver(
        build_definitions(project.pipelines, resources, build_sensors), project.instance, resources.by_key()
    )
    (checks,) = driver.step([SENSOR])
    assert checks.result.success, failures(checks.result)
    assert not checks.request.asset_selection  # the checks alone: nothing is materialized

    latency = check(checks.result, "breast_cancer", "deployed_endpoint", "latency_slo")
    assert not latency.passed and latency.severity == dg.AssetCheckSeverity.ERROR
    seen = values(latency)
    assert seen["observed"] > float(seen["threshold"]) == 0.001 and seen["requests"] == REQUESTS
    assert (seen["model_version"], seen["rollback_to"]) == ("2", "1")
    errors = values(check(checks.result, "breast_cancer", "deployed_endpoint", "error_rate_slo"))
    assert errors["observed"] == 0 and errors["threshold"] == "0.5"

    skew = check(checks.result, "breast_cancer", "deployed_endpoint", "skew")
    assert skew.passed, values(skew)["mismatches"]
    compared = values(skew)
    assert compared["rows_compared"] == REQUESTS // SAMPLE_EVERY and compared["rows_by_version"] == {"2": 15}
    assert compared["largest_difference"] <= float(compared["tolerance"])

    ((_, alert),) = receiver.received
    assert alert["event"] == "slo_failed" and "p99 scoring latency" in alert["message"]
    assert alert["link"] == "http://localhost:3000/assets/breast_cancer/deployed_endpoint"

    (rollback,) = driver.step([SENSOR])  # the next tick acts on the failed evaluation
    assert rollback.request.tags[TRIGGER_TAG] == "slo: latency_slo failed"
    assert rollback.result.success, failures(rollback.result)
    assert champion(project) == "1"
    decision = read_decisions(store, "breast_cancer")[-1]
    assert (decision["action"], decision["model_version"], decision["previous_version"]) == ("rollback", "1", "2")
    assert f"sensor {SENSOR}: latency_slo failed since v2 was promoted" in decision["approved_by"]
    move = read_alias_moves(store, "breast_cancer", "champion")[-1]
    assert (move.action, move.version, move.by) == ("rollback", "1", decision["approved_by"])
    assert [body["event"] for _, body in receiver.received] == ["slo_failed", "rollback"]

    assert driver.step([SENSOR]) == []  # one rollback per failed evaluation, and v1 was not what failed
