"""``portfolio``: every pipeline of the code location in one report (gathered by ``portfolio.gather``,
rendered by ``portfolio.render``), written to the artifact store as Markdown and HTML and shown in the
Dagster UI.

One per code location, under no pipeline's prefix. It reads the pipelines' state through the contracts and the
SLO checks' latest evaluations from the Dagster instance; it takes no asset as input, so materializing it never
runs a pipeline. ``sensors.portfolio`` materializes it on a schedule and whenever a model changes.
"""

import datetime as dt
from collections.abc import Sequence

import dagster as dg

from mlops_assets.assets.kinds import Kind
from mlops_assets.contracts import ArtifactStore, EndpointDeployer, ModelRegistry
from mlops_assets.naming import PORTFOLIO, PORTFOLIO_HTML, PORTFOLIO_MARKDOWN, asset_keys
from mlops_assets.portfolio.gather import Check, gather, shown_checks
from mlops_assets.portfolio.render import attention, render_html, render_markdown
from mlops_assets.spec import PipelineSpec

PORTFOLIO_KEY = dg.AssetKey(PORTFOLIO)


def build_portfolio(specs: Sequence[PipelineSpec]) -> dg.AssetsDefinition:
    """The portfolio over ``specs``: each spec's name, its SLO and its approval settings are what it reads by."""
    names = ", ".join(spec.name for spec in specs)

    @dg.asset(
        key=PORTFOLIO_KEY,
        group_name=PORTFOLIO,
        kinds={Kind.python},
        description=f"Every model at a glance ({names}): champion and its age, last training and its trigger, gate, "
        "drift, realised and estimated performance, SLOs, pending approvals, endpoint up or down.",
    )
    def portfolio(
        context: dg.AssetExecutionContext, store: ArtifactStore, registry: ModelRegistry, deployer: EndpointDeployer
    ) -> dg.MaterializeResult:
        now = dt.datetime.now(dt.UTC)
        rows = gather(specs, store, registry, deployer, latest_slo_checks(context.instance, specs))
        for row in rows:
            for problem in row.problems:
                context.log.warning(f"{row.pipeline}: {problem}")
        markdown = render_markdown(rows, now)
        store.write_bytes(PORTFOLIO_MARKDOWN, markdown.encode())
        store.write_bytes(PORTFOLIO_HTML, render_html(rows, now).encode())
        return dg.MaterializeResult(
            metadata={
                "portfolio": dg.MetadataValue.md(markdown),
                "html": dg.MetadataValue.path(store.uri(PORTFOLIO_HTML)),
                "markdown": dg.MetadataValue.path(store.uri(PORTFOLIO_MARKDOWN)),
                "pipelines": len(rows),
                "champions": sum(1 for row in rows if row.champion),
                "needing_attention": len(attention(rows, now)),
            }
        )

    return portfolio


def latest_slo_checks(instance: dg.DagsterInstance, specs: Sequence[PipelineSpec]) -> dict[str, dict[str, Check]]:
    """Each pipeline's endpoint checks the portfolio shows (its SLO checks and schema_break) on
    ``deployed_endpoint`` by name, as last completed (one query for all); a check that never completed is absent."""
    keys = {
        dg.AssetCheckKey(asset_keys(spec.name)["deployed_endpoint"], check): (spec.name, check)
        for spec in specs
        for check in shown_checks(spec)
    }
    if not keys:
        return {}
    summaries = instance.event_log_storage.get_asset_check_summary_records(list(keys))
    found: dict[str, dict[str, Check]] = {}
    for key, (pipeline, check) in keys.items():
        record = summaries[key].last_completed_check_execution_record if key in summaries else None
        if record is not None:
            at = dt.datetime.fromtimestamp(record.create_timestamp, dt.UTC)
            assert record.evaluation is not None  # a completed record holds its dg.AssetCheckEvaluation
            passed = record.evaluation.passed
            found.setdefault(pipeline, {})[check] = Check(check, passed, at)
    return found
