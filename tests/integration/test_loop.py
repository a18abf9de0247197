"""The closed loop, daemon-free: real sensors ticked with ``build_sensor_context``, their run requests
materialized for real, traffic sent through the real endpoint."""

import json
import time
import urllib.error
import urllib.request

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from mlflow import MlflowClient

from mlops_assets.definitions.folder import build_definitions
from mlops_assets.local.tick import SensorDriver
from mlops_assets.naming import ADAPTATION_TAG, OUTCOME_TAG, RETRAIN_TAG, TRIGGER_TAG, WINDOW_END_TAG, DriftStatus
from mlops_assets.resources import local_resources
from mlops_assets.sensors import build_sensors
from mlops_assets.serving.traffic import replay
from mlops_assets.spec import load_spec
from tests.conftest import check, failures, metadata

DRIFT = {"mean_radius": 1.3, "mean_texture": 1.4}


class Loop:
    """One pipeline of a project with its sensors, ticked through Dagster's API as the demo ticks them."""

    def __init__(self, project, name="breast_cancer"):
        self.project, self.name = project, name
        self.path = project.pipelines / f"{name}.yaml"
        self.spec = load_spec(self.path)
        self.defs = build_definitions(project.pipelines, local_resources(project.layout), build_sensors)
        self.driver = SensorDriver(self.defs, project.instance, local_resources(project.layout).by_key())
        self.url = None

    def deploy(self):
        result = self.project.materialize(self.name)
        assert result.success, failures(result)
        self.url = metadata(result, self.name, "deployed_endpoint")["url"]

    def tick(self, sensor: str):
        return self.driver.tick(f"{self.name}_{sensor}")

    def launch(self, request: dg.RunRequest, sensor: str = "drift_sensor"):
        result = self.driver.launch(f"{self.name}_{sensor}", request).result
        names = [key.path[-1] for key in request.asset_selection]
        assert result.success or "evaluation_report" in names, failures(result)
        return result

    def send(self, rows: int, seed: int, shifts=None, nulls=None):
        before = self.logged_rows()
        replay(self.spec, self.project.pipelines, self.url, rows=rows, batch=10, seed=seed, shifts=shifts, nulls=nulls)
        deadline = time.monotonic() + 30
        while self.logged_rows() < before + rows:
            assert time.monotonic() < deadline, "the endpoint did not log the traffic"
            time.sleep(0.1)

    def logged_rows(self) -> int:
        folder = self.project.layout.data / self.name / "inference_log"
        return sum(pq.read_metadata(p).num_rows for p in folder.glob("*.parquet") if p.stat().st_size > 100)

    def versions(self):
        uri = self.project.layout.tracking_uri
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        return {str(v.version): v for v in client.search_model_versions(f"name='{self.name}'")}


def configure(project, name="breast_cancer", **sections):
    path = project.pipelines / f"{name}.yaml"
    raw = yaml.safe_load(path.read_text())
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    path.write_text(yaml.safe_dump(raw))


@pytest.fixture
def loop(project):
    configure(project, monitoring={"window": 200}, retraining={"cooldown_minutes": 0})
    loop = Loop(project)
    loop.deploy()
    return loop


@pytest.fixture
def promoting_loop(project):
    """A loop whose gate promotes any challenger that meets the spec's thresholds and gains
    (``must_beat_champion: false``): the mechanics of an adaptation that is promoted. Whether a weighted
    retraining of this well-specified model is better is the default gate's question (it is not: the test
    below this one, and tests/unit/evaluation/test_holdouts.py)."""
    gate = {"thresholds": {"roc_auc": 0.95, "accuracy": 0.9}, "min_gain": {"roc_auc": -0.005}}
    evaluation = {"gate": {**gate, "must_beat_champion": False}}
    configure(project, monitoring={"window": 200}, retraining={"cooldown_minutes": 0}, evaluation=evaluation)
    loop = Loop(project)
    loop.deploy()
    return loop


