"""``evaluation_report``: the challenger against the champion on every holdout; the gate decides deployment.

A refused challenger is a decision of the loop, not a failure: the gate check fails with severity WARN (shown
in the UI, alerted as ``gate_failed``), the run goes on, and ``deployed_endpoint`` keeps the champion.

Plots and a model card go to the artifact store and into the asset's metadata; the holdout's inputs travel
with the version, so the endpoint can check a compiled fast path against them. A challenger weighted toward
a drifted window that does not pass the gate makes that drift known (acknowledged), so it starts no second
retraining.
"""

from typing import TYPE_CHECKING

import dagster as dg

from mlops_assets.assets.context import PipelineContext, markdown_image, markdown_list, pipeline_model, signature_once
from mlops_assets.assets.display import setting, shown
from mlops_assets.assets.kinds import Kind
from mlops_assets.contracts import ArtifactStore, ModelRegistry
from mlops_assets.data.locations import EVALUATION_FOLDER, HOLDOUT_INPUTS
from mlops_assets.governance.audit import append_event
from mlops_assets.naming import CHALLENGER, CHAMPION, RETRAIN_TAG, AlertEvent, StorePrefix, TrailEvent, store_key
from mlops_assets.records import EvaluationReport, TrainedModel

if TYPE_CHECKING:
    from mlops_assets.spec import PipelineSpec

HOLDOUT_CHECK_ROWS = 10_000  # holdout rows a compiled fast path must reproduce before it serves


def build_evaluation_report(pipeline: PipelineContext) -> dg.AssetsDefinition:
    spec, key = pipeline.spec, pipeline.keys["evaluation_report"]

    @dg.asset(
        key=key,
        ins={"trained_model": dg.AssetIn(pipeline.keys["trained_model"])},
        description="Challenger vs champion on the same holdout; the gate decides deployment.",
        kinds={Kind.mlflow, Kind.matplotlib},
        check_specs=[
            dg.AssetCheckSpec(
                "gate",
                asset=key,
                blocking=True,
                description="better than the champion on the holdout that stands for today's traffic, and the "
                "declared thresholds and gains; a refusal warns and keeps the champion",
            )
        ],
        **pipeline.common,
    )
    @signature_once
    def evaluation_report(
        context: dg.AssetExecutionContext,
        store: ArtifactStore,
        registry: ModelRegistry,
        trained_model: TrainedModel,
    ):
        from mlops_assets.evaluation.gate import combined, fairness_gate
        from mlops_assets.evaluation.holdouts import judge
        from mlops_assets.evaluation.model_card import card_figures, card_html, model_card
        from mlops_assets.monitoring.drift_memory import acknowledge

        features = trained_model.features
        holdout = store.read_table(features.holdout_key).to_pandas()
        recent = (
            store.read_table(features.recent_holdout_key).to_pandas() if features.recent_holdout_key else holdout[:0]
        )
        challenger = pipeline_model(registry.load(spec.name, trained_model.version))
        champion = registry.by_alias(spec.name, CHAMPION)
        if champion is not None and champion.version == trained_model.version:
            champion = None
        champion_model = pipeline_model(registry.load(spec.name, champion.version)) if champion else None
        automatic = context.run.tags.get(RETRAIN_TAG) == "true"  # a sensor's retraining, not a person's run
        judgement = judge(
            spec, challenger, champion_model, holdout, recent, champion.version if champion else None, automatic
        )
        figures = card_figures(spec, challenger, holdout)  # the fixed holdout: it carries every schema column
        fairness = fairness_gate(figures.fairness, spec.evaluation.fairness.limits.declared())
        fixed, gate = judgement.by_name()["fixed"], combined(judgement.gate, fairness)
        metrics, champion_metrics = fixed.challenger, fixed.champion
        report = EvaluationReport(
            trained_model,
            metrics,
            champion.version if champion else None,
            champion_metrics,
            gate.passed,
            gate.reasons,
            judgement.as_json(),
            [figure.as_json() for figure in figures.fairness],
        )
        if not gate.passed and features.adaptation and champion is not None:
            ack_key = acknowledge(store, spec.name, champion.version, trained_model.version, features.adaptation)
            context.log.warning(
                f"known drift: v{trained_model.version}, weighted toward the drifted window, did not pass the "
                f"gate; champion v{champion.version} stays and the drift is acknowledged ({store.uri(ack_key)}): "
                "waiting for labels"
            )
        plots = evaluation_plots(challenger, holdout, spec)
        tags = registry.get(spec.name, trained_model.version).tags
        card = model_card(spec, report, tags, judgement.markdown(), figures)
        page = card_html(card, f"Model card: {spec.name} version {trained_model.version}")
        prefix = store_key(spec.name, StorePrefix.evaluation_reports, f"v{trained_model.version}")
        files = {**plots, "model_card.md": card.encode(), "model_card.html": page.encode()}
        store_evaluation(spec, store, registry, trained_model, files, holdout)
        registry.describe(spec.name, trained_model.version, card)  # where MLflow's users look for it
        registry.record(
            spec.name,
            trained_model.version,
            {"gate": "passed" if gate.passed else "failed"},
            {f"holdout_{k}": v for k, v in metrics.items()},
        )
        gate_event = {"model_version": trained_model.version, "passed": gate.passed, "reasons": gate.reasons}
        gate_event |= {"champion_version": report.champion_version, "dagster_run_id": context.run_id}
        append_event(store, spec.name, TrailEvent.gate, gate_event)
        context.log.info("gate " + ("passed" if gate.passed else "FAILED") + ": " + "; ".join(gate.reasons))
        if not gate.passed:
            from mlops_assets.alerts.delivery import asset_link, send_alerts

            kept = f"champion v{champion.version} kept" if champion else "no champion"
            message = f"v{trained_model.version} not promoted, {kept}: " + "; ".join(gate.reasons)
            send_alerts(spec, AlertEvent.gate_failed, message, asset_link(*key.path), context.log)
        yield dg.Output(
            report,
            metadata=shown(
                {
                    "model_version": trained_model.version,
                    "champion_version": report.champion_version or "none",
                    **{f"holdout_{k}": v for k, v in metrics.items()},
                    **{f"champion_{k}": v for k, v in (champion_metrics or {}).items()},
                    "holdouts": dg.MetadataValue.md(judgement.markdown()),
                    "decided_on": judgement.deciding,
                    **({"concept": dg.MetadataValue.json(judgement.concept)} if judgement.concept else {}),
                    "plots": dg.MetadataValue.md("\n\n".join(markdown_image(png, n) for n, png in plots.items())),
                    "model_card": dg.MetadataValue.md(card),
                    "report_folder": dg.MetadataValue.path(store.uri(prefix)),
                }
            ),
        )
        yield gate_check(spec, gate, {**metrics, **{f"{f.name}_{f.column}": f.value for f in figures.fairness}})

    return evaluation_report


