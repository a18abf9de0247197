"""The endpoint checks' sensor: nothing before a champion endpoint exists, then each check when its interval
is due, on a real (ephemeral) Dagster instance."""

from pathlib import Path

import dagster as dg
import pytest

from mlops_assets.naming import TRIGGER_TAG, EndpointCheck, asset_keys
from mlops_assets.sensors.endpoint_checks import EndpointChecksCursor, build_endpoint_checks_sensor, due_checks
from mlops_assets.spec import load_spec
from mlops_assets.spec.operations import Slo

REPO = Path(__file__).resolve().parents[3]
BUNDLED = load_spec(REPO / "pipelines" / "breast_cancer.yaml")
SPEC = BUNDLED.model_copy(update={"monitoring": BUNDLED.monitoring.model_copy(update={"slo": None})})  # no objectives
KEY = asset_keys(SPEC.name)["deployed_endpoint"]


def with_slo(**objectives) -> object:
    slo = Slo(interval_minutes=5, **objectives)
    return SPEC.model_copy(update={"monitoring": SPEC.monitoring.model_copy(update={"slo": slo})})


def test_each_check_is_due_once_per_its_own_interval():
    spec = with_slo(latency_p99_ms=50)  # skew every 60 min (the default), the SLO and schema break every 5
    cursor = EndpointChecksCursor()
    every_five = [EndpointCheck.latency_slo, EndpointCheck.schema_break]
    assert due_checks(spec, cursor, 1_000_000.0) == [*every_five, EndpointCheck.skew]
    assert due_checks(spec, cursor, 1_000_000.0 + 4 * 60) == []
    assert due_checks(spec, cursor, 1_000_000.0 + 5 * 60) == every_five
    assert due_checks(spec, cursor, 1_000_000.0 + 60 * 60) == [*every_five, EndpointCheck.skew]


def test_a_spec_without_an_slo_gets_the_schema_break_and_skew_checks():
    assert due_checks(SPEC, EndpointChecksCursor(), 1_000_000.0) == [EndpointCheck.schema_break, EndpointCheck.skew]


def test_a_cursor_written_before_the_schema_break_check_makes_it_due_at_once():
    cursor = EndpointChecksCursor.parse('{"slo_requested_at": 999000.0, "skew_requested_at": 999000.0}')
    assert due_checks(SPEC, cursor, 1_000_000.0) == [EndpointCheck.schema_break]


@pytest.mark.parametrize(
    ("objectives", "expected"),
    [
        ({"max_error_rate": 0.01}, {EndpointCheck.error_rate_slo, EndpointCheck.schema_break, EndpointCheck.skew}),
        ({"latency_p99_ms": 5, "max_error_rate": 0.01}, set(EndpointCheck)),
    ],
)
def test_the_sensor_waits_for_a_champion_endpoint_then_requests_only_the_due_checks(objectives, expected):
    sensor = build_endpoint_checks_sensor(with_slo(**objectives))
    with dg.instance_for_test() as instance:
        assert isinstance(sensor(dg.build_sensor_context(instance=instance)), dg.SkipReason)
        instance.report_runless_asset_event(dg.AssetMaterialization(KEY, metadata={"model_version": "1"}))
        context = dg.build_sensor_context(instance=instance)
        (request,) = sensor(context)
        assert request.asset_selection == []  # the checks alone: nothing is materialized again
        assert {dg.AssetCheckKey(KEY, c.value) for c in expected} == set(request.asset_check_keys)
        assert request.tags[TRIGGER_TAG].startswith("endpoint checks: ")
        again = sensor(dg.build_sensor_context(instance=instance, cursor=context.cursor))
        assert isinstance(again, dg.SkipReason)  # within the interval: no second run
