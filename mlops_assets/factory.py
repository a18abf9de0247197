"""Spec to Dagster: six assets per pipeline, keyed ``<pipeline>/<asset>``, in a group named after it.

The assets are thin: they read and write through the contracts (artifact store, registry, trainer,
deployer) and call the pure modules for the work. Heavy libraries load inside the asset bodies, so
loading the code location stays cheap.
"""

import base64
import functools
import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import dagster as dg
from pydantic import Field

from mlops_assets.alias_history import TRAIN, AliasMove, record_alias_move
from mlops_assets.contracts import ArtifactStore, EndpointDeployer, ModelRegistry, Trainer
from mlops_assets.feedback_asset import build_feedback_asset, external_assets
from mlops_assets.locations import EVALUATION_FOLDER, HOLDOUT_INPUTS, list_files, log_prefix
from mlops_assets.naming import (
    ADAPTATION_TAG,
    APPROVER_TAG,
    RETRAIN_TAG,
    TRIGGER_TAG,
    WINDOW_END_TAG,
    DriftStatus,
    asset_keys,
)
from mlops_assets.provenance import code_version
from mlops_assets.records import (
    EndpointState,
    EvaluationReport,
    FeatureSet,
    FeedbackSet,
    RawSnapshot,
    TrainedModel,
    TrainingRequest,
)
from mlops_assets.spec import PipelineSpec


class Strategy(StrEnum):
    replace = "replace"
    canary = "canary"
    shadow = "shadow"
    ab = "ab"


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


HOLDOUT_CHECK_ROWS = 10_000  # holdout rows a compiled fast path must reproduce before it serves


def _image(png: bytes, alt: str) -> str:
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


