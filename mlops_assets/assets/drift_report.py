"""``drift_report``: the newest window of the inference log against what the served model learnt from.

Each report says what the drift means for the loop (``DriftStatus``): weights can answer it (a retraining may
run), only labels can, or a weighted retraining already failed to help (known drift). It also counts the
scoring requests the endpoint rejected since the previous report: a feature that stops arriving is never
logged, and this is where it is still seen. Beside the drift, it shows what the endpoint's telemetry says of
the same time: requests, the share failed on its side and latency; and a plot of each drifted feature, the
reference against the window, stored beside the report and shown in its metadata.
"""

import datetime as dt
import json
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import dagster as dg

from mlops_assets.assets.context import PipelineContext, markdown_image, pipeline_model, signature_once
from mlops_assets.assets.display import setting, shown
from mlops_assets.assets.kinds import Kind
from mlops_assets.contracts import ArtifactStore, EndpointDeployer, ModelRegistry
from mlops_assets.data.locations import drift_report_key
from mlops_assets.naming import WINDOW_END_TAG, AlertEvent, DriftStatus
from mlops_assets.records import DriftReportMetadata, EndpointState

if TYPE_CHECKING:
    from mlops_assets.spec import PipelineSpec


def build_drift_report(pipeline: PipelineContext) -> dg.AssetsDefinition:
    spec, key = pipeline.spec, pipeline.keys["drift_report"]

    @dg.asset(
        key=key,
        ins={"deployed_endpoint": dg.AssetIn(pipeline.keys["deployed_endpoint"])},
        description="Newest window of the inference log against the served model's training data.",
        deps=[pipeline.keys["validated_features"]],
        kinds={Kind.scipy, Kind.matplotlib},
        check_specs=[
            dg.AssetCheckSpec(
                "no_drift",
                asset=key,
                description="no input feature and not the prediction drifted (effect size confirmed by a test)",
            ),
            dg.AssetCheckSpec(
                "requests_accepted",
                asset=key,
                description=f"at most {spec.monitoring.max_rejected_share:.1%} of scoring requests rejected since "
                "the last report",
            ),
        ],
        **pipeline.common,
    )
    @signature_once
    def drift_report(
        context: dg.AssetExecutionContext,
        store: ArtifactStore,
        registry: ModelRegistry,
        deployer: EndpointDeployer,
        deployed_endpoint: EndpointState,
    ):
        import pandas as pd

        from mlops_assets.data.snapshot import read_labels
        from mlops_assets.monitoring.estimation import NotEstimable
        from mlops_assets.monitoring.performance import estimated_metadata, served_calibrator
        from mlops_assets.monitoring.report import build_drift_report

        labels = read_labels(spec, pipeline.base_dir) if spec.monitoring.performance is not None else pd.DataFrame()
        model = pipeline_model(registry.load(spec.name, deployed_endpoint.model_version))
        estimating = spec.monitoring.performance is not None and spec.monitoring.performance.estimated
        version = registry.get(spec.name, deployed_endpoint.model_version) if estimating else None
        training_set = version.tags.get("training_set") if version else None
        end_row = context.run.tags.get(WINDOW_END_TAG)
        try:
            calibrator = served_calibrator(spec, store, model, training_set)
        except NotEstimable as exc:  # the spec asks what this model's scores cannot give: drift still matters
            context.log.error(str(exc))
            calibrator = None
        outcome = build_drift_report(
            spec, store, deployed_endpoint, model, labels, int(end_row) if end_row is not None else None, calibrator
        )
        for skipped in outcome.window.skipped:
            context.log.warning(f"skipped unreadable inference log file {skipped}")
        status, verdict, adaptation = drift_verdict(spec, store, outcome, deployed_endpoint, context.run_id)
        counts = _request_counts(context, deployer, spec.name, key)
        markdown = outcome.markdown + (f"\n\n**{status}**: {verdict}" if verdict else "")
        as_json = {**outcome.as_json, "status": str(status), "verdict": verdict, "adaptation": adaptation}
        report_key = drift_report_key(spec.name, dt.datetime.now(dt.UTC), context.run_id)
        plots = feature_plots(outcome, model, deployed_endpoint.model_version)
        for plot in plots:
            store.write_bytes(f"{report_key}/{plot.filename}", plot.png)
        store.write_bytes(f"{report_key}.json", json.dumps(as_json, indent=2, default=str).encode())
        store.write_bytes(f"{report_key}.md", (markdown + stored_plots_markdown(report_key, plots)).encode())
        if status in (DriftStatus.drifted, DriftStatus.waiting_for_labels):  # a known drift was announced before
            from mlops_assets.alerts.delivery import asset_link, send_alerts

            message = f"{status} in {outcome.window.end or 'the newest window'}: {outcome.drifted_features}"
            send_alerts(spec, AlertEvent.drift, f"{message}; {verdict}", asset_link(*key.path), context.log)
        report = DriftReportMetadata(
            drift_report_id=context.run_id,
            status=str(status),
            verdict=verdict or str(status),
            model_version=deployed_endpoint.model_version,
            window_rows=outcome.window.table.num_rows,
            window_end=outcome.window.end or "none",
            drift_reference=deployed_endpoint.reference_key,
            adaptation_window=adaptation.get("window"),
        )
        yield dg.Output(
            as_json,
            metadata=shown(
                {
                    **report.to_metadata(),
                    **counts.metadata,
                    "skipped_log_files": len(outcome.window.skipped),
                    "drifted_features": dg.MetadataValue.json(outcome.drifted_features),
                    "report": dg.MetadataValue.md(markdown),
                    "json": dg.MetadataValue.path(store.uri(f"{report_key}.json")),
                    **plots_metadata(plots, outcome.drifted_features, store.uri(report_key)),
                    **({"endpoint": dg.MetadataValue.json(served)} if (served := as_json.get("endpoint")) else {}),
                    **online_metadata(outcome.performance),
                    **estimated_metadata(outcome.estimated),
                }
            ),
        )
        yield from drift_checks(spec, outcome, status, verdict, counts)

    return drift_report


