"""One event, one retraining, decided from state every tick reads: the sensors over Dagster's real instance.

The daemon ticks each sensor on its own and launches what a tick asks for before the next tick sees its
result. These tests put the instance in the states that ordering produces (a burst of reports, a retraining
queued or running, a report older than the retraining that answered it) with real runs and materializations,
and tick the real sensors.
"""

import json
import uuid
from pathlib import Path

import dagster as dg
import pytest

from mlops_assets.naming import PIPELINE_TAG, RETRAIN_TAG, RETRAINING_OF_TAG, DriftStatus, asset_keys
from mlops_assets.sensors.drift import DriftCursor, build_drift_sensor
from mlops_assets.sensors.labels import build_labels_sensor
from mlops_assets.sensors.performance import build_performance_sensor
from mlops_assets.sensors.policy import retrain_request
from mlops_assets.spec import load_spec
from tests.unit.fakes import MemoryArtifactStore

REPO = Path(__file__).resolve().parents[3]
SPEC = load_spec(REPO / "pipelines" / "breast_cancer.yaml")
KEYS = asset_keys(SPEC.name)
RETRAIN = [KEYS[name] for name in ("trained_model", "evaluation_report", "deployed_endpoint")]


def spec_with(**retraining):
    return SPEC.model_copy(update={"retraining": SPEC.retraining.model_copy(update=retraining)})


@pytest.fixture(scope="module")
def defs(tmp_path_factory):
    """The bundled pipelines' code location: a sensor resolves its requests' assets against it."""
    from mlops_assets.definitions.folder import build_definitions
    from mlops_assets.local.layout import LocalLayout
    from mlops_assets.resources import local_resources

    return build_definitions(REPO / "pipelines", local_resources(LocalLayout(tmp_path_factory.mktemp("home"))))


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def context(instance, defs, cursor=None, **resources):
    return dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources or None, definitions=defs)


def materialize(instance, key: dg.AssetKey, metadata: dict, tags: dict | None = None) -> str:
    """A real run that materializes ``key`` with ``metadata``; its run id."""

    @dg.asset(key=key)
    def asset():
        return dg.MaterializeResult(metadata=metadata)

    result = dg.materialize([asset], instance=instance, tags={PIPELINE_TAG: SPEC.name, **(tags or {})})
    assert result.success
    return result.run_id


def serving(instance, version: str) -> None:
    materialize(instance, KEYS["deployed_endpoint"], {"model_version": version})


def drift_report(instance, window: str, version: str = "1", status=DriftStatus.drifted) -> str:
    metadata = {"status": str(status), "window_end": window, "model_version": version}
    if status == DriftStatus.drifted:
        metadata["adaptation_window"] = f"breast_cancer/adaptation/{window.replace(' ', '_')}.parquet"
    return materialize(instance, KEYS["drift_report"], metadata)


def finished_retraining(instance) -> str:
    """A retraining run as a sensor requests it, run to its end."""
    tags = retrain_request(SPEC, "key", "drift_report:x", RETRAIN).tags
    return materialize(instance, dg.AssetKey([SPEC.name, "retrained"]), {}, tags)


def queued_retraining(instance, status=dg.DagsterRunStatus.NOT_STARTED) -> None:
    tags = retrain_request(SPEC, "key", "drift_report:x", RETRAIN).tags
    instance.add_run(dg.DagsterRun(job_name="__ASSET_JOB", run_id=str(uuid.uuid4()), tags=tags, status=status))


def tick_drift(instance, defs, spec=SPEC):
    sensor = build_drift_sensor(spec, KEYS, RETRAIN)
    cursor = json.dumps({"rows": 0, "rows_at_last_report": 0})  # no new traffic: only the decision runs
    return sensor.evaluate_tick(context(instance, defs, cursor, store=MemoryArtifactStore()))


def test_a_burst_of_drifted_windows_is_one_retraining_toward_the_newest(instance, defs):
    serving(instance, "1")
    for end in range(10, 60, 10):
        drift_report(instance, f"rows {end - 10}-{end}")
    requests = tick_drift(instance, defs, spec_with(cooldown_minutes=0)).run_requests
    assert len(requests) == 1
    assert requests[0].run_key == "breast_cancer:retrain:drift:rows 40-50"
    assert requests[0].tags["mlops/adapt_to"].endswith("rows_40-50.parquet")
    assert requests[0].tags[RETRAINING_OF_TAG] == SPEC.name  # what the run queue admits one of


@pytest.mark.parametrize("status", [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTED])
def test_no_retraining_is_requested_while_one_is_queued_or_running(instance, defs, status):
    serving(instance, "1")
    drift_report(instance, "rows 0-10")
    queued_retraining(instance, status)
    data = tick_drift(instance, defs, spec_with(cooldown_minutes=0))
    assert not data.run_requests
    assert "retraining run" in data.skip_message and status.value.lower() in data.skip_message


