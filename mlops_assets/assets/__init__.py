"""Spec to Dagster: the assets of one pipeline, keyed ``<pipeline>/<asset>``, in a group named after it.

One module per asset, named after it. The assets are thin: they read and write through the contracts
(artifact store, registry, trainer, deployer) and call the pure modules for the work. Heavy libraries load
inside the asset bodies, so loading the code location stays cheap.
"""

from pathlib import Path

import dagster as dg

from mlops_assets.assets.batch_predictions import build_batch_predictions
from mlops_assets.assets.context import PipelineContext
from mlops_assets.assets.deployed_endpoint import build_deployed_endpoint
from mlops_assets.assets.drift_report import build_drift_report
from mlops_assets.assets.endpoint_checks import build_endpoint_checks
from mlops_assets.assets.evaluation_report import build_evaluation_report
from mlops_assets.assets.feedback import build_external_assets, build_feedback
from mlops_assets.assets.raw_data import build_raw_data
from mlops_assets.assets.trained_model import build_trained_model
from mlops_assets.assets.validated_features import build_validated_features
from mlops_assets.spec import PipelineSpec

__all__ = ["PipelineContext", "build_pipeline_assets", "build_pipeline_checks"]


def build_pipeline_assets(spec: PipelineSpec, spec_path: Path) -> list[dg.AssetsDefinition | dg.AssetSpec]:
    """The assets of one spec, with their checks: the six of the lifecycle, the feedback and its external
    sources where labels arrive apart from the source, and batch predictions where the spec declares them."""
    pipeline = PipelineContext(spec, spec_path)
    assets: list[dg.AssetsDefinition | dg.AssetSpec] = [
        build_raw_data(pipeline),
        build_validated_features(pipeline),
        build_trained_model(pipeline),
        build_evaluation_report(pipeline),
        build_deployed_endpoint(pipeline),
        build_drift_report(pipeline),
    ]
    if pipeline.has_feedback:
        assets += [build_feedback(pipeline), *build_external_assets(pipeline)]
    if spec.batch is not None:
        assets.append(build_batch_predictions(pipeline))
    return assets


def build_pipeline_checks(spec: PipelineSpec, spec_path: Path) -> list[dg.AssetChecksDefinition]:
    """The checks of one spec that run apart from its assets (``Definitions(asset_checks=...)``): those on
    ``deployed_endpoint`` that its endpoint checks' sensor requests. Kept out of the assets' list, whose
    members each have one asset key."""
    return build_endpoint_checks(PipelineContext(spec, spec_path))
