"""The run queue admits one automatic retraining per pipeline wherever a Dagster instance is configured: the
embedded default (``mlops-assets instance``), deploy/dagster/dagster.yaml and the Helm chart's values."""

from pathlib import Path

import dagster as dg
import yaml

from mlops_assets.local.instance import RETRAINING_LIMIT, write_instance_settings

REPO = Path(__file__).resolve().parents[2]


def test_the_written_settings_keep_the_users_own_and_configure_a_real_instance(tmp_path):
    (tmp_path / "dagster.yaml").write_text(
        yaml.safe_dump(
            {"run_queue": {"max_concurrent_runs": 3, "tag_concurrency_limits": [{"key": "team", "limit": 2}]}}
        )
    )
    write_instance_settings(tmp_path)
    write_instance_settings(tmp_path)  # twice: the limit is there once
    settings = yaml.safe_load((tmp_path / "dagster.yaml").read_text())
    assert settings["run_queue"]["max_concurrent_runs"] == 3 and settings["telemetry"] == {"enabled": False}
    assert settings["run_queue"]["tag_concurrency_limits"] == [{"key": "team", "limit": 2}, RETRAINING_LIMIT]
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:  # Dagster reads and validates it
        limits = instance.run_coordinator.get_run_queue_config().tag_concurrency_limits
    assert RETRAINING_LIMIT in limits


def test_the_deployed_instances_carry_the_same_limit():
    instance = yaml.safe_load((REPO / "deploy" / "dagster" / "dagster.yaml").read_text())
    assert RETRAINING_LIMIT in instance["run_coordinator"]["config"]["tag_concurrency_limits"]
    values = yaml.safe_load((REPO / "deploy" / "helm" / "dagster-values.yaml").read_text())
    queued = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert RETRAINING_LIMIT in queued["tagConcurrencyLimits"]