def test_the_decision_waits_for_reports_still_in_flight(instance, defs):
    """Under the daemon, the first of a burst's reports ends while the others run: deciding then would retrain
    toward the first window, and again for each later one."""
    serving(instance, "1")
    drift_report(instance, "rows 0-10")
    running_report(instance, asset_selection=frozenset({KEYS["drift_report"]}))
    data = tick_drift(instance, defs, spec_with(cooldown_minutes=0))
    assert not data.run_requests and "queued or running" in data.skip_message


def test_a_run_of_checks_alone_does_not_hold_the_decision_back(instance, defs):
    """The endpoint checks run every few minutes: counted as in flight, they would starve the decision."""
    serving(instance, "1")
    drift_report(instance, "rows 0-10")
    running_report(instance, asset_check_selection=frozenset({dg.AssetCheckKey(KEYS["deployed_endpoint"], "skew")}))
    assert len(tick_drift(instance, defs, spec_with(cooldown_minutes=0)).run_requests) == 1


def running_report(instance, **selection) -> None:
    tags = {PIPELINE_TAG: SPEC.name, "mlops/window_end_row": "20"}
    run = dg.DagsterRun(
        job_name="__ASSET_JOB", run_id=str(uuid.uuid4()), tags=tags, status=dg.DagsterRunStatus.STARTED, **selection
    )
    instance.add_run(run)


def test_reports_made_before_the_retraining_ended_are_answered_by_it(instance, defs):
    serving(instance, "1")
    drift_report(instance, "rows 0-10")
    drift_report(instance, "rows 10-20")  # arrived while the retraining ran: the same event
    finished_retraining(instance)
    data = tick_drift(instance, defs, spec_with(cooldown_minutes=0))
    assert not data.run_requests and "answered by retraining run" in data.skip_message


def test_a_report_that_judged_a_former_champion_starts_nothing_and_a_fresh_one_does(instance, defs):
    serving(instance, "1")
    finished_retraining(instance)  # it promoted v2
    serving(instance, "2")
    drift_report(instance, "rows 20-30", version="1")  # its run began before the promotion
    data = tick_drift(instance, defs, spec_with(cooldown_minutes=0))
    assert not data.run_requests and "judged on v1; v2 serves now" in data.skip_message
    drift_report(instance, "rows 30-40", version="2")
    assert [r.run_key for r in tick_drift(instance, defs, spec_with(cooldown_minutes=0)).run_requests] == [
        "breast_cancer:retrain:drift:rows 30-40"
    ]


def test_a_cursor_of_the_former_shape_still_reads():
    cursor = DriftCursor.parse(json.dumps({"last_file": "a", "rows": 5, "retrained_window": "rows 0-5"}))
    assert (cursor.last_file, cursor.rows) == ("a", 5)


def test_a_label_batch_seen_by_the_labels_and_the_performance_sensors_retrains_once(instance, defs, tmp_path):
    """The labels sensor asks for a report and a retraining at once; the report shows decay, which the
    performance sensor saw as a second event until it read the runs."""
    labels_dir = tmp_path / "labels"
    labels_dir.mkdir()
    labels = SPEC.source.labels.model_copy(update={"path": str(labels_dir)}) if SPEC.source.labels else None
    if labels is None:
        pytest.skip("the bundled spec has no labels source")
    spec = SPEC.model_copy(update={"source": SPEC.source.model_copy(update={"labels": labels})})
    spec = spec.model_copy(update={"retraining": spec.retraining.model_copy(update={"cooldown_minutes": 0})})
    sensor = build_labels_sensor(spec, tmp_path / "spec.yaml", KEYS["drift_report"], RETRAIN)
    cursor = sensor.evaluate_tick(context(instance, defs)).cursor  # watching, nothing yet
    (labels_dir / "batch-1.csv").write_text(f"{labels.id_column},{spec.target}\nP1,benign\n")

    queued_retraining(instance, dg.DagsterRunStatus.STARTED)  # another event's retraining is running
    data = sensor.evaluate_tick(context(instance, defs, cursor))
    assert not data.run_requests and "wait" in data.skip_message
    assert "batch-1.csv" not in data.cursor  # the batch stays new

    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        instance.report_run_canceled(record.dagster_run)
    data = sensor.evaluate_tick(context(instance, defs, data.cursor))
    assert [bool(r.tags.get(RETRAIN_TAG)) for r in data.run_requests] == [False, True]

    # the daemon runs both: the report ends first and shows decay; the retraining ends after it
    report = {"window_end": "newest rows", "online_accuracy": 0.6, "online_low": 0.55, "online_high": 0.65}
    materialize(instance, KEYS["drift_report"], {**report, "performance_decayed": True})
    finished_retraining(instance)
    performance = build_performance_sensor(spec_with(cooldown_minutes=0), KEYS["drift_report"], RETRAIN)
    data = performance.evaluate_tick(context(instance, defs))
    assert not data.run_requests and "answered by retraining run" in data.skip_message