def gate_check(spec: "PipelineSpec", gate, metrics: dict[str, float]) -> dg.AssetCheckResult:
    """The blocking gate, with each condition's verdict, the thresholds and the observed metrics."""
    return dg.AssetCheckResult(
        check_name="gate",
        passed=gate.passed,
        severity=dg.AssetCheckSeverity.WARN,  # a refusal is the loop's decision: deployed_endpoint keeps the champion
        metadata=shown(
            {
                "conditions": dg.MetadataValue.md(markdown_list(gate.reasons) or "none"),
                **{f"threshold_{k}": setting(v) for k, v in spec.evaluation.gate.thresholds.items()},
                **{f"limit_{k}": setting(v) for k, v in spec.evaluation.fairness.limits.declared().items()},
                **{f"observed_{k}": v for k, v in metrics.items()},
            }
        ),
    )


def store_evaluation(
    spec: "PipelineSpec", store: ArtifactStore, registry: ModelRegistry, trained: TrainedModel, files, holdout
):
    """The report's files in the artifact store and with the version's run; the holdout's inputs travel with
    the version too, so the endpoint can check a compiled fast path against them."""
    prefix = store_key(spec.name, StorePrefix.evaluation_reports, f"v{trained.version}")
    for filename, data in files.items():
        store.write_bytes(f"{prefix}/{filename}", data)
    holdout_inputs = holdout_inputs_parquet(holdout[spec.input_columns].head(HOLDOUT_CHECK_ROWS))
    registry.log_artifacts(trained.run_id, {**files, HOLDOUT_INPUTS: holdout_inputs}, EVALUATION_FOLDER)


def holdout_inputs_parquet(frame) -> bytes:
    """The holdout's input columns as parquet bytes, stored beside the version it checks."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink)
    return sink.getvalue().to_pybytes()


def evaluation_plots(model, holdout, spec: "PipelineSpec") -> dict[str, bytes]:
    """PNG plots by file name: residuals for regression, a confusion matrix (and ROC for binary) otherwise."""
    from mlops_assets.evaluation.plots import confusion_matrix_png, residuals_png, roc_curve_png

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
        plots["roc.png"] = roc_curve_png(y, prediction.proba[:, 1], CHALLENGER)
    return plots