def build_pipeline_assets(spec: PipelineSpec, spec_path: Path) -> list[dg.AssetsDefinition]:
    """The six assets of one spec, with their checks."""
    base_dir = spec_path.parent
    key = asset_keys(spec.name)
    common = {"group_name": spec.name, "code_version": spec.spec_hash}
    has_feedback = spec.source.labels is not None
    feedback_in = {"feedback": dg.AssetIn(key["feedback"])} if has_feedback else {}

    @dg.asset(key=key["raw_data"], description=f"Immutable snapshot of {spec.source.path}.", **common)
    def raw_data(context: dg.AssetExecutionContext, store: ArtifactStore):
        import pyarrow as pa

        from mlops_assets.snapshot import content_hash, read_source

        source = read_source(spec, base_dir)
        digest = content_hash(source.frame)
        snapshot_key = f"{spec.name}/raw/{digest}.parquet"
        new = not store.exists(snapshot_key)
        size = store.write_table(snapshot_key, pa.Table.from_pandas(source.frame, preserve_index=False)) if new else 0
        context.log.info(f"{'wrote' if new else 'reused'} snapshot {snapshot_key}")
        for file, reason in source.unreadable_label_files.items():
            context.log.warning(f"skipped unreadable label file {file}: {reason}")
        if source.labels_conflicting_with_source:
            context.log.warning(
                f"{source.labels_conflicting_with_source} labels disagree with the source's own target; it was kept"
            )
        return dg.Output(
            RawSnapshot(snapshot_key, digest, len(source.frame)),
            data_version=dg.DataVersion(digest),
            metadata={
                "rows": len(source.frame),
                "columns": len(source.frame.columns),
                "content_hash": digest,
                "bytes_written": size,
                "new_snapshot": new,
                "snapshot": dg.MetadataValue.path(store.uri(snapshot_key)),
                "source_files": dg.MetadataValue.json(source.files),
                "label_files": dg.MetadataValue.json(source.label_files),
                "rows_waiting_for_labels": source.unlabeled_rows,
                "labels_conflicting_with_source": source.labels_conflicting_with_source,
                "unreadable_label_files": dg.MetadataValue.json(source.unreadable_label_files),
            },
        )

    @dg.asset(
        key=key["validated_features"],
        description="Rows that pass the schema (source and labelled production rows), split by id into training, "
        "the fixed holdout and the recent holdout; failing rows quarantined; weights from the training window and, "
        "for a drift without labels, importance weights.",
        ins={"raw_data": dg.AssetIn(key["raw_data"]), **feedback_in},
        check_specs=[
            dg.AssetCheckSpec(
                "rows_accounted_for",
                asset=key["validated_features"],
                description="rows in = rows kept + rows quarantined",
            ),
            dg.AssetCheckSpec(
                "quarantine_share",
                asset=key["validated_features"],
                blocking=True,
                description=f"at most {spec.schema_.max_quarantine_share:.1%} of rows quarantined",
            ),
        ],
        **common,
    )
    def validated_features(context: dg.AssetExecutionContext, store: ArtifactStore, raw_data: RawSnapshot, **inputs):
        from mlops_assets.training_data import write_training_set

        feedback: FeedbackSet | None = inputs.get("feedback")
        written = write_training_set(spec, store, raw_data, feedback, context.run.tags.get(ADAPTATION_TAG))
        if written.quarantine_key:
            context.log.warning(f"{written.rows_quarantined} rows quarantined in {store.uri(written.quarantine_key)}")
        share = written.rows_quarantined / max(written.rows_in, 1)
        yield dg.Output(
            written.features,
            data_version=dg.DataVersion(written.features.version),
            metadata={
                "rows_in": written.rows_in,
                "rows_kept": written.rows_kept,
                "rows_quarantined": written.rows_quarantined,
                **written.metadata,
                "quarantine": dg.MetadataValue.path(store.uri(written.quarantine_key))
                if written.quarantine_key
                else "none",
            },
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
            metadata={"share": share, "threshold": spec.schema_.max_quarantine_share},
        )

    @dg.asset(
        key=key["trained_model"],
        description=f"{spec.model.estimator or 'torch MLP'} trained and registered in MLflow as `challenger`. "
        "An automatic retraining whose training set is the champion's is not run: it could only copy it.",
        output_required=False,
        **common,
    )
    def trained_model(
        context: dg.AssetExecutionContext,
        store: ArtifactStore,
        registry: ModelRegistry,
        trainer: Trainer,
        validated_features: FeatureSet,
    ):
        trigger = context.run.tags.get(TRIGGER_TAG, "manual")
        champion = registry.by_alias(spec.name, "champion")
        automatic = context.run.tags.get(RETRAIN_TAG) == "true"
        same_rows = champion is not None and champion.tags.get("training_rows_hash") == validated_features.rows_hash
        if automatic and same_rows:
            context.log.warning(
                f"not retrained ({trigger}): the training rows and weights are champion v{champion.version}'s "
                f"({validated_features.rows_hash}), so a new version could only copy it; the champion stays"
            )
            return
        tags = {
            "dataset_hash": validated_features.dataset_hash,
            "features_version": validated_features.version,
            "training_rows_hash": validated_features.rows_hash,
            "feedback_hash": validated_features.feedback_hash or "none",
            "reference_key": validated_features.reference_key,
            "recent_holdout_key": validated_features.recent_holdout_key or "none",
            "adaptation": json.dumps(validated_features.adaptation) if validated_features.adaptation else "none",
            "training_set": validated_features.train_key,
            "training_rows_by_origin": json.dumps(validated_features.rows_by_origin),
            "spec_hash": spec.spec_hash,
            "trigger": trigger,
            "dagster_run_id": context.run_id,
            **code_version(spec_path),
        }
        request = TrainingRequest(
            spec_path=str(spec_path),
            train_uri=store.uri(validated_features.train_key),
            tracking_uri=registry.tracking_uri(),
            experiment_id=registry.experiment(spec.name),
            tags=tags,
        )
        challenger = registry.by_alias(spec.name, "challenger")
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
            "challenger", result["version"], challenger and challenger.version, TRAIN, trigger, context.run_id
        )
        record_alias_move(store, spec.name, move)
        yield dg.Output(
            TrainedModel(spec.name, result["version"], result["run_id"], validated_features, trigger),
            metadata={
                "model_version": result["version"],
                "mlflow_run_id": result["run_id"],
                "device": result["device"],
                "training_seconds": result["seconds"],
                "training_rows": result["rows"],
                "weighted": result["weighted"],
                "params": dg.MetadataValue.json(result["params"]),
                **{k: float(v) for k, v in result["train_metrics"].items()},
                **tags,
            },
        )

    @dg.asset(
        key=key["evaluation_report"],
        description="Challenger vs champion on the same holdout; the gate decides deployment.",
        check_specs=[
            dg.AssetCheckSpec(
                "gate",
                asset=key["evaluation_report"],
                blocking=True,
                description="thresholds and minimum gain over the champion",
            )
        ],
        **common,
    )
    def evaluation_report(
        context: dg.AssetExecutionContext,
        store: ArtifactStore,
        registry: ModelRegistry,
        trained_model: TrainedModel,
    ):
        from mlops_assets.drift_memory import acknowledge
        from mlops_assets.holdouts import judge
        from mlops_assets.model_card import model_card

        features = trained_model.features
        holdout = store.read_table(features.holdout_key).to_pandas()
        recent = (
            store.read_table(features.recent_holdout_key).to_pandas() if features.recent_holdout_key else holdout[:0]
        )
        challenger = registry.load(spec.name, trained_model.version)
        champion = registry.by_alias(spec.name, "champion")
        if champion is not None and champion.version == trained_model.version:
            champion = None
        champion_model = registry.load(spec.name, champion.version) if champion else None
        judgement = judge(spec, challenger, champion_model, holdout, recent)
        fixed, gate = judgement.by_name()["fixed"], judgement.gate
        metrics, champion_metrics = fixed.challenger, fixed.champion
        report = EvaluationReport(
            trained_model,
            metrics,
            champion.version if champion else None,
            champion_metrics,
            gate.passed,
            gate.reasons,
            judgement.as_json(),
        )
        if not gate.passed and features.adaptation and champion is not None:
            key_ = acknowledge(store, spec.name, champion.version, trained_model.version, features.adaptation)
            context.log.warning(
                f"known drift: v{trained_model.version}, weighted toward the drifted window, did not pass the "
                f"gate; champion v{champion.version} stays and the drift is acknowledged ({store.uri(key_)}): "
                "waiting for labels"
            )
        plots = _plots(challenger, holdout, spec)
        tags = registry.get(spec.name, trained_model.version).tags
        card = model_card(spec, report, tags, judgement.markdown())
        prefix = f"{spec.name}/reports/evaluation/v{trained_model.version}"
        for filename, data in {**plots, "model_card.md": card.encode()}.items():
            store.write_bytes(f"{prefix}/{filename}", data)
        # The holdout's inputs travel with the version: the endpoint checks a compiled fast path against them.
        holdout_inputs = holdout_inputs_parquet(holdout[spec.input_columns].head(HOLDOUT_CHECK_ROWS))
        files = {**plots, "model_card.md": card.encode(), HOLDOUT_INPUTS: holdout_inputs}
        registry.log_artifacts(trained_model.run_id, files, EVALUATION_FOLDER)
        registry.record(
            spec.name,
            trained_model.version,
            {"gate": "passed" if gate.passed else "failed"},
            {f"holdout_{k}": v for k, v in metrics.items()},
        )
        context.log.info("gate " + ("passed" if gate.passed else "FAILED") + ": " + "; ".join(gate.reasons))
        yield dg.Output(
            report,
            metadata={
                "model_version": trained_model.version,
                "champion_version": report.champion_version or "none",
                **{f"holdout_{k}": v for k, v in metrics.items()},
                **{f"champion_{k}": v for k, v in (champion_metrics or {}).items()},
                "holdouts": dg.MetadataValue.md(judgement.markdown()),
                "plots": dg.MetadataValue.md("\n\n".join(_image(png, name) for name, png in plots.items())),
                "model_card": dg.MetadataValue.md(card),
                "report_folder": dg.MetadataValue.path(store.uri(prefix)),
            },
        )
        yield dg.AssetCheckResult(
            check_name="gate",
            passed=gate.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "conditions": dg.MetadataValue.md("\n".join(f"- {r}" for r in gate.reasons) or "none"),
                **{f"threshold_{k}": v for k, v in spec.evaluation.gate.thresholds.items()},
                **{f"observed_{k}": v for k, v in metrics.items()},
            },
        )

    @dg.asset(
        key=key["deployed_endpoint"],
        description="The gated challenger promoted to `champion` and served by the endpoint.",
        **common,
    )
    def deployed_endpoint(
        context: dg.AssetExecutionContext,
        config: DeploymentConfig,
        store: ArtifactStore,
        registry: ModelRegistry,
        deployer: EndpointDeployer,
        evaluation_report: EvaluationReport,
    ):
        from mlops_assets.deployment import DeploymentRun

        @functools.cache
        def label_model():  # any version knows the pipeline's classes: loaded once, on first use
            return registry.load(spec.name, evaluation_report.model.version)

        def read_arms(since, until):
            from mlops_assets.arms import rollout_arms
            from mlops_assets.snapshot import read_labels

            return rollout_arms(spec, store, since, until, read_labels(spec, base_dir), label_model())

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
                **({"decision": dg.MetadataValue.md("\n".join(f"- {r}" for r in reasons))} if reasons else {}),
                **_arms_metadata(decision.arms or decision.ended),
            },
        )

    @dg.asset(
        key=key["drift_report"],
        description="Newest window of the inference log against the served model's training data.",
        deps=[key["validated_features"]],
        check_specs=[
            dg.AssetCheckSpec(
                "no_drift",
                asset=key["drift_report"],
                description="no input feature and not the prediction drifted (effect size confirmed by a test)",
            ),
            dg.AssetCheckSpec(
                "requests_accepted",
                asset=key["drift_report"],
                description=f"at most {spec.monitoring.max_rejected_share:.1%} of scoring requests rejected since "
                "the last report",
            ),
        ],
        **common,
    )
    def drift_report(
        context: dg.AssetExecutionContext,
        store: ArtifactStore,
        registry: ModelRegistry,
        deployer: EndpointDeployer,
        deployed_endpoint: EndpointState,
    ):
        import pandas as pd

        from mlops_assets.drift_memory import acknowledged, plan_adaptation
        from mlops_assets.monitoring import PREDICTION, build_drift_report
        from mlops_assets.snapshot import read_labels

        labels = read_labels(spec, base_dir) if spec.monitoring.performance is not None else pd.DataFrame()
        model = registry.load(spec.name, deployed_endpoint.model_version)
        end_row = context.run.tags.get(WINDOW_END_TAG)
        outcome = build_drift_report(
            spec, store, deployed_endpoint, model, labels, int(end_row) if end_row is not None else None
        )
        for key_ in outcome.window.skipped:
            context.log.warning(f"skipped unreadable inference log file {key_}")
        status, verdict, adaptation = DriftStatus(outcome.status), "", {}
        inputs = [f for f in outcome.drifted_features if f != PREDICTION]
        if outcome.drifted_features:
            known = acknowledged(store, spec.name, deployed_endpoint.model_version)
            if not inputs:
                status = DriftStatus.waiting_for_labels
                verdict = "only the prediction moved, not the inputs: importance weights have nothing to answer"
            elif known and set(inputs) <= set(known["features"]):
                status = DriftStatus.known_drift
                verdict = (
                    f"known drift: retraining did not help (v{known['challenger_version']}, weighted toward it, "
                    f"did not pass the gate on {known['at']}); v{deployed_endpoint.model_version} stays, "
                    "waiting for labels"
                )
            else:
                window = outcome.window.table.to_pandas()
                key_, reasons, adaptation = plan_adaptation(
                    spec, store, outcome.reference, window, inputs, context.run_id
                )
                if key_ is None:
                    status = DriftStatus.waiting_for_labels
                    verdict = (
                        "importance weights cannot answer this drift: " + "; ".join(reasons) + "; waiting for labels"
                    )
                else:
                    adaptation = {**adaptation, "window": key_}
                    verdict = f"importance weights can answer it (effective share {adaptation['effective_share']:.1%})"
        counts = _request_counts(context, deployer, spec.name, key["drift_report"])
        markdown = outcome.markdown + (f"\n\n**{status}**: {verdict}" if verdict else "")
        as_json = {**outcome.as_json, "status": str(status), "verdict": verdict, "adaptation": adaptation}
        report_key = f"{spec.name}/reports/drift/{context.run_id}"
        store.write_bytes(f"{report_key}.json", json.dumps(as_json, indent=2, default=str).encode())
        store.write_bytes(f"{report_key}.md", markdown.encode())
        performance = outcome.performance
        yield dg.Output(
            as_json,
            metadata={
                "drift_report_id": context.run_id,
                "status": str(status),
                "verdict": verdict or str(status),
                "model_version": deployed_endpoint.model_version,
                "window_rows": outcome.window.table.num_rows,
                "window_end": outcome.window.end or "none",
                "drift_reference": deployed_endpoint.reference_key,
                **counts.metadata,
                "skipped_log_files": len(outcome.window.skipped),
                "drifted_features": dg.MetadataValue.json(outcome.drifted_features),
                **({"adaptation_window": adaptation["window"]} if "window" in adaptation else {}),
                "report": dg.MetadataValue.md(markdown),
                "json": dg.MetadataValue.path(store.uri(f"{report_key}.json")),
                **(
                    {
                        f"online_{performance.metric}": performance.value,
                        "online_low": performance.low,
                        "online_high": performance.high,
                        "online_rows": performance.rows,
                        "performance_decayed": performance.decayed,
                    }
                    if performance
                    else {}
                ),
            },
        )
        yield dg.AssetCheckResult(
            check_name="no_drift",
            passed=not outcome.drifted_features,
            severity=dg.AssetCheckSeverity.WARN if status == DriftStatus.known_drift else dg.AssetCheckSeverity.ERROR,
            metadata={
                "status": str(status),
                "verdict": verdict or str(status),
                "drifted_features": dg.MetadataValue.json(outcome.drifted_features),
                "psi_threshold": spec.monitoring.psi_threshold,
                "wasserstein_threshold": spec.monitoring.wasserstein_threshold,
                "js_threshold": spec.monitoring.js_threshold,
            },
        )
        yield dg.AssetCheckResult(
            check_name="requests_accepted",
            passed=counts.share <= spec.monitoring.max_rejected_share,
            metadata={
                **counts.metadata,
                "rejected_share": counts.share,
                "threshold": spec.monitoring.max_rejected_share,
            },
        )

    assets = [raw_data, validated_features, trained_model, evaluation_report, deployed_endpoint, drift_report]
    if has_feedback:
        assets += [build_feedback_asset(spec, base_dir, common, key), *external_assets(spec, key)]
    if spec.batch is not None:
        assets.append(_batch_predictions_asset(spec, base_dir, common, key["deployed_endpoint"]))
    return assets


