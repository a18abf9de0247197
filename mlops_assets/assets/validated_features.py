"""``validated_features``: the rows that pass the schema, split by id into training and holdouts.

Source rows and labelled production rows are validated together; failing rows are quarantined with the
reason, and ``rows in = rows kept + rows quarantined`` is a check. The training window weights the rows,
and a retraining that answers a drift without labels adds importance weights (``ADAPTATION_TAG``). A spec that
references feature views depends on their assets: its source rows are joined with their newest snapshots as of
each row's time before validation, and a view's new materialization requests this asset again.
"""

import dagster as dg

from mlops_assets.assets.context import PipelineContext, signature_once
from mlops_assets.assets.display import setting, shown
from mlops_assets.assets.kinds import Kind
from mlops_assets.contracts import ArtifactStore
from mlops_assets.naming import ADAPTATION_TAG, FEATURE_VIEWS, feature_view_key
from mlops_assets.records import FeedbackSet, RawSnapshot


def build_validated_features(pipeline: PipelineContext) -> dg.AssetsDefinition:
    spec, key = pipeline.spec, pipeline.keys["validated_features"]
    feedback_in = {"feedback": dg.AssetIn(pipeline.keys["feedback"])} if pipeline.has_feedback else {}
    views = [feature_view_key(reference.view) for reference in spec.features.views]

    @dg.asset(
        key=key,
        description="Rows that pass the schema (source and labelled production rows), split by id into training, "
        "the fixed holdout and the recent holdout; failing rows quarantined; weights from the training window and, "
        "for a drift without labels, importance weights.",
        ins={"raw_data": dg.AssetIn(pipeline.keys["raw_data"]), **feedback_in},
        deps=views,
        automation_condition=view_updated() if views else None,
        kinds={Kind.pandera, Kind.parquet},
        check_specs=[
            dg.AssetCheckSpec("rows_accounted_for", asset=key, description="rows in = rows kept + rows quarantined"),
            dg.AssetCheckSpec(
                "quarantine_share",
                asset=key,
                blocking=True,
                description=f"at most {spec.schema_.max_quarantine_share:.1%} of rows quarantined",
            ),
        ],
        **pipeline.common,
    )
    @signature_once
    def validated_features(context: dg.AssetExecutionContext, store: ArtifactStore, raw_data: RawSnapshot, **inputs):
        from mlops_assets.data.training_data import write_training_set
        from mlops_assets.feature_views.training import read_view_join

        feedback: FeedbackSet | None = inputs.get("feedback")
        join = read_view_join(store, spec.features.views, pipeline.views) if views else None
        adapt_to = context.run.tags.get(ADAPTATION_TAG)
        written = write_training_set(spec, store, raw_data, feedback, adapt_to, join)
        if written.quarantine_key:
            context.log.warning(f"{written.rows_quarantined} rows quarantined in {store.uri(written.quarantine_key)}")
        share = written.rows_quarantined / max(written.rows_in, 1)
        yield dg.Output(
            written.features,
            data_version=dg.DataVersion(written.features.version),
            metadata=shown(
                {
                    "rows_in": written.rows_in,
                    "rows_kept": written.rows_kept,
                    "rows_quarantined": written.rows_quarantined,
                    **written.metadata,
                    "quarantine": dg.MetadataValue.path(store.uri(written.quarantine_key))
                    if written.quarantine_key
                    else "none",
                }
            ),
        )
        yield dg.AssetCheckResult(
            check_name="rows_accounted_for",
            passed=written.rows_in == written.rows_kept + written.rows_quarantined,
            metadata={
                "rows_in": written.rows_in,
                "rows_kept": written.rows_kept,
                "rows_quarantined": written.rows_quarantined,
            },
        )
        yield dg.AssetCheckResult(
            check_name="quarantine_share",
            passed=share <= spec.schema_.max_quarantine_share,
            metadata=shown({"share": share, "threshold": setting(spec.schema_.max_quarantine_share)}),
        )

    return validated_features


def view_updated() -> dg.AutomationCondition:
    """Requested when a feature view it joins was materialized, unless another of its inputs is missing or a run
    is already at work: a view change re-makes the training set of every spec that uses it, and nothing else
    (training and deployment stay with the sensors and the retraining policy)."""
    updated = dg.AutomationCondition.any_deps_match(dg.AutomationCondition.newly_updated()).allow(
        dg.AssetSelection.groups(FEATURE_VIEWS)
    )
    return (
        updated
        & ~dg.AutomationCondition.any_deps_missing()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("feature view updated")