def test_by_default_a_weighted_retraining_that_is_not_better_keeps_the_champion(loop):
    """The breast_cancer model is well specified: weighting toward a covariate shift does not make it better on
    the weighted holdout, so the run succeeds, keeps v1 and acknowledges the drift; nothing retries."""
    loop.send(200, seed=1, shifts=DRIFT)
    (report_request,) = loop.tick("drift_sensor").run_requests
    loop.launch(report_request)
    (retrain,) = loop.tick("drift_sensor").run_requests
    result = loop.launch(retrain)
    assert result.success, failures(result)
    gate = check(result, "breast_cancer", "evaluation_report", "gate")
    assert (
        not gate.passed and "not better than champion v1 on the weighted holdout" in gate.metadata["conditions"].value
    )
    assert not result.asset_materializations_for_node("breast_cancer__deployed_endpoint")
    assert loop.project.instance.get_run_by_id(result.run_id).tags[OUTCOME_TAG] == "champion v1 kept, v2 not promoted"
    data = loop.tick("drift_sensor")
    assert not data.run_requests and "answered by retraining run" in data.skip_message


def test_drift_without_labels_retrains_once_toward_the_window_and_the_next_report_is_clean(promoting_loop):
    loop = promoting_loop
    assert not loop.tick("drift_sensor").run_requests  # no traffic yet
    loop.send(200, seed=1, shifts=DRIFT)

    requests = loop.tick("drift_sensor").run_requests
    assert [r.asset_selection for r in requests] == [[dg.AssetKey(["breast_cancer", "drift_report"])]]
    assert requests[0].tags[WINDOW_END_TAG] == "200"
    report = metadata(loop.launch(requests[0]), "breast_cancer", "drift_report")
    assert report["status"] == DriftStatus.drifted and report["drifted_features"] == [
        "mean_radius",
        "mean_texture",
        "prediction",
    ]
    assert report["adaptation_window"].startswith("breast_cancer/adaptation/")

    requests = loop.tick("drift_sensor").run_requests
    assert len(requests) == 1
    retrain = requests[0]
    report_id = report["drift_report_id"]
    assert retrain.tags[TRIGGER_TAG] == f"drift_report:{report_id}"
    assert retrain.tags[ADAPTATION_TAG] == report["adaptation_window"]
    result = loop.launch(retrain)
    assert result.success, failures(result)
    features = metadata(result, "breast_cancer", "validated_features")
    assert features["adaptation"]["features"] == ["mean_radius", "mean_texture"]
    assert features["adaptation"]["drift_report"] == report_id
    assert features["weights"]["max"] > 1.5 * features["weights"]["min"]  # the weights moved toward the window
    trained = metadata(result, "breast_cancer", "trained_model")
    version = trained["model_version"]
    assert trained["weighted"] and trained["trigger"] == f"drift_report:{report_id}"
    tags = loop.versions()[version].tags
    assert (
        tags["trigger"] == f"drift_report:{report_id}"
        and tags["training_rows_hash"] != loop.versions()["1"].tags["training_rows_hash"]
    )
    evaluation = metadata(result, "breast_cancer", "evaluation_report")
    assert "| weighted |" in evaluation["holdouts"] and "| fixed |" in evaluation["holdouts"]
    assert metadata(result, "breast_cancer", "deployed_endpoint")["model_version"] == version
    # the reference moved with the model: the same traffic is no longer drift
    after = metadata(result, "breast_cancer", "drift_report")
    assert after["status"] == DriftStatus.no_drift
    data = loop.project.layout.data
    reference, window = (pq.read_table(data / key) for key in (after["drift_reference"], report["adaptation_window"]))
    assert reference.equals(window)

    assert not loop.tick("drift_sensor").run_requests  # no new traffic: nothing to do


def test_a_new_label_batch_retrains_on_the_joined_labels(project):
    labels = project.pipelines / "data" / "breast_cancer" / "labels"
    all_labels = pd.read_csv(labels / "batch-0001.csv")
    all_labels.iloc[:450].to_csv(labels / "batch-0001.csv", index=False)
    loop = Loop(project)
    loop.deploy()
    assert not loop.tick("labels_sensor").run_requests  # the first tick records what is already there
    assert not loop.tick("labels_sensor").run_requests

    (labels / "batch-0002.csv").write_bytes(b"\x00\xff\xfe not a label file")
    skipped = loop.tick("labels_sensor")
    assert not skipped.run_requests and "1 unreadable file(s) skipped" in skipped.skip_message

    stray = pd.DataFrame({"patient_id": ["P9999"], "diagnosis": ["benign"]})  # an id the data does not have
    pd.concat([all_labels.iloc[450:], stray]).to_csv(labels / "batch-0003.csv", index=False)
    report, retrain = loop.tick("labels_sensor").run_requests
    assert report.asset_selection == [dg.AssetKey(["breast_cancer", "drift_report"])]  # performance figures now
    assert retrain.tags[TRIGGER_TAG].startswith("label_batch:") and "batch-0003.csv" in retrain.tags[TRIGGER_TAG]
    result = loop.launch(retrain, "labels_sensor")
    raw = metadata(result, "breast_cancer", "raw_data")
    assert raw["rows"] == 569 and raw["rows_waiting_for_labels"] == 0
    feedback = metadata(result, "breast_cancer", "feedback")
    assert feedback["counts"]["unknown_id_labels"] == 1 and feedback["labels_quarantined"] == 1
    assert list(feedback["unreadable_label_files"]) == [str(labels / "batch-0002.csv")]
    assert check(result, "breast_cancer", "feedback", "labels_accounted_for").passed
    version = metadata(result, "breast_cancer", "trained_model")["model_version"]
    assert loop.versions()[version].tags["trigger"] == retrain.tags[TRIGGER_TAG]
    assert not loop.tick("labels_sensor").run_requests


