"""``deployed_endpoint``: the gated challenger promoted to ``champion`` and served, by the spec's rollout.

The asset is wiring: the decision (promote, roll out, roll back; keep the champion when the gate refused the
challenger or the champion moved since; put the champion back when the endpoint cannot load a version; audit
it) lives in ``rollout.deployment.DeploymentRun``. A kept champion is a successful run that materializes
nothing, its outcome in the run's ``mlops/outcome`` tag and the trail. The ``approval`` check says whether a
person's approval was needed and found: a challenger waiting for one is not promoted, the asset is not
materialized, and the failed check says how to approve it.
"""

import functools

import dagster as dg
from pydantic import Field

from mlops_assets.assets.context import PipelineContext, markdown_list, signature_once
from mlops_assets.assets.display import shown
from mlops_assets.assets.kinds import Kind
from mlops_assets.contracts import ArtifactStore, EndpointDeployer, ModelRegistry
from mlops_assets.data.locations import log_prefix
from mlops_assets.naming import APPROVER_TAG, OUTCOME_TAG, Strategy
from mlops_assets.records import EndpointState, EvaluationReport


class DeploymentConfig(dg.Config):
    rollback: bool = Field(
        default=False,
        description="Move `champion` back to the version it replaced, instead of promoting the evaluated challenger.",
    )
    approved_by: str | None = Field(
        default=None,
        description="Who approves; default: the run tag `mlops/approved_by`, else an `mlops-assets approve` of the "
        "challenger in the audit trail, else the automatic gate. Where the spec requires approval, it is recorded "
        "in the audit trail as an approval.",
    )
    strategy: Strategy | None = Field(
        default=None,
        description="Override the spec's rollout strategy for this run; `replace` promotes the challenger of a "
        "running shadow or ab rollout (a person's decision).",
    )


def build_deployed_endpoint(pipeline: PipelineContext) -> dg.AssetsDefinition:
    spec, spec_path, key = pipeline.spec, pipeline.spec_path, pipeline.keys["deployed_endpoint"]

    @dg.asset(
        key=key,
        ins={"evaluation_report": dg.AssetIn(pipeline.keys["evaluation_report"])},
        description="The gated challenger promoted to `champion` and served by the endpoint.",
        check_specs=[
            dg.AssetCheckSpec(
                "approval", asset=key, description="a person approved the promotion, where the spec requires it"
            )
        ],
        output_required=False,
        kinds={Kind.mlflow, Kind.python},
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
        from mlops_assets.governance.anchors import anchor_metadata
        from mlops_assets.rollout.deployment import AwaitingApproval, ChampionKept, DeploymentRun

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
        strategy = config.strategy.value if config.strategy else spec.deployment.strategy
        approver = config.approved_by or context.run.tags.get(APPROVER_TAG)
        decision = run.carry_out(rollback=config.rollback, strategy=strategy, approver=approver)
        anchor = anchor_metadata(store, decision.audit_key)  # the trail's newest record, kept outside the store
        if isinstance(decision, AwaitingApproval):
            context.log.warning(decision.reason)
            yield approval_check(decision.reason, False, strategy, anchor)
            return
        if isinstance(decision, ChampionKept):  # the loop's decision: the run succeeds and says so
            context.instance.add_run_tags(context.run_id, {OUTCOME_TAG: decision.outcome})
            context.log.info(f"{decision.outcome}: " + "; ".join(decision.reasons))
            yield approval_check("nothing promoted: " + decision.outcome, True, strategy, anchor)
            return
        version, previous, reasons = decision.version, decision.previous, decision.reasons
        context.instance.add_run_tags(context.run_id, {OUTCOME_TAG: f"{decision.action}: v{version.version} serves"})
        context.log.info(f"{spec.name} v{version.version} is champion and served at {decision.url}")
        yield dg.Output(
            EndpointState(
                decision.url,
                version.version,
                log_prefix(spec.name),
                version.tags["reference_key"],
                previous.version if previous else None,
                decision.approved_by,
            ),
            metadata=shown(
                {
                    "url": dg.MetadataValue.url(decision.url),
                    "model_version": version.version,
                    "previous_champion": previous.version if previous else "none",
                    "approved_by": decision.approved_by,
                    "action": decision.action.value,  # Dagster stores plain text, not an enum
                    "serving_path": decision.serving_path,
                    **({"decision": dg.MetadataValue.md(markdown_list(reasons))} if reasons else {}),
                    **arms_metadata(decision.arms or decision.ended),
                    **anchor,  # audit_record, audit_seq, audit_hash: the record `mlops-assets audit verify` checks
                }
            ),
        )
        approval = decision.approval
        required = not config.rollback and spec.deployment.approval_required(strategy)
        if approval:
            verdict = f"approved by {approval['approved_by']} at {approval['time']}: {approval['reason']}"
        elif config.rollback:
            verdict = "a rollback: a person's decision, no approval needed"
        else:
            verdict = "a redeploy: nothing promoted" if required else f"no approval required for {strategy}"
        yield approval_check(verdict, True, strategy, anchor)

    return deployed_endpoint


def approval_check(verdict: str, passed: bool, strategy: str, anchor: dict) -> dg.AssetCheckResult:
    """Whether the promotion had the approval the spec asks for; a failure says how to give it. ``anchor``: the
    trail record the run wrote last (``governance.anchors``), kept with a run that materializes nothing too."""
    return dg.AssetCheckResult(
        check_name="approval",
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"verdict": verdict, "strategy": strategy, **anchor},
    )


def arms_metadata(record: dict | None) -> dict:
    """A rollout's per-arm figures as metadata: the numbers as JSON, the side-by-side table as Markdown."""
    if record is None:
        return {}
    return {
        "arms": dg.MetadataValue.json({k: v for k, v in record.items() if k != "table"}),
        "arms_table": dg.MetadataValue.md(record["table"]),
    }
