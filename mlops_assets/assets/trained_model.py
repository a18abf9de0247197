"""``trained_model``: the spec's estimator trained by the trainer resource and registered as ``challenger``.

Every version is tagged with what it learnt from (dataset hash, training rows and their origins, feedback,
adaptation), the code and spec that made it, and its trigger. An automatic retraining whose training rows
and weights are those of any registered version (the champion's, a refused challenger's, a version promoted
while it waited) is not run: it could only copy that version. The audit trail keeps each
trigger (with whether it trained), each registration and the move of ``challenger``.
"""

import hashlib
import json
from typing import TYPE_CHECKING

import dagster as dg

from mlops_assets.assets.context import PipelineContext, signature_once
from mlops_assets.assets.display import shown
from mlops_assets.assets.kinds import Kind, model_kind
from mlops_assets.contracts import ArtifactStore, ModelRegistry, Trainer
from mlops_assets.governance.alias_history import TRAIN, AliasMove, record_alias_move
from mlops_assets.governance.audit import append_event
from mlops_assets.model.provenance import code_version
from mlops_assets.naming import (
    CHALLENGER,
    FEATURE_VIEW_TAG,
    RETRAIN_TAG,
    TRIGGER_TAG,
    StorePrefix,
    TrailEvent,
    store_key,
)
from mlops_assets.records import FeatureSet, TrainedModel, TrainingRequest

if TYPE_CHECKING:
    from mlops_assets.spec import PipelineSpec


def build_trained_model(pipeline: PipelineContext) -> dg.AssetsDefinition:
    spec, spec_path = pipeline.spec, pipeline.spec_path

    @dg.asset(
        key=pipeline.keys["trained_model"],
        ins={"validated_features": dg.AssetIn(pipeline.keys["validated_features"])},
        description=f"{spec.model.estimator or 'torch MLP'} trained and registered in MLflow as `{CHALLENGER}`. "
        "An automatic retraining whose training set is a registered version's is not run: it could only copy it.",
        output_required=False,
        kinds={model_kind(spec), Kind.mlflow},
        **pipeline.common,
    )
    @signature_once
    def trained_model(
        context: dg.AssetExecutionContext,
        store: ArtifactStore,
        registry: ModelRegistry,
        trainer: Trainer,
        validated_features: FeatureSet,
    ):
        trigger = context.run.tags.get(TRIGGER_TAG, "manual")
        automatic = context.run.tags.get(RETRAIN_TAG) == "true"
        outcome = "trains"
        if automatic and (twins := registry.tagged(spec.name, "training_rows_hash", validated_features.rows_hash)):
            versions = ", ".join(f"v{twin.version}" for twin in twins)
            outcome = (
                f"not retrained: the training rows and weights are those of {versions} "
                f"({validated_features.rows_hash}), so a new version could only copy one; the champion stays"
            )
        if automatic or trigger != "manual":
            event = {"trigger": trigger, "automatic": automatic, "outcome": outcome, "dagster_run_id": context.run_id}
            append_event(store, spec.name, TrailEvent.trigger, event)
        if outcome != "trains":
            context.log.warning(f"{outcome} ({trigger})")
            return
        code = code_version(spec_path)
        tags = {
            **version_tags(validated_features),
            "spec_hash": spec.spec_hash,
            "trigger": trigger,
            "dagster_run_id": context.run_id,
            **code,
        }
        request = TrainingRequest(
            spec_path=str(spec_path),
            train_uri=store.uri(validated_features.train_key),
            tracking_uri=registry.tracking_uri(),
            experiment_id=registry.experiment(spec.name),
            tags=tags,
            checkpoint_uri=store.uri(checkpoint_key(spec, validated_features, code)) if spec.model.torch else None,
        )
        challenger = registry.by_alias(spec.name, CHALLENGER)
        try:
            result = trainer.train(context, request)
        except BaseException:
            # a trainer that died (killed, out of memory) cannot end its MLflow run: it would stay RUNNING
            try:
                ended = registry.fail_unfinished_runs(spec.name, context.run_id)
                context.log.warning(f"training failed; MLflow run(s) it left running ended as FAILED: {ended}")
            except Exception as exc:
                context.log.warning(f"training failed, and its MLflow runs could not be ended: {exc!r}")
            raise
        move = AliasMove(
            CHALLENGER, result.version, challenger.version if challenger else None, TRAIN, trigger, context.run_id
        )
        registration = {"model_version": result.version, "mlflow_run_id": result.run_id, **tags}
        append_event(store, spec.name, TrailEvent.registration, registration)
        record_alias_move(store, spec.name, move)
        yield dg.Output(
            TrainedModel(spec.name, result.version, result.run_id, validated_features, trigger),
            metadata={
                **shown(
                    {
                        "model_version": result.version,
                        "mlflow_run_id": result.run_id,
                        "device": result.device,
                        "training_seconds": result.seconds,
                        "training_rows": result.rows,
                        "weighted": result.weighted,
                        **{k: float(v) for k, v in result.train_metrics.items()},
                        **tags,
                    }
                ),
                "params": dg.MetadataValue.json(result.params),  # settings as given: not rounded
            },
        )

    return trained_model


def version_tags(features: FeatureSet) -> dict[str, str]:
    """What a version learnt from, as registry tags: enough to read its exact training set back."""
    return {
        "dataset_hash": features.dataset_hash,
        "features_version": features.version,
        "training_rows_hash": features.rows_hash,
        "feedback_hash": features.feedback_hash or "none",
        "reference_key": features.reference_key,
        "recent_holdout_key": features.recent_holdout_key or "none",
        "adaptation": json.dumps(features.adaptation) if features.adaptation else "none",
        "concept_change": json.dumps(features.concept_change) if features.concept_change else "none",
        "training_set": features.train_key,
        "training_rows_by_origin": json.dumps(features.rows_by_origin),
        **{f"{FEATURE_VIEW_TAG}{view}": digest for view, digest in features.views.items()},
    }


def checkpoint_key(spec: "PipelineSpec", features: FeatureSet, code: dict[str, str]) -> str:
    """Where a torch training keeps its last epoch, named by what decides its weights: the training set, the
    model section and the code that trains (``code_version``). A retried step or a restarted pod finds it and
    resumes; a training of other rows, settings or code never reads it."""
    identity = [features.version, features.rows_hash, spec.model.model_dump(mode="json")]
    identity += [code["git_sha"], code["package_version"]]
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    return store_key(spec.name, StorePrefix.checkpoints, f"{digest}.pt")