def test_performance_decay_retrains_when_the_interval_is_under_the_floor(project):
    configure(
        project,
        monitoring={"window": 200, "performance": {"metric": "accuracy", "floor": 0.9, "window": 100}},
        retraining={"cooldown_minutes": 0, "on_drift": False},
    )
    loop = Loop(project)
    loop.deploy()
    assert loop.tick("performance_sensor").skip_message == "the newest drift report has no labelled predictions"
    loop.send(200, seed=3, shifts={"mean_area": 3.0, "worst_area": 3.0, "mean_concave_points": 2.5})
    report_request = loop.tick("drift_sensor").run_requests
    assert len(report_request) == 1  # on_drift is off: a report, no retraining
    report = metadata(loop.launch(report_request[0]), "breast_cancer", "drift_report")
    assert report["online_rows"] == 100 and report["performance_decayed"]
    assert report["online_high"] < 0.9
    requests = loop.tick("performance_sensor").run_requests
    assert len(requests) == 1
    assert requests[0].tags[TRIGGER_TAG].startswith(f"performance_decay:{report['drift_report_id']}")
    result = loop.launch(requests[0], "performance_sensor")
    # the decayed rows' labels train the next version (recent ones weigh more under breast_cancer's half-life)
    origins = metadata(result, "breast_cancer", "validated_features")["training_rows_by_origin"]
    assert origins["production"] > 100
    assert "| recent |" in metadata(result, "breast_cancer", "evaluation_report")["holdouts"]
    assert not loop.tick("performance_sensor").run_requests  # the same window does not retrain twice
    assert not loop.tick("drift_sensor").run_requests


def drift_window(loop, seed, **traffic):
    """Send one window of traffic, have its drift report made, and tick the drift sensor once more."""
    loop.send(loop.spec.monitoring.window, seed=seed, **traffic)
    (report_request,) = loop.tick("drift_sensor").run_requests
    report = metadata(loop.launch(report_request), "breast_cancer", "drift_report")
    return report, loop.tick("drift_sensor")


def test_a_drift_the_retraining_answered_stops_the_loop_by_itself_not_by_the_budget(project):
    """The retraining is not better (a well-specified model: tests above), so the champion stays and the drift
    is known from then on: answered once, never retried, with budget to spare."""
    configure(project, monitoring={"window": 100}, retraining={"cooldown_minutes": 0, "daily_budget": 2})
    loop = Loop(project)
    loop.deploy()
    statuses, retrains = [], []
    for seed in range(3):
        report, data = drift_window(loop, 10 + seed, shifts=DRIFT)
        statuses.append(report["status"])
        retrains.append(len(data.run_requests))
        for request in data.run_requests:
            loop.launch(request)
    assert statuses == ["drifted", "known drift", "known drift"] and retrains == [1, 0, 0]
    assert "budget" not in (data.skip_message or "")
    assert len(loop.versions()) == 2  # the first deployment and one retraining


def test_a_column_that_arrives_empty_waits_for_labels_and_retrains_nothing(project):
    """With ``on_invalid: flag`` the empty rows are scored and logged (under ``reject`` they are 400s, counted
    by the next report's ``requests_accepted`` check): the drift report sees the column go empty."""
    configure(project, monitoring={"window": 200}, deployment={"on_invalid": "flag"})
    loop = Loop(project)
    loop.deploy()
    report, data = drift_window(loop, 30, nulls=["mean_radius"])
    assert report["status"] == DriftStatus.waiting_for_labels
    assert "mean_radius" in report["drifted_features"] and "mean_radius" in report["verdict"]
    assert "waiting for labels" in report["verdict"]
    assert not data.run_requests and "not retrained" in data.skip_message
    assert len(loop.versions()) == 1


