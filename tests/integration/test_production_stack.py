"""The production stack for real: Dagster on PostgreSQL with a gRPC code server, webserver and daemon as
separate processes, MLflow's tracking server on PostgreSQL with artifacts in an S3-compatible object store, the
artifact store in the same bucket. A pipeline's whole lifecycle, then one retraining loop run by the daemon's
sensors, driven only through the webserver's GraphQL API and the operator's CLI.

Skipped only when PostgreSQL, the object store or the tracking server cannot start here (the skip says which).
"""

import json
import shutil
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from mlops_assets.naming import CHAMPION, PIPELINE_TAG, RETRAIN_TAG, TRIGGER_TAG
from mlops_assets.serving.endpoint_state import running_url
from tests.integration import stack as harness
from tests.integration.stack import Stack

# the harness's fixtures, taken by assignment (pytest_plugins would import stack.py a second time, after
# --doctest-modules has, and warn that it cannot rewrite its asserts)
stack_folder, postgres, object_store = harness.stack_folder, harness.postgres, harness.object_store
tracking_server, stack = harness.tracking_server, harness.stack

REPO = Path(__file__).resolve().parents[2]
PIPELINE = "breast_cancer"
DRIFT = ["--shift", "mean_radius=1.3", "--shift", "mean_texture=1.4"]  # the Makefile's demo drift


@pytest.fixture(scope="module")
def stack_pipelines(tmp_path_factory) -> Path:
    """One bundled spec, its sensors stopped until a test starts them, ticking every 5 s, no cooldown, and a gate
    that promotes a retraining meeting the declared conditions (``must_beat_champion: false``): the stack's
    mechanics need a promotion; whether a weighted retraining of this well-specified model is better is the
    gate's question (it is not: tests/integration/test_loop.py)."""
    folder = tmp_path_factory.mktemp("pipelines")
    shutil.copytree(REPO / "pipelines" / "data" / PIPELINE, folder / "data" / PIPELINE)
    raw = yaml.safe_load((REPO / "pipelines" / f"{PIPELINE}.yaml").read_text())
    raw["monitoring"]["window"] = 200
    raw["evaluation"]["gate"]["must_beat_champion"] = False
    raw["retraining"] = {"cooldown_minutes": 0, "interval_seconds": 5, "sensors": "stopped"}
    (folder / f"{PIPELINE}.yaml").write_text(yaml.safe_dump(raw))
    return folder


def mlflow(stack: Stack) -> MlflowClient:
    return MlflowClient(tracking_uri=stack.tracking.uri, registry_uri=stack.tracking.uri)


def trigger(run: dict) -> str:
    return {t["key"]: t["value"] for t in run["tags"]}.get(TRIGGER_TAG, "")


def test_the_whole_lifecycle_runs_on_the_production_stack(stack: Stack):
    started = time.monotonic()
    assets = stack.dagster.materializable(PIPELINE)
    assert {"raw_data", "trained_model", "deployed_endpoint", "drift_report"} <= {key[-1] for key in assets}
    run_id = stack.dagster.launch(assets, tags={PIPELINE_TAG: PIPELINE})
    stack.dagster.wait_for_run(run_id, timeout_s=240)
    print(f"\nlifecycle run: {time.monotonic() - started:.0f} s")

    # Dagster's instance is PostgreSQL: the run and each asset's materialization are rows there
    with stack.postgres.connect("dagster") as connection, connection.cursor() as cursor:
        cursor.execute("SELECT status FROM runs WHERE run_id = %s", (run_id,))
        assert cursor.fetchone() == ("SUCCESS",)
        cursor.execute(
            "SELECT DISTINCT asset_key FROM event_logs WHERE run_id = %s AND dagster_event_type = %s",
            (run_id, "ASSET_MATERIALIZATION"),
        )
        assert {tuple(json.loads(key)) for (key,) in cursor.fetchall()} == {tuple(key) for key in assets}

    # MLflow through its tracking server: the champion, its artifacts in the bucket, reached through the server
    client = mlflow(stack)
    champion = client.get_model_version_by_alias(PIPELINE, CHAMPION)
    assert champion.tags["gate"] == "passed"
    experiment = client.get_experiment(client.get_run(champion.run_id).info.experiment_id)
    assert experiment.artifact_location.startswith("mlflow-artifacts:"), experiment.artifact_location
    mlflow_objects = stack.object_store.keys("mlflow/")
    assert any(key.endswith("/MLmodel") for key in mlflow_objects), mlflow_objects

    # the artifact store is the bucket too: snapshots, features, reports, batch predictions
    stored = stack.object_store.keys(f"data/{PIPELINE}/")
    kinds = {key.split("/")[2] for key in stored}
    assert {"raw", "features", "reports", "batch_predictions"} <= kinds, sorted(stored)
    assert [key for key in stored if key.startswith(f"data/{PIPELINE}/reports/evaluation/")]
    assert [key for key in stored if key.startswith(f"data/{PIPELINE}/reports/drift/")]

    # the endpoint serves the champion
    url = running_url(stack.home / "endpoints", PIPELINE)
    assert url, f"no endpoint state under {stack.home / 'endpoints'}"
    with urllib.request.urlopen(f"{url}/ping", timeout=10) as response:
        assert response.status == 200
    print(f"lifecycle checked: {time.monotonic() - started:.0f} s, champion v{champion.version}, {len(stored)} objects")


def test_drifted_traffic_makes_the_daemon_report_retrain_and_promote(stack: Stack):
    started = time.monotonic()
    client = mlflow(stack)
    before = client.get_model_version_by_alias(PIPELINE, CHAMPION)
    spec = str(stack.pipelines / f"{PIPELINE}.yaml")
    stack.cli("replay", spec, "--rows", "200", "--seed", "2", *DRIFT)
    stack.dagster.start_sensor(f"{PIPELINE}_drift_sensor")

    def triggered(prefix: str) -> dict | None:
        """The newest run of the pipeline whose trigger starts with ``prefix``."""
        runs = stack.dagster.runs({PIPELINE_TAG: PIPELINE})
        return next((run for run in runs if trigger(run).startswith(prefix)), None)

    report_run = stack.dagster.wait(lambda: triggered("traffic:"), 60, "the drift sensor's report of the window")
    stack.dagster.wait_for_run(report_run["runId"], timeout_s=120)
    print(f"\ndrift report run: {time.monotonic() - started:.0f} s")
    retrain_run = stack.dagster.wait(lambda: triggered("drift_report:"), 60, "the retraining the drift started")
    assert trigger(retrain_run) == f"drift_report:{report_run['runId']}"
    assert {"key": RETRAIN_TAG, "value": "true"} in retrain_run["tags"]
    stack.dagster.wait_for_run(retrain_run["runId"], timeout_s=240)
    print(f"retraining run: {time.monotonic() - started:.0f} s")

    logged = stack.object_store.keys(f"data/{PIPELINE}/inference_log/")
    assert logged, "the endpoint's inference log did not reach the artifact store"
    reports = [k for k in stack.object_store.keys(f"data/{PIPELINE}/reports/drift/") if report_run["runId"] in k]
    assert reports, "the window's drift report is not in the artifact store"
    assert json.loads(stack.object_store.read(reports[0]))["status"] == "drifted"

    after = client.get_model_version_by_alias(PIPELINE, CHAMPION)
    assert int(after.version) > int(before.version)
    assert after.tags["trigger"] == trigger(retrain_run) and after.tags["gate"] == "passed"
    print(f"loop checked: {time.monotonic() - started:.0f} s, champion v{before.version} -> v{after.version}")
