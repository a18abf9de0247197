"""The loop under the real daemon: ``dagster-daemon run`` as its own process, the pipeline's sensors running
every 5 s with no cooldown, one burst of drifted traffic that covers several drift windows at once.

The daemon ticks each sensor on its own and launches what a tick requests before the next tick sees the
result (``mlops-assets tick`` runs a whole round first: tests/integration/test_loop.py); a burst of five
windows must still be one event for the loop: one retraining, never two retrainings queued or running at
once, one move of the champion at most.
"""

import itertools
import os
import shutil
import time
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest
import yaml

from mlops_assets.definitions.folder import build_definitions
from mlops_assets.naming import PIPELINE_TAG, RETRAIN_TAG, TRIGGER_TAG, asset_keys
from mlops_assets.resources import local_resources
from mlops_assets.serving.traffic import replay
from mlops_assets.spec import load_spec
from tests.conftest import QUIET, failures
from tests.daemon import Daemon, write_instance_config, write_workspace

REPO = Path(__file__).resolve().parents[2]
PIPELINE = "breast_cancer"
INTERVAL = 5  # retraining.interval_seconds: the sensors' tick
WINDOW = 100  # monitoring.window
WINDOWS = 5  # drift windows in the burst
DRIFT = {"mean_radius": 1.3, "mean_texture": 1.4}  # the demo's drift


@pytest.fixture
def pipelines(tmp_path: Path) -> Path:
    """The bundled breast_cancer spec alone, small windows, sensors running every 5 s, no cooldown, a budget
    that never binds (the budget is a last resort, not what should keep a burst to one retraining)."""
    folder = tmp_path / "pipelines"
    shutil.copytree(REPO / "pipelines" / "data" / PIPELINE, folder / "data" / PIPELINE)
    raw = yaml.safe_load((REPO / "pipelines" / f"{PIPELINE}.yaml").read_text())
    raw["monitoring"]["window"] = WINDOW
    raw["retraining"] = {"cooldown_minutes": 0, "interval_seconds": INTERVAL, "daily_budget": 20}
    (folder / f"{PIPELINE}.yaml").write_text(yaml.safe_dump(raw))
    return folder


@pytest.fixture
def dagster_home(tmp_path: Path) -> Path:
    """A DAGSTER_HOME whose dagster.yaml is the one ``make ui`` writes."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    write_instance_config(home)
    return home


@pytest.fixture
def instance(dagster_home: Path):
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        yield instance


@pytest.fixture
def daemon(tmp_path: Path, layout, pipelines: Path, dagster_home: Path):
    """Started by the test (after the first champion is deployed), always stopped."""
    workspace = write_workspace(tmp_path)
    env = {
        **{k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"},
        "MLOPS_HOME": str(layout.home),
        "DAGSTER_HOME": str(dagster_home),
        "MLOPS_PIPELINES": str(pipelines),
    }
    started: list[Daemon] = []

    def start() -> Daemon:
        started.append(Daemon(workspace, env, tmp_path / "daemon.log"))
        return started[-1]

    yield start
    for process in started:
        process.stop()


def said(daemon: Daemon) -> str:
    return f"\ndagster-daemon said (last 4,000 characters):\n{daemon.tail()}"


def wait_for(condition, timeout: float, what: str, daemon: Daemon):
    """Generous deadlines: a loaded 2-core machine runs the daemon, its code server, run workers, trainers and
    the endpoint at once; the condition usually holds long before."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        assert daemon.process.poll() is None, f"dagster-daemon exited ({daemon.process.returncode}){said(daemon)}"
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{said(daemon)}")


def sensor_ticked(instance: dg.DagsterInstance, name: str) -> bool:
    from dagster._core.definitions.run_request import InstigatorType

    states = instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
    return any(
        s.instigator_name == name and instance.get_ticks(s.instigator_origin_id, s.selector_id, limit=1) for s in states
    )