def _batch_predictions_asset(spec: PipelineSpec, base_dir: Path, common: dict, endpoint_key: dg.AssetKey):
    @dg.asset(
        key=dg.AssetKey([spec.name, "batch_predictions"]),
        description=f"{spec.batch.path} scored by the deployed champion, {spec.batch.batch_rows} rows at a time.",
        ins={"deployed_endpoint": dg.AssetIn(key=endpoint_key)},
        **common,
    )
    def batch_predictions(
        context: dg.AssetExecutionContext,
        store: ArtifactStore,
        registry: ModelRegistry,
        deployed_endpoint: EndpointState,
    ):
        import time

        from mlops_assets.batch import open_dataset, read_batches, score_batches

        files = list_files(spec.batch.path, base_dir)
        dataset = open_dataset(files)
        id_column = spec.id_column if spec.id_column in dataset.schema.names else None
        columns = spec.input_columns + ([id_column] if id_column else [])
        model = registry.load(spec.name, deployed_endpoint.model_version)
        output_key = f"{spec.name}/batch_predictions/{context.run_id}.parquet"
        started = time.perf_counter()
        batches = read_batches(dataset, columns, spec.batch.batch_rows)
        rows = score_batches(model, deployed_endpoint.model_version, batches, Path(store.uri(output_key)), id_column)
        seconds = time.perf_counter() - started
        return dg.Output(
            {"key": output_key, "rows": rows, "model_version": deployed_endpoint.model_version},
            metadata={
                "rows": rows,
                "model_version": deployed_endpoint.model_version,
                "rows_per_second": rows / seconds if seconds else 0.0,
                "input_files": dg.MetadataValue.json(files),
                "predictions": dg.MetadataValue.path(store.uri(output_key)),
            },
        )

    return batch_predictions