def test_requests_the_endpoint_rejects_are_counted_and_fail_a_check(loop):
    body = json.dumps({"dataframe_split": {"columns": ["mean_texture"], "data": [[10.0]]}}).encode()
    for _ in range(5):  # a feature that stopped arriving: 400, never logged
        request = urllib.request.Request(f"{loop.url}/invocations", body, {"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError, match="400"):
            urllib.request.urlopen(request, timeout=10)
    loop.send(200, seed=6)
    (report_request,) = loop.tick("drift_sensor").run_requests
    result = loop.launch(report_request)
    report = metadata(result, "breast_cancer", "drift_report")
    assert (report["accepted_requests"], report["rejected_requests"]) == (20, 5)
    assert "missing column(s)" in report["last_rejection"]
    rejected = check(result, "breast_cancer", "drift_report", "requests_accepted")
    assert not rejected.passed and rejected.metadata["rejected_share"].value == 5 / 25

    loop.send(200, seed=7)  # the next report counts from the previous one: no new rejection
    (report_request,) = loop.tick("drift_sensor").run_requests
    result = loop.launch(report_request)
    assert metadata(result, "breast_cancer", "drift_report")["rejected_requests"] == 0
    assert check(result, "breast_cancer", "drift_report", "requests_accepted").passed


def test_a_weighted_retraining_that_does_not_help_acknowledges_the_drift(project):
    gate = {"thresholds": {"roc_auc": 0.95}, "min_gain": {"roc_auc": 0.5}}  # no retraining can gain 0.5
    configure(project, monitoring={"window": 100}, retraining={"cooldown_minutes": 0}, evaluation={"gate": gate})
    loop = Loop(project)
    loop.deploy()
    shifts = {"mean_radius": 1.5, "mean_texture": 1.5, "mean_concave_points": 1.8}  # the answers move too
    report, data = drift_window(loop, 40, shifts=shifts)
    (retrain,) = data.run_requests
    result = loop.launch(retrain)
    assert not check(result, "breast_cancer", "evaluation_report", "gate").passed
    assert loop.versions()["2"].tags["gate"] == "failed"

    report, data = drift_window(loop, 41, shifts=shifts)
    assert "prediction" in report["drifted_features"]  # the champion's answers moved too: still the known drift
    assert report["status"] == DriftStatus.known_drift and "retraining did not help" in report["verdict"]
    assert not data.run_requests and "waiting for labels" in data.skip_message
    assert len(loop.versions()) == 2


def test_an_automatic_retraining_of_the_champions_training_set_does_not_run(loop):
    names = ("raw_data", "feedback", "validated_features", "trained_model", "evaluation_report")
    result = loop.project.materialize("breast_cancer", *names, tags={RETRAIN_TAG: "true", TRIGGER_TAG: "test"})
    assert result.success and not result.asset_materializations_for_node("breast_cancer__trained_model")
    assert len(loop.versions()) == 1


def test_drift_must_persist_for_the_configured_windows(project):
    configure(project, monitoring={"window": 100, "persistence": 2}, retraining={"cooldown_minutes": 0})
    loop = Loop(project)
    loop.deploy()
    retrains = []
    for seed in range(2):
        loop.send(100, seed=20 + seed, shifts=DRIFT)
        (report_request,) = loop.tick("drift_sensor").run_requests
        loop.launch(report_request)
        retrains.append([r for r in loop.tick("drift_sensor").run_requests if r.tags.get("mlops/retrain")])
    assert [len(r) for r in retrains] == [0, 1]


def test_corrupt_log_files_are_skipped_and_counted(loop):
    folder = loop.project.layout.data / "breast_cancer" / "inference_log"
    loop.send(150, seed=4)
    (folder / "part-00000000000000000001.parquet").write_bytes(b"garbage")
    (folder / "part-99999999999999999999.parquet").write_bytes(b"garbage")
    loop.send(100, seed=5)
    data = loop.tick("drift_sensor")
    assert len(data.run_requests) == 1
    report = loop.launch(data.run_requests[0])
    assert metadata(report, "breast_cancer", "drift_report")["skipped_log_files"] == 1
    assert "2 unreadable log file(s) skipped so far" in (loop.tick("drift_sensor").skip_message or "")
