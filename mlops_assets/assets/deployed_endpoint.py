"""``deployed_endpoint``: the gated challenger promoted to ``champion`` and served, by the spec's rollout.

The asset is wiring: the decision (promote, roll out, roll back; put the champion back when the endpoint
cannot load a version; audit it) lives in ``rollout.deployment.DeploymentRun``.
"""

import functools

import dagster as dg
from pydantic import Field

from mlops_assets.assets.context import PipelineContext, markdown_list, signature_once
from mlops_assets.contracts import ArtifactStore, EndpointDeployer, ModelRegistry
from mlops_assets.data.locations import log_prefix
from mlops_assets.naming import APPROVER_TAG, Strategy
from mlops_assets.records import EndpointState, EvaluationReport


class DeploymentConfig(dg.Config):
    rollback: bool = Field(
        default=False,
        description="Move `champion` back to the version it replaced, instead of promoting the evaluated challenger.",
    )
    approved_by: str | None = Field(
        default=None, description="Who approves; default: the run tag `mlops/approved_by`, else the automatic gate."
    )
    strategy: Strategy | None = Field(
        default=None,
        description="Override the spec's rollout strategy for this run; `replace` promotes the challenger of a "
        "running shadow or ab rollout (a person's decision).",
    )


def build_deployed_endpoint(pipeline: PipelineContext) -> dg.AssetsDefinition:
    spec, spec_path = pipeline.spec, pipeline.spec_path

    @dg.asset(
        key=pipeline.keys["deployed_endpoint"],
        ins={"evaluation_report": dg.AssetIn(pipeline.keys["evaluation_report"])},
        description="The gated challenger promoted to `champion` and served by the endpoint.",
        **pipeline.common,
    )
    @signature_once
    def deployed_endpoint(
        context: dg.AssetExecutionContext,
        config: DeploymentConfig,
        store: ArtifactStore,
        registry: ModelRegistry,
        deployer: EndpointDeployer,
        evaluation_report: EvaluationReport,
    ):
        from mlops_assets.rollout.deployment import DeploymentRun

        @functools.cache
        def label_model():  # any version knows the pipeline's classes: loaded once, on first use
            return registry.load(spec.name, evaluation_report.model.version)

        def read_arms(since, until):
            from mlops_assets.data.snapshot import read_labels
            from mlops_assets.rollout.arms import rollout_arms

            return rollout_arms(spec, store, since, until, read_labels(spec, pipeline.base_dir), label_model())

        run = DeploymentRun(
            spec, str(spec_path), store, registry, deployer, evaluation_report, read_arms, context.log, context.run_id
        )
        decision = run.carry_out(
            rollback=config.rollback,
            strategy=config.strategy.value if config.strategy else spec.deployment.strategy,
            approver=config.approved_by or context.run.tags.get(APPROVER_TAG),
        )
        version, previous, reasons = decision.version, decision.previous, decision.reasons
        context.log.info(f"{spec.name} v{version.version} is champion and served at {decision.url}")
        return dg.Output(
            EndpointState(
                decision.url,
                version.version,
                log_prefix(spec.name),
                version.tags["reference_key"],
                previous.version if previous else None,
                decision.approved_by,
            ),
            metadata={
                "url": dg.MetadataValue.url(decision.url),
                "model_version": version.version,
                "previous_champion": previous.version if previous else "none",
                "approved_by": decision.approved_by,
                "action": decision.action,
                "audit_record": dg.MetadataValue.path(store.uri(decision.audit_key)),
                "serving_path": decision.serving_path,
                **({"decision": dg.MetadataValue.md(markdown_list(reasons))} if reasons else {}),
                **arms_metadata(decision.arms or decision.ended),
            },
        )

    return deployed_endpoint


def arms_metadata(record: dict | None) -> dict:
    """A rollout's per-arm figures as metadata: the numbers as JSON, the side-by-side table as Markdown."""
    if record is None:
        return {}
    return {
        "arms": dg.MetadataValue.json({k: v for k, v in record.items() if k != "table"}),
        "arms_table": dg.MetadataValue.md(record["table"]),
    }
