"""The closed loop, daemon-free: real sensors ticked with ``build_sensor_context``, their run requests
materialized for real, traffic sent through the real endpoint."""

import time

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import failures, metadata
from mlflow import MlflowClient

from mlops_assets.definitions import build_definitions
from mlops_assets.spec import load_spec
from mlops_assets.traffic import replay
from resources import local_resources
from sensors import build_sensors

DRIFT = {"mean_radius": 1.3, "mean_texture": 1.4}


class Loop:
    """One pipeline of a project with its sensors, cursors kept between ticks as the daemon keeps them."""

    def __init__(self, project, name="breast_cancer"):
        self.project, self.name = project, name
        self.path = project.pipelines / f"{name}.yaml"
        self.spec = load_spec(self.path)
        self.defs = build_definitions(project.pipelines, local_resources(project.layout), build_sensors)
        self.sensors = {s.name.removeprefix(f"{name}_"): s for s in self.defs.sensors if s.name.startswith(name)}
        self.cursors: dict[str, str | None] = {}
        self.url = None

    def deploy(self):
        result = self.project.materialize(self.name)
        assert result.success, failures(result)
        self.url = metadata(result, self.name, "deployed_endpoint")["url"]

    def tick(self, sensor: str):
        context = dg.build_sensor_context(
            instance=self.project.instance,
            cursor=self.cursors.get(sensor),
            resources=local_resources(self.project.layout),
            definitions=self.defs,
        )
        data = self.sensors[sensor].evaluate_tick(context)
        self.cursors[sensor] = data.cursor
        return data

    def launch(self, request: dg.RunRequest):
        names = [key.path[-1] for key in request.asset_selection]
        result = self.project.materialize(self.name, *names, tags=request.tags)
        assert result.success or "evaluation_report" in names, failures(result)
        return result

    def send(self, rows: int, seed: int, shifts=None):
        before = self.logged_rows()
        replay(self.spec, self.project.pipelines, self.url, rows=rows, batch=10, seed=seed, shifts=shifts)
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


def test_drift_starts_exactly_one_retraining_that_carries_the_report_id(loop):
    assert not loop.tick("drift_sensor").run_requests  # no traffic yet
    loop.send(200, seed=1, shifts=DRIFT)

    requests = loop.tick("drift_sensor").run_requests
    assert [r.asset_selection for r in requests] == [[dg.AssetKey(["breast_cancer", "drift_report"])]]
    report = metadata(loop.launch(requests[0]), "breast_cancer", "drift_report")
    assert report["status"] == "drifted" and report["drifted_features"] == ["mean_radius", "mean_texture", "prediction"]

    requests = loop.tick("drift_sensor").run_requests
    assert len(requests) == 1
    retrain = requests[0]
    report_id = report["drift_report_id"]
    assert retrain.tags["mlops/trigger"] == f"drift_report:{report_id}"
    assert {k.path[-1] for k in retrain.asset_selection} == {
        "trained_model",
        "evaluation_report",
        "deployed_endpoint",
        "drift_report",
    }
    result = loop.launch(retrain)
    version = metadata(result, "breast_cancer", "trained_model")["model_version"]
    assert loop.versions()[version].tags["trigger"] == f"drift_report:{report_id}"
    assert metadata(result, "breast_cancer", "trained_model")["trigger"] == f"drift_report:{report_id}"
    assert loop.versions()[version].tags["gate"] in {"passed", "failed"}

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
    requests = loop.tick("labels_sensor").run_requests
    assert len(requests) == 1 and requests[0].tags["mlops/trigger"].startswith("label_batch:")
    assert "batch-0003.csv" in requests[0].tags["mlops/trigger"]
    result = loop.launch(requests[0])
    raw = metadata(result, "breast_cancer", "raw_data")
    assert raw["rows"] == 569 and raw["rows_waiting_for_labels"] == 0 and raw["labels_with_unknown_ids"] == 1
    assert raw["unreadable_label_files"] == [str(labels / "batch-0002.csv")]
    version = metadata(result, "breast_cancer", "trained_model")["model_version"]
    assert loop.versions()[version].tags["trigger"] == requests[0].tags["mlops/trigger"]
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
    assert requests[0].tags["mlops/trigger"].startswith(f"performance_decay:{report['drift_report_id']}")
    loop.launch(requests[0])
    assert not loop.tick("performance_sensor").run_requests  # the same window does not retrain twice
    assert not loop.tick("drift_sensor").run_requests


def test_constant_unfixable_drift_is_stopped_by_the_daily_budget(project):
    configure(project, monitoring={"window": 100}, retraining={"cooldown_minutes": 0, "daily_budget": 2})
    loop = Loop(project)
    loop.deploy()
    outcomes = []
    for seed in range(3):
        loop.send(100, seed=10 + seed, shifts=DRIFT)
        (report_request,) = loop.tick("drift_sensor").run_requests
        assert metadata(loop.launch(report_request), "breast_cancer", "drift_report")["status"] == "drifted"
        data = loop.tick("drift_sensor")
        outcomes.append(len(data.run_requests))
        for request in data.run_requests:
            loop.launch(request)
    assert outcomes == [1, 1, 0]
    assert "daily budget spent: 2 automatic retrainings today" in data.skip_message
    assert len(loop.versions()) == 3  # the first deployment and two retrainings


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