def drift_checks(spec: "PipelineSpec", outcome, status: DriftStatus, verdict: str, counts: "_RequestCounts"):
    """The report's two checks, each with what it measured and its thresholds (as text: Dagster plots the
    numbers run after run): a known drift only warns."""
    monitoring = spec.monitoring
    thresholds = f"psi {monitoring.psi_threshold:g}, wasserstein {monitoring.wasserstein_threshold:g}, "
    thresholds += f"js {monitoring.js_threshold:g}" + ("; per feature in the report" if monitoring.features else "")
    yield dg.AssetCheckResult(
        check_name="no_drift",
        passed=not outcome.drifted_features,
        severity=dg.AssetCheckSeverity.WARN if status == DriftStatus.known_drift else dg.AssetCheckSeverity.ERROR,
        metadata=shown(
            {
                "status": str(status),
                "verdict": verdict or str(status),
                "drifted_features": dg.MetadataValue.json(outcome.drifted_features),
                **drift_measures(outcome.as_json.get("features", [])),
                "thresholds": thresholds,
            }
        ),
    )
    yield dg.AssetCheckResult(
        check_name="requests_accepted",
        passed=counts.share <= monitoring.max_rejected_share,
        metadata=shown(
            {**counts.metadata, "rejected_share": counts.share, "threshold": setting(monitoring.max_rejected_share)}
        ),
    )


def drift_measures(features: list[dict]) -> dict[str, float]:
    """What the ``no_drift`` check measured, from the report's features: the share of them that drifted and
    the largest finite value of each effect size (``max_psi``, ``max_wasserstein``, ``max_js``)."""
    if not features:
        return {}
    measures = {"drifted_share": sum(f["drifted"] for f in features) / len(features)}
    for effect in ("psi", "wasserstein", "js"):
        values = [f[effect] for f in features if isinstance(f.get(effect), float) and math.isfinite(f[effect])]
        if values:
            measures[f"max_{effect}"] = max(values)
    return measures


def drift_verdict(spec: "PipelineSpec", store: ArtifactStore, outcome, endpoint: EndpointState, run_id: str):
    """What a drift means for the loop: ``(status, verdict, adaptation)``. A drift of the inputs that the
    champion's retraining already failed to answer is known; otherwise importance weights are planned toward
    the window (``adaptation`` names it), or the verdict says why only labels can answer it."""
    from mlops_assets.monitoring.drift_memory import acknowledged, plan_adaptation
    from mlops_assets.monitoring.log_window import PREDICTION

    status, verdict = DriftStatus(outcome.status), ""
    adaptation: dict[str, Any] = {}
    if not outcome.drifted_features:
        return status, verdict, adaptation
    inputs = [f for f in outcome.drifted_features if f != PREDICTION]
    known = acknowledged(store, spec.name, endpoint.model_version)
    if not inputs:
        return (
            DriftStatus.waiting_for_labels,
            "only the prediction moved, not the inputs: importance weights have nothing to answer",
            adaptation,
        )
    if known and set(inputs) <= set(known["features"]):
        verdict = (
            f"known drift: retraining did not help (v{known['challenger_version']}, weighted toward it, "
            f"did not pass the gate on {known['at']}); v{endpoint.model_version} stays, waiting for labels"
        )
        return DriftStatus.known_drift, verdict, adaptation
    window = outcome.window.table.to_pandas()
    window_key, reasons, adaptation = plan_adaptation(spec, store, outcome.reference, window, inputs, run_id)
    if window_key is None:
        verdict = "importance weights cannot answer this drift: " + "; ".join(reasons) + "; waiting for labels"
        return DriftStatus.waiting_for_labels, verdict, adaptation
    adaptation = {**adaptation, "window": window_key}
    return status, f"importance weights can answer it (effective share {adaptation['effective_share']:.1%})", adaptation


PREDICTION_PLOT_ROWS = 5_000  # reference rows the served model answers again to plot the prediction's reference


