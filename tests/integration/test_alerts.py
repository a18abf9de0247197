"""Alerts from real materializations: a failed gate and a drifted window each post one alert to a webhook
receiver on 127.0.0.1, linked to the asset that saw it."""

import threading

import pytest

from mlops_assets.alerts.delivery import WEBSERVER_URL_ENV
from mlops_assets.serving.endpoint_state import running_url
from mlops_assets.serving.traffic import replay
from mlops_assets.spec import load_spec
from tests.conftest import check, failures, metadata
from tests.integration.test_lifecycle import TRAINING, edit_spec, wait_for_log_rows
from tests.unit.alerts.test_alerts import Receiver


@pytest.fixture
def receiver(monkeypatch):
    monkeypatch.delenv(WEBSERVER_URL_ENV, raising=False)
    server = Receiver()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_drifted_window_and_a_failed_gate_each_post_one_alert(project, receiver):
    edit_spec(project, "breast_cancer", lambda raw: raw.update(alerts=[{"webhook": receiver.url, "timeout_s": 2}]))
    first = project.materialize("breast_cancer")
    assert first.success, failures(first)
    assert receiver.received == []

    spec = load_spec(project.pipelines / "breast_cancer.yaml")
    url = running_url(project.layout.endpoints, "breast_cancer")
    replay(spec, project.pipelines, url, rows=200, batch=20, seed=2, shifts={"mean_radius": 1.3, "mean_texture": 1.4})
    wait_for_log_rows(project, "breast_cancer", 200)
    drifted = project.materialize("breast_cancer", "drift_report")
    assert metadata(drifted, "breast_cancer", "drift_report")["status"] == "drifted"
    ((_, drift),) = receiver.received
    assert drift["event"] == "drift" and "mean_radius" in drift["message"]
    assert drift["link"] == "http://localhost:3000/assets/breast_cancer/drift_report"

    edit_spec(project, "breast_cancer", lambda raw: raw["evaluation"]["gate"]["thresholds"].update(roc_auc=0.9999))
    result = project.materialize("breast_cancer", *TRAINING)
    assert result.success, failures(result)  # a refusal is the loop's decision, not a failed run
    assert not check(result, "breast_cancer", "evaluation_report", "gate").passed
    assert [body["event"] for _, body in receiver.received] == ["drift", "gate_failed"]
    gate = receiver.received[-1][1]
    assert gate["pipeline"] == "breast_cancer" and "v2 not promoted, champion v1 kept" in gate["message"]
    assert gate["link"] == "http://localhost:3000/assets/breast_cancer/evaluation_report"
