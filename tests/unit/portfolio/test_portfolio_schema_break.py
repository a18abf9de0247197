"""The portfolio shows each endpoint's schema_break check as last evaluated, with or without an SLO, and a failed
one needs attention."""

import dagster as dg

from mlops_assets.assets.portfolio import latest_slo_checks
from mlops_assets.naming import EndpointCheck, asset_keys
from mlops_assets.portfolio.gather import Check, gather
from mlops_assets.portfolio.render import attention, render_markdown
from tests.unit.portfolio.test_portfolio import NOW, SPEC, renamed, state  # noqa: F401 (state: a fixture)

SCHEMA_BREAK = EndpointCheck.schema_break


def test_the_schema_break_check_is_read_from_the_instance_for_a_spec_without_an_slo():
    endpoint = asset_keys(SPEC.name)["deployed_endpoint"]
    with dg.instance_for_test() as instance:
        for passed in (True, False):
            evaluation = dg.AssetCheckEvaluation(asset_key=endpoint, check_name=SCHEMA_BREAK.value, passed=passed)
            instance.report_runless_asset_event(evaluation)

        found = latest_slo_checks(instance, [SPEC, renamed(SPEC, "never_checked")])

    assert SPEC.monitoring.slo is None and list(found) == [SPEC.name]
    assert list(found[SPEC.name]) == [SCHEMA_BREAK] and found[SPEC.name][SCHEMA_BREAK].passed is False


def test_a_failed_schema_break_check_is_shown_and_needs_attention(state):  # noqa: F811
    store, registry, deployer = state
    others = [renamed(SPEC, name) for name in ("passing", "unchecked")]
    evaluated = {
        SPEC.name: {SCHEMA_BREAK: Check(SCHEMA_BREAK, False, NOW)},
        "passing": {SCHEMA_BREAK: Check(SCHEMA_BREAK, True, NOW)},
    }

    rows = gather([SPEC, *others], store, registry, deployer, evaluated)

    assert [row.schema_break.passed for row in rows] == [False, True, None]
    table = render_markdown(rows, NOW)
    assert "| up http://breast_cancer.endpoint.test | FAILED: requests rejected (schema_break) |" in table
    assert "| not deployed | - |" in table  # "passing" and "unchecked" have no champion
    [needs] = [line for line in attention(rows, NOW) if line.startswith(f"{SPEC.name}: ")]
    assert needs.endswith("schema: FAILED: requests rejected (schema_break)")
    assert not any(line.startswith(("passing", "unchecked")) for line in attention(rows, NOW))
