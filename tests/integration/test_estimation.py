"""The drift report estimates the online metric from the served probabilities when the spec asks for it."""

import pytest

from tests.conftest import metadata
from tests.integration.test_loop import Loop, configure

pytestmark = pytest.mark.integration


def test_the_drift_report_shows_the_estimated_metric_beside_the_realised_one(project):
    configure(
        project,
        monitoring={
            "window": 200,
            "performance": {"metric": "accuracy", "floor": 0.5, "window": 100, "estimated": True},
        },
        retraining={"cooldown_minutes": 0, "on_drift": False},
    )
    loop = Loop(project)
    loop.deploy()
    loop.send(200, seed=3)
    (request,) = loop.tick("drift_sensor").run_requests
    report = metadata(loop.launch(request), "breast_cancer", "drift_report")
    assert report["estimated_rows"] == 200 and report["online_rows"] == 100
    assert report["estimated_low"] <= report["estimated_accuracy"] <= report["estimated_high"]
    assert abs(report["estimated_accuracy"] - report["online_accuracy"]) < 0.1  # unshifted traffic
    assert not report["estimate_decayed"]
    assert "Estimated accuracy from the served probabilities of 200 rows" in report["report"]
