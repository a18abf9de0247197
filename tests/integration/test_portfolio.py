"""The portfolio over a really materialized pipeline: the local MLflow registry, the audit trail and the drift
report on disk, the endpoint process, and the portfolio sensor ticked through Dagster's API as
`mlops-assets tick` ticks it."""

import pytest

from mlops_assets.definitions.folder import build_definitions
from mlops_assets.local.tick import SensorDriver
from mlops_assets.naming import PORTFOLIO, PORTFOLIO_HTML, PORTFOLIO_MARKDOWN
from mlops_assets.resources import local_resources
from mlops_assets.sensors import build_sensors
from tests.conftest import QUIET, failures

pytestmark = pytest.mark.integration


def test_the_portfolio_shows_the_champion_gate_drift_and_endpoint_of_a_materialized_pipeline(project):
    done = project.materialize("breast_cancer", tags={"mlops/trigger": "portfolio test"})
    assert done.success, failures(done)

    resources = local_resources(project.layout)
    defs = build_definitions(project.pipelines, resources, build_sensors)
    driver = SensorDriver(defs, project.instance, resources.by_key(), run_config=QUIET)
    [launched] = driver.step([f"{PORTFOLIO}_sensor"])
    assert launched.result is not None and launched.result.success, failures(launched.result)
    assert driver.step([f"{PORTFOLIO}_sensor"]) == []  # nothing changed since: no second run

    [materialization] = launched.result.asset_materializations_for_node(PORTFOLIO)
    markdown = materialization.metadata["portfolio"].value
    [row] = [line for line in markdown.splitlines() if line.startswith("| breast_cancer |")]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[1] == "v1" and cells[3].startswith("v1, ") and cells[3].endswith("(portfolio test)")
    assert cells[4] == "v1 passed"
    assert cells[5].startswith("not enough traffic, ")  # no request was scored yet
    assert cells[10].startswith("up http://127.0.0.1:")
    assert "| wine | none | - | none recorded | - | no report |" in markdown  # a pipeline never run
    assert materialization.metadata["champions"].value == 1
    page = (project.layout.data / PORTFOLIO_HTML).read_text()
    assert '<td class="ok">v1 passed</td>' in page
    assert (project.layout.data / PORTFOLIO_MARKDOWN).read_text() == markdown
