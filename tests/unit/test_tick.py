"""``mlops-assets tick`` says in one line (``Launched.summary``) what each sensor's run did, from its events."""

import dagster as dg

from mlops_assets.local.tick import Launched, SensorDriver
from mlops_assets.naming import OUTCOME_TAG, PORTFOLIO

ENDPOINT = dg.AssetKey(["p", "deployed_endpoint"])


@dg.asset(key=PORTFOLIO)
def portfolio() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"pipelines": 3, "needing_attention": 1})


@dg.asset(key=ENDPOINT)
def deployed_endpoint() -> None: ...


@dg.asset(key=dg.AssetKey(["p", "kept"]))
def kept(context: dg.AssetExecutionContext) -> None:
    """What deployed_endpoint does when the gate refused the challenger: the run succeeds and says so in a tag."""
    context.instance.add_run_tags(context.run_id, {OUTCOME_TAG: "champion v1 kept, v2 not promoted"})


@dg.asset_check(asset=ENDPOINT, name="latency_slo")
def latency_slo() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True)


@dg.asset_check(asset=ENDPOINT, name="skew")
def skew() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False)


def run(request: dg.RunRequest, selection: dg.AssetSelection) -> Launched:
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [portfolio, deployed_endpoint, latency_slo, skew], selection=selection, instance=instance
        )
    return Launched("s", request, result)


def test_a_portfolio_run_says_how_many_pipelines_it_covered_and_how_many_need_attention():
    request = dg.RunRequest(run_key="k", asset_selection=[dg.AssetKey(PORTFOLIO)])
    line = run(request, dg.AssetSelection.assets(PORTFOLIO)).summary()
    assert line == "k: ok; portfolio of 3 pipeline(s), 1 needing attention"


def test_a_run_of_checks_alone_names_the_checks_that_failed_and_those_that_passed():
    keys = [dg.AssetCheckKey(ENDPOINT, "latency_slo"), dg.AssetCheckKey(ENDPOINT, "skew")]
    request = dg.RunRequest(run_key="k", asset_selection=[], asset_check_keys=keys, tags={"mlops/trigger": "checks"})
    line = run(request, dg.AssetSelection.checks(*keys)).summary()
    assert line == "checks: ok; check skew failed on deployed_endpoint; checks passed: latency_slo"


def test_a_run_whose_deployment_kept_the_champion_says_so():
    with dg.instance_for_test() as instance:
        driver = SensorDriver(dg.Definitions(assets=[kept]), instance, {})
        request = dg.RunRequest(run_key="k", asset_selection=[kept.key], tags={"mlops/trigger": "drift_report:r1"})
        line = driver.launch("s", request).summary()
    assert line == "drift_report:r1: ok; champion v1 kept, v2 not promoted"
