"""Asset checks on ``deployed_endpoint`` that run apart from a deployment, as the endpoint checks' sensor
(``mlops_assets.sensors.endpoint_checks``) requests them: the serving objectives of ``monitoring.slo`` and the share of
rejected requests (``schema_break``) on the endpoint's telemetry snapshots, and training/serving skew on the
inference log's sampled rows.

Wiring only: ``monitoring.slo``, ``monitoring.schema_break`` and ``monitoring.skew`` judge, these read the store
and the registry, report each verdict with what was observed and the threshold, and alert (``slo_failed``,
``schema_break``, ``skew``) on a failure. An SLO check also says whether its failure rolls ``champion`` back and
to which version: the sensor acts on that.
"""

import time
from typing import TYPE_CHECKING

import dagster as dg

from mlops_assets.assets.context import PipelineContext, markdown_list, pipeline_model, signature_once
from mlops_assets.assets.display import setting, shown
from mlops_assets.contracts import ArtifactStore, ModelRegistry
from mlops_assets.data.locations import log_prefix
from mlops_assets.monitoring.slo import objectives
from mlops_assets.naming import CHAMPION, AlertEvent, EndpointCheck

if TYPE_CHECKING:
    from mlops_assets.feature_views.training import JoinedView

DESCRIPTIONS = {
    EndpointCheck.latency_slo: "p99 scoring latency over the SLO window within monitoring.slo.latency_p99_ms",
    EndpointCheck.error_rate_slo: "share of scoring requests failed on the endpoint's side (5xx) over the SLO "
    "window within monitoring.slo.max_error_rate",
    EndpointCheck.skew: "sampled served features and predictions the same when featurised offline as the training "
    "does, within monitoring.skew.tolerance",
    EndpointCheck.schema_break: "share of scoring requests rejected (400: a missing column, an unseen category, a "
    "bad value) over monitoring.schema_break.window_minutes within monitoring.max_rejected_share",
}


def build_endpoint_checks(pipeline: PipelineContext) -> list[dg.AssetChecksDefinition]:
    """The schema-break and skew checks always; the SLO checks of the objectives the spec sets, when it has
    ``monitoring.slo``."""
    checks = [build_schema_break_check(pipeline), build_skew_check(pipeline)]
    if pipeline.spec.monitoring.slo is not None:
        checks.insert(0, build_slo_checks(pipeline))
    return checks


def build_slo_checks(pipeline: PipelineContext) -> dg.AssetChecksDefinition:
    spec, key = pipeline.spec, pipeline.keys["deployed_endpoint"]
    slo = spec.monitoring.slo
    assert slo is not None  # built only for a spec that sets monitoring.slo (build_endpoint_checks)

    @dg.multi_asset_check(
        name=f"{spec.name}__slo",
        specs=[dg.AssetCheckSpec(check.value, asset=key, description=DESCRIPTIONS[check]) for check in objectives(slo)],
        description=f"The serving objectives over the last {slo.window_minutes:g} min of the endpoint's telemetry.",
        **pipeline.op_tags,
    )
    @signature_once
    def slo_checks(context: dg.AssetCheckExecutionContext, store: ArtifactStore, registry: ModelRegistry):
        from mlops_assets.alerts.delivery import asset_link, send_alerts
        from mlops_assets.monitoring.slo import judge_slo, rollback_decision
        from mlops_assets.serving.telemetry import stored_snapshots, summarise

        end = time.time()
        start = end - slo.window_minutes * 60
        snapshots = stored_snapshots(store, log_prefix(spec.name), start)
        summary = summarise(snapshots, start, end)
        verdicts = judge_slo(slo, summary)
        champion = registry.by_alias(spec.name, CHAMPION)
        version = champion.version if champion else None
        promoted_at, target = champion_history(store, spec.name, version)
        decision = rollback_decision(slo, snapshots, verdicts, version, promoted_at, target)
        failed = [v for v in verdicts if not v.passed]
        if failed:
            message = "; ".join(v.message for v in failed) + f"; {decision.reason}"
            send_alerts(spec, AlertEvent.slo_failed, message, asset_link(*key.path), context.log)
        for verdict in verdicts:
            observed = "none" if verdict.observed is None else dg.MetadataValue.float(verdict.observed)
            # the latency's observed value and threshold in ms, the error rate's as a share of scoring requests
            yield dg.AssetCheckResult(
                asset_key=key,
                check_name=verdict.check.value,
                passed=verdict.passed,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata=shown(
                    {
                        "verdict": verdict.message,
                        "observed": observed,
                        "threshold": setting(verdict.threshold),
                        "requests": verdict.requests,
                        "min_requests": setting(verdict.min_requests),
                        "requests_by_status": dg.MetadataValue.json(summary["requests_by_status"]),
                        "window_start": dg.MetadataValue.timestamp(verdict.window_start),
                        "window_minutes": setting(slo.window_minutes),
                        "model_version": version or "none",
                        "rollback": decision.reason,
                        "rollback_to": decision.target if not verdict.passed and decision.target else "none",
                    }
                ),
            )

    return slo_checks


