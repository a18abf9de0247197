"""The retraining policy: a cooldown from the latest automatic retraining and a budget per UTC day, read from
the runs themselves. Run records are written to an ephemeral instance with the creation times a test needs."""

import datetime as dt
import uuid
from pathlib import Path

import dagster as dg
import pytest

from mlops_assets.naming import PIPELINE_TAG, RETRAIN_TAG, RETRAINING_OF_TAG, TRIGGER_TAG
from mlops_assets.sensors.policy import DAY, lifecycle_checks, refusal, retrain_request, retraining_refusal
from mlops_assets.spec import load_spec

REPO = Path(__file__).resolve().parents[3]
SPEC = load_spec(REPO / "pipelines" / "breast_cancer.yaml")
MIDNIGHT = dt.datetime(2025, 3, 2, tzinfo=dt.UTC)  # a UTC midnight: the budget's day starts here
ASSETS = [dg.AssetKey([SPEC.name, "trained_model"])]


def at(seconds: float) -> float:
    """A time ``seconds`` after MIDNIGHT, as the sensors pass ``now``."""
    return MIDNIGHT.timestamp() + seconds


def with_policy(cooldown_minutes: float, daily_budget: int, name: str = SPEC.name):
    retraining = SPEC.retraining.model_copy(update={"cooldown_minutes": cooldown_minutes, "daily_budget": daily_budget})
    return SPEC.model_copy(update={"retraining": retraining, "name": name})


def add_run(instance: dg.DagsterInstance, seconds: float, tags: dict[str, str]) -> None:
    """A run record created ``seconds`` after MIDNIGHT."""
    run = dg.DagsterRun(job_name="__ASSET_JOB", run_id=str(uuid.uuid4()), tags=tags)
    instance.run_storage.add_historical_run(run, dt.datetime.fromtimestamp(at(seconds), dt.UTC))


def add_retraining(instance: dg.DagsterInstance, seconds: float, spec=SPEC) -> None:
    """A run as a sensor's retraining request starts it: with the request's own tags."""
    add_run(instance, seconds, retrain_request(spec, f"key-{seconds}", "drift_report:1", ASSETS).tags)


@pytest.fixture
def instance():
    return dg.DagsterInstance.ephemeral()


def test_the_cooldown_counts_from_the_latest_retraining():
    previous = [at(100), at(1_000)]
    assert refusal(previous, at(1_000 + 599), 600, 5) == (
        "cooling down: last automatic retraining 599 s ago, cooldown 600 s"
    )
    assert refusal(previous, at(1_000 + 600), 600, 5) is None


def test_the_budget_counts_the_retrainings_since_midnight_utc_only():
    yesterday_and_today = [at(-60), at(-30), at(100), at(200)]
    assert refusal(yesterday_and_today, at(10_000), 0, 2) == (
        "daily budget spent: 2 automatic retrainings today, budget 2"
    )
    assert refusal(yesterday_and_today, at(10_000), 0, 3) is None  # the two of yesterday are not counted
    assert refusal(yesterday_and_today, at(DAY + 10), 0, 1) is None  # a new day, a new budget


def test_a_retraining_just_before_midnight_still_cools_down_the_first_of_the_day():
    assert refusal([at(-30)], at(30), 600, 1).startswith("cooling down: last automatic retraining 60 s ago")


def test_the_budget_is_checked_before_the_cooldown_and_a_zero_budget_refuses_every_retraining():
    assert refusal([at(0)], at(10), 600, 1).startswith("daily budget spent: 1")
    assert refusal([], at(10), 0, 0) == "daily budget spent: 0 automatic retrainings today, budget 0"


