"""A spec's model trained and registered in the test's own process, through the calls the training
process makes (``make_estimator``, ``fit_pipeline_model``, ``MlflowRegistryClient.register``): what a test of the
stored model needs, without the seconds of a Dagster run and a trainer subprocess."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mlops_assets.data.snapshot import read_source
from mlops_assets.model.pipeline_model import PipelineModel, fit_pipeline_model
from mlops_assets.model.provenance import environment
from mlops_assets.model.registry import MlflowRegistryClient
from mlops_assets.model.training import make_estimator
from mlops_assets.records import RegisteredModel
from mlops_assets.spec import PipelineSpec, load_spec


@dataclass(frozen=True)
class Registered:
    spec: PipelineSpec
    model: PipelineModel
    holdout: pd.DataFrame  # the spec's share of its rows, left out of training
    version: RegisteredModel


def train_and_register(registry: MlflowRegistryClient, path: Path) -> Registered:
    """The spec's estimator fitted on its data (less the holdout share) and registered as its next version."""
    spec = load_spec(path)
    frame = read_source(spec, path.parent).frame
    holdout = frame.sample(frac=spec.split.holdout, random_state=spec.split.seed)
    train = frame.drop(holdout.index)
    model = fit_pipeline_model(spec, train, make_estimator(spec, str(path)))
    run = {"tags": {}, "params": {}, "metrics": {}, "environment": environment()}
    version = registry.register(spec, model, train, registry.experiment(spec.name), run, {})
    return Registered(spec, model, holdout.reset_index(drop=True), version)