@dataclass(frozen=True)
class _RequestCounts:
    share: float  # rejected / (accepted + rejected) since the previous report; 0 when unknown
    metadata: dict


def _request_counts(context, deployer: EndpointDeployer, name: str, report_key: dg.AssetKey) -> _RequestCounts:
    """Requests the endpoint accepted and rejected since the previous drift report (its counters are read
    over the admin route; the previous reading is that report's metadata)."""
    from mlops_assets.monitoring import requests_since

    try:
        status = deployer.rollout_status(name)
        now = status["requests"]
    except Exception as exc:  # an endpoint that does not answer: the report goes on, and says so
        context.log.warning(f"could not read the endpoint's request counts: {exc}")
        return _RequestCounts(0.0, {"requests_counted": False})
    event = context.instance.get_latest_materialization_event(report_key)
    before = event.asset_materialization.metadata.get("endpoint_requests") if event else None
    accepted, rejected = requests_since(now, getattr(before, "value", None))
    metadata = {
        "endpoint_requests": dg.MetadataValue.json(now),
        "accepted_requests": accepted,
        "rejected_requests": rejected,
        "last_rejection": now.get("last_rejection") or "none",
        "inference_log": dg.MetadataValue.json(status.get("log", {})),  # rows written, dead-lettered, dropped
    }
    return _RequestCounts(rejected / max(accepted + rejected, 1), metadata)


def holdout_inputs_parquet(frame) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink)
    return sink.getvalue().to_pybytes()


def _arms_metadata(record: dict | None) -> dict:
    if record is None:
        return {}
    return {
        "arms": dg.MetadataValue.json({k: v for k, v in record.items() if k != "table"}),
        "arms_table": dg.MetadataValue.md(record["table"]),
    }


def _plots(model, holdout, spec) -> dict[str, bytes]:
    from mlops_assets.plots import confusion_matrix_png, residuals_png, roc_curve_png

    prediction = model.predict(holdout)
    y = model.encode_target(holdout[spec.target].to_numpy())
    if model.classes is None:
        return {"residuals.png": residuals_png(y, prediction.labels)}
    plots = {
        "confusion_matrix.png": confusion_matrix_png(
            y, model.encode_target(prediction.labels), [str(c) for c in model.classes]
        )
    }
    if len(model.classes) == 2:
        plots["roc.png"] = roc_curve_png(y, prediction.proba[:, 1], "challenger")
    return plots