def champion_history(store: ArtifactStore, pipeline: str, champion: str | None) -> tuple[str | None, str | None]:
    """When ``champion`` was last made champion (ISO time, from the alias history) and the version a rollback
    would return to; ``None`` for what the history cannot say."""
    from mlops_assets.governance.alias_history import RollbackError, read_alias_moves, rollback_target

    if champion is None:
        return None, None
    moves = read_alias_moves(store, pipeline, CHAMPION)
    promoted_at = next((m.time for m in reversed(moves) if m.version == champion), None)
    try:
        return promoted_at, rollback_target(pipeline, moves, champion)
    except RollbackError:
        return promoted_at, None


def build_schema_break_check(pipeline: PipelineContext) -> dg.AssetChecksDefinition:
    spec, key = pipeline.spec, pipeline.keys["deployed_endpoint"]
    settings, threshold = spec.monitoring.schema_break, spec.monitoring.max_rejected_share
    check = EndpointCheck.schema_break

    @dg.asset_check(asset=key, name=check.value, description=DESCRIPTIONS[check], **pipeline.op_tags)
    @signature_once
    def schema_break_check(context: dg.AssetCheckExecutionContext, store: ArtifactStore):
        from mlops_assets.alerts.delivery import asset_link, send_alerts
        from mlops_assets.monitoring.schema_break import judge_schema_break
        from mlops_assets.serving.telemetry import stored_snapshots, summarise

        end = time.time()
        start = end - settings.window_minutes * 60
        summary = summarise(stored_snapshots(store, log_prefix(spec.name), start), start, end)
        verdict = judge_schema_break(settings, threshold, summary)
        if not verdict.passed:
            send_alerts(spec, AlertEvent.schema_break, verdict.message, asset_link(*key.path), context.log)
        causes = [cause.describe(verdict.requests) for cause in verdict.causes]
        return dg.AssetCheckResult(
            passed=verdict.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata=shown(
                {
                    "verdict": verdict.message,
                    "observed": "none" if verdict.observed is None else dg.MetadataValue.float(verdict.observed),
                    "threshold": setting(threshold),
                    "requests": verdict.requests,
                    "rejected": verdict.rejected,
                    "min_requests": setting(verdict.min_requests),
                    "rejections": dg.MetadataValue.json(
                        [
                            {"column": c.column, "rule": c.rule, "requests": c.requests, "example": c.example}
                            for c in verdict.causes
                        ]
                    ),
                    "causes": dg.MetadataValue.md(markdown_list(causes) or "none"),
                    "flagged_rows": summary["invalid_rows"],  # scored and logged under on_invalid: flag
                    "window_start": dg.MetadataValue.timestamp(verdict.window_start),
                    "window_minutes": setting(settings.window_minutes),
                }
            ),
        )

    return schema_break_check


def build_skew_check(pipeline: PipelineContext) -> dg.AssetChecksDefinition:
    spec, key = pipeline.spec, pipeline.keys["deployed_endpoint"]
    skew = spec.monitoring.skew

    @dg.asset_check(
        asset=key, name=EndpointCheck.skew.value, description=DESCRIPTIONS[EndpointCheck.skew], **pipeline.op_tags
    )
    @signature_once
    def skew_check(context: dg.AssetCheckExecutionContext, store: ArtifactStore, registry: ModelRegistry):
        from mlops_assets.alerts.delivery import asset_link, send_alerts
        from mlops_assets.monitoring.log_window import newest_window
        from mlops_assets.monitoring.skew import judge_skew, newest_sampled

        # the newest sampled rows are among the newest rows * sample_every logged ones: the read stays bounded
        window = newest_window(store, log_prefix(spec.name), skew.rows * skew.sample_every)
        sample = newest_sampled(window.table, skew.rows)
        versions = set(sample.column("model_version").to_pylist()) if sample.num_rows else set()
        # the looked-up view features, against the views' newest offline snapshots at the logged time
        views: tuple[JoinedView, ...] = ()
        if spec.features.views and sample.num_rows:
            from mlops_assets.feature_views.training import read_view_join

            views = read_view_join(store, spec.features.views, pipeline.views).views
        models = {v: pipeline_model(registry.load(spec.name, v)) for v in versions}
        verdict = judge_skew(spec, sample, models, skew.tolerance, views)
        mismatches = [str(m) for m in verdict.mismatches]
        if mismatches:
            message = f"{verdict.message}: {'; '.join(mismatches)}"
            send_alerts(spec, AlertEvent.skew, message, asset_link(*key.path), context.log)
        return dg.AssetCheckResult(
            passed=verdict.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata=shown(
                {
                    "verdict": verdict.message,
                    "largest_difference": verdict.largest,
                    "tolerance": setting(skew.tolerance),
                    "rows_compared": verdict.rows,
                    "rows_by_version": dg.MetadataValue.json(verdict.by_version),
                    "flagged_rows_left_out": verdict.left_out,
                    "mismatches": dg.MetadataValue.md(markdown_list(mismatches) or "none"),
                    "skipped_log_files": len(window.skipped),
                }
            ),
        )

    return skew_check