def decided(instance: dg.DagsterInstance, since: float) -> bool:
    """Every drift report of the burst has ended and a retraining was requested: the moment the sensors on the
    code before this test requested a retraining per report (they did so as each report ended), so a few ticks
    more show whether a second one comes. The retraining itself need not end: what it decides is the gate's
    and the deployment's (their own tests)."""
    runs = instance.get_run_records(filters=dg.RunsFilter(tags={PIPELINE_TAG: PIPELINE}), limit=100)
    runs = [r for r in runs if r.create_timestamp.timestamp() >= since]
    reports = [r for r in runs if r.dagster_run.tags.get(TRIGGER_TAG, "").startswith("traffic:")]
    retraining = any(r.dagster_run.tags.get(RETRAIN_TAG) == "true" for r in runs)
    return len(reports) == WINDOWS and all(r.dagster_run.is_finished for r in reports) and retraining


def most_at_once(records) -> int:
    """The most runs queued or running at the same time (a run spans its creation to its end)."""
    edges = sorted(
        [(r.create_timestamp.timestamp(), 1) for r in records] + [(r.end_time or time.time(), -1) for r in records]
    )
    most = current = 0
    for _, step in edges:
        current += step
        most = max(most, current)
    return most


def test_a_burst_of_drift_windows_under_the_daemon_retrains_once(layout, pipelines, instance, daemon):
    started = time.monotonic()
    resources = local_resources(layout)
    defs = build_definitions(pipelines, resources)
    assets = [a for a in defs.assets if isinstance(a, dg.AssetsDefinition)]
    deployed = dg.materialize(
        assets, resources=resources.by_key(), instance=instance, raise_on_error=False, run_config=QUIET
    )
    assert deployed.success, failures(deployed)
    url = deployed.asset_materializations_for_node(f"{PIPELINE}__deployed_endpoint")[-1].metadata["url"].value
    keys = asset_keys(PIPELINE)

    process = daemon()
    wait_for(lambda: sensor_ticked(instance, f"{PIPELINE}_drift_sensor"), 180, "the daemon's first drift tick", process)
    print(f"\nchampion deployed and the daemon ticking: {time.monotonic() - started:.0f} s")

    log = layout.data / PIPELINE / "inference_log"
    burst_at = time.time()
    spec = load_spec(pipelines / f"{PIPELINE}.yaml")
    replay(spec, pipelines, url, rows=WINDOWS * WINDOW, batch=50, seed=2, shifts=DRIFT)

    def logged() -> bool:
        return sum(pq.read_metadata(p).num_rows for p in log.glob("*.parquet")) >= WINDOWS * WINDOW

    wait_for(logged, 60, "the endpoint to log the burst", process)

    def reported() -> bool:
        runs = instance.get_run_records(filters=dg.RunsFilter(tags={PIPELINE_TAG: PIPELINE}))
        return any(r.dagster_run.tags.get(TRIGGER_TAG, "").startswith("traffic:") for r in runs)

    wait_for(reported, 120, "the drift sensor's reports of the burst", process)
    wait_for(lambda: decided(instance, burst_at), 600, "the burst's reports and a retraining", process)
    time.sleep(3 * INTERVAL)  # three more ticks of every sensor: room for a second retraining, were it asked for
    print(f"decided: {time.monotonic() - started:.0f} s")

    retrainings = [
        r
        for r in instance.get_run_records(filters=dg.RunsFilter(tags={PIPELINE_TAG: PIPELINE, RETRAIN_TAG: "true"}))
        if r.create_timestamp.timestamp() >= burst_at
    ]
    served = [
        str(record.asset_materialization.metadata["model_version"].value)
        for record in instance.fetch_materializations(keys["deployed_endpoint"], limit=100, ascending=True).records
    ]
    moves = sum(1 for before, after in itertools.pairwise(served) if after != before)
    triggers = sorted(r.dagster_run.tags.get(TRIGGER_TAG, "") for r in retrainings)
    observed = (
        f"{len(retrainings)} automatic retraining run(s) for one burst of {WINDOWS} windows, at most "
        f"{most_at_once(retrainings)} queued or running at once, champion moved {moves} time(s) "
        f"(served: {' -> '.join(served)}); triggers: {triggers}"
    )
    print(observed)
    assert len(retrainings) == 1, observed + said(process)
    assert most_at_once(retrainings) <= 1, observed
    assert moves <= 1, observed