def test_a_retraining_request_carries_the_tags_the_policy_counts_and_its_trigger():
    request = retrain_request(SPEC, "breast_cancer:labels:batch-7", "labels:batch-7", ASSETS)
    assert request.run_key == "breast_cancer:labels:batch-7"
    assert list(request.asset_selection) == ASSETS
    assert request.tags == {
        PIPELINE_TAG: SPEC.name,
        RETRAIN_TAG: "true",
        RETRAINING_OF_TAG: SPEC.name,
        TRIGGER_TAG: "labels:batch-7",
    }


def test_the_policy_reads_the_cooldown_from_the_runs_of_the_instance(instance):
    spec = with_policy(cooldown_minutes=10, daily_budget=5)
    assert retraining_refusal(instance, spec, at(3_600)) is None
    add_retraining(instance, 3_000)
    assert retraining_refusal(instance, spec, at(3_000 + 599)) == (
        "cooling down: last automatic retraining 599 s ago, cooldown 600 s"
    )
    assert retraining_refusal(instance, spec, at(3_000 + 600)) is None


def test_the_policy_reads_the_daily_budget_from_the_runs_of_the_instance(instance):
    spec = with_policy(cooldown_minutes=0, daily_budget=2)
    add_retraining(instance, -600)  # yesterday
    add_retraining(instance, 600)
    assert retraining_refusal(instance, spec, at(7_200)) is None
    add_retraining(instance, 3_600)
    assert retraining_refusal(instance, spec, at(7_200)) == (
        "daily budget spent: 2 automatic retrainings today, budget 2"
    )
    assert retraining_refusal(instance, spec, at(DAY + 60)) is None  # the next day


def test_only_automatic_retrainings_of_the_same_pipeline_count(instance):
    spec = with_policy(cooldown_minutes=60, daily_budget=1)
    add_run(instance, 100, {PIPELINE_TAG: spec.name, TRIGGER_TAG: "manual"})  # started by a person
    add_run(instance, 200, {PIPELINE_TAG: spec.name, RETRAIN_TAG: "false"})
    add_run(instance, 300, {RETRAIN_TAG: "true"})  # no pipeline
    add_retraining(instance, 400, with_policy(60, 1, name="diabetes"))
    assert retraining_refusal(instance, spec, at(500)) is None
    add_retraining(instance, 450, spec)
    assert retraining_refusal(instance, spec, at(500)).startswith("daily budget spent: 1")
    assert retraining_refusal(instance, with_policy(0, 2, name="diabetes"), at(500)) is None


def test_a_cooldown_longer_than_the_day_so_far_reaches_back_into_yesterday(instance):
    spec = with_policy(cooldown_minutes=120, daily_budget=5)
    add_retraining(instance, -3_600)  # 23:00 yesterday
    assert retraining_refusal(instance, spec, at(1_800)) == (
        "cooling down: last automatic retraining 5400 s ago, cooldown 7200 s"
    )
    assert retraining_refusal(instance, spec, at(3_600)) is None


def test_a_retraining_runs_the_lifecycle_checks_and_leaves_the_endpoint_checks_to_their_sensor(tmp_path):
    """After a failed gate the endpoint checks could only be skipped (an error in the run's log), and after a
    promotion they would judge the window of the version before: their own sensor runs them."""
    from mlops_assets.definitions.folder import build_definitions
    from mlops_assets.local.layout import LocalLayout
    from mlops_assets.naming import EndpointCheck, asset_keys
    from mlops_assets.resources import local_resources

    defs = build_definitions(REPO / "pipelines", local_resources(LocalLayout(tmp_path)))
    keys = asset_keys(SPEC.name)
    retrain = [keys[name] for name in ("trained_model", "evaluation_report", "deployed_endpoint")]
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, definitions=defs)
        checks = {(key.asset_key, key.name) for key in lifecycle_checks(context, retrain)}
    assert (keys["evaluation_report"], "gate") in checks and (keys["deployed_endpoint"], "approval") in checks
    assert not {name for _, name in checks} & set(EndpointCheck)
    assert lifecycle_checks(dg.build_sensor_context(), retrain) is None  # outside a code location: every check