class DriftPlot(NamedTuple):
    """One drifted feature's plot, as the report stores and shows it."""

    feature: str
    filename: str  # in the folder named as the report: its place in the report, then its name in safe characters
    png: bytes


def feature_plots(outcome, model, version: str) -> list[DriftPlot]:
    """A plot of each drifted feature the window has, at most ``MAX_DRIFT_PLOTS``: the reference against the
    window (``monitoring.drift.plots``). The prediction's reference is the served model's answers on a seeded
    sample of the reference rows; the window's, those of the served version, as the report compared them."""
    from mlops_assets.monitoring.drift.plots import MAX_DRIFT_PLOTS, drift_plots
    from mlops_assets.monitoring.log_window import PREDICTION, served_predictions

    features = outcome.as_json.get("features", [])
    kinds = {f["feature"]: f["kind"] for f in features if f["drifted"] and f["kind"] != "missing"}
    kinds = dict(list(kinds.items())[:MAX_DRIFT_PLOTS])
    inputs = [feature for feature in kinds if feature != PREDICTION]
    reference = {feature: outcome.reference[feature].to_numpy() for feature in inputs}
    current = {feature: outcome.window.table.column(feature).to_numpy(zero_copy_only=False) for feature in inputs}
    if PREDICTION in kinds:
        rows = outcome.reference.sample(min(len(outcome.reference), PREDICTION_PLOT_ROWS), random_state=0)
        reference[PREDICTION] = model.predict(rows).labels
        current[PREDICTION] = served_predictions(outcome.window.table, version, 0)[0]
    return [
        DriftPlot(feature, f"{place}-{re.sub(r'[^A-Za-z0-9_.-]', '_', feature)}.png", png)
        for place, (feature, png) in enumerate(drift_plots(kinds, reference, current).items(), 1)
    ]


def stored_plots_markdown(report_key: str, plots: list[DriftPlot]) -> str:
    """The stored report's links to its plots, relative to it: they lie in the folder named as the report."""
    folder = report_key.rsplit("/", 1)[-1]
    return "".join(f"\n\n![{plot.feature}]({folder}/{plot.filename})" for plot in plots)


def plots_metadata(plots: list[DriftPlot], drifted: list[str], folder_uri: str) -> dict:
    """The plots inlined in Markdown, naming the drifted features left out, and the folder that holds them;
    nothing when no feature drifted."""
    from mlops_assets.monitoring.drift.plots import MAX_DRIFT_PLOTS

    if not drifted:
        return {}
    images = [markdown_image(plot.png, plot.feature) for plot in plots]
    if left_out := [feature for feature in drifted if feature not in {plot.feature for plot in plots}]:
        images.append(
            f"{len(left_out)} drifted feature(s) not plotted: {', '.join(left_out)} (at most {MAX_DRIFT_PLOTS} "
            "are plotted, and a feature absent from the window has nothing to plot)."
        )
    folder = {"plots": dg.MetadataValue.path(folder_uri)} if plots else {}
    return {"drift_plots": dg.MetadataValue.md("\n\n".join(images)), **folder}


def online_metadata(performance) -> dict:
    """The online metric on logged predictions joined to labels, with its interval; nothing without labels."""
    if performance is None:
        return {}
    return {
        f"online_{performance.metric}": performance.value,
        "online_low": performance.low,
        "online_high": performance.high,
        "online_rows": performance.rows,
        "performance_decayed": performance.decayed,
    }


@dataclass(frozen=True)
class _RequestCounts:
    share: float  # rejected / (accepted + rejected) since the previous report; 0 when unknown
    metadata: dict


def _request_counts(context, deployer: EndpointDeployer, name: str, report_key: dg.AssetKey) -> _RequestCounts:
    """Requests the endpoint accepted and rejected since the previous drift report (its counters are read
    over the admin route; the previous reading is that report's metadata)."""
    from mlops_assets.monitoring.served_figures import requests_since

    try:
        status = deployer.rollout_status(name)
    except Exception as exc:  # an endpoint that does not answer: the report goes on, and says so
        context.log.warning(f"could not read the endpoint's request counts: {exc}")
        return _RequestCounts(0.0, {"requests_counted": False})
    now = status.requests
    if now is None:  # an endpoint whose status counts no requests
        context.log.warning("could not read the endpoint's request counts: its status has none")
        return _RequestCounts(0.0, {"requests_counted": False})
    event = context.instance.get_latest_materialization_event(report_key)
    before = event.asset_materialization.metadata.get("endpoint_requests") if event else None
    accepted, rejected = requests_since(now, getattr(before, "value", None)) or (0, 0)  # `now` was read
    metadata = {
        "endpoint_requests": dg.MetadataValue.json(now),
        "accepted_requests": accepted,
        "rejected_requests": rejected,
        "last_rejection": now.get("last_rejection") or "none",
        "inference_log": dg.MetadataValue.json(status.log),  # type: ignore[arg-type]  # null: no log kept
    }
    return _RequestCounts(rejected / max(accepted + rejected, 1), metadata)
