"""Trainers: the same training entry point, run where the environment wants it."""

from __future__ import annotations

import sys
from dataclasses import asdict

import dagster as dg

from mlops_assets.contracts import Trainer
from mlops_assets.records import TrainingRequest, TrainingResult


class SubprocessTrainer(Trainer):
    """Runs ``python -m mlops_assets.model.training`` as a local subprocess through Dagster Pipes: its logs
    stream into the run, a crash fails the asset and touches no alias."""

    python: str = sys.executable

    def train(self, context: dg.AssetExecutionContext, request: TrainingRequest) -> TrainingResult:
        invocation = dg.PipesSubprocessClient().run(
            context=context,
            command=[self.python, "-m", "mlops_assets.model.training"],
            extras={"request": asdict(request)},
        )
        messages = invocation.get_custom_messages()
        if not messages:
            raise dg.Failure("the training process ended without reporting a model version")
        return TrainingResult.from_message(messages[-1])
